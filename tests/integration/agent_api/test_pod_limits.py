"""What a pod may take from its node: processes (the agent's --pod-pids-limit,
the kubelet's podPidsLimit) and directories (a workingDir is used, never made)."""

from __future__ import annotations

from pathlib import Path

from tests.cluster import Master
from tests.integration.agent_api.conftest import (
    allow_privileged,
    container_status,
    create_pod,
    make_pod,
    phase,
    wait_pod,
)

# With 4 processes allowed (the shell and three more) the 8 sleeps cannot all fork.
FORKY = ("n=0; for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; "
         "echo started=$(jobs -p | wc -l); kill $(jobs -p) 2>/dev/null; exit 0")


def test_pids_limit_and_working_dir(master: Master, agents: object, tmp_path: Path) -> None:
    node = agents(master, "node-limits", "--pod-pids-limit", "4",  # type: ignore[operator]
                  node_ip="127.0.1.22")
    with master.http() as http:
        create_pod(http, make_pod("forky", node.name, ["sh", "-c", FORKY]))
        wait_pod(http, "forky", lambda p: phase(p) in ("Succeeded", "Failed"))  # sh may give up
        log = http.get("/api/v1/namespaces/default/pods/forky/log").text.lower()
        assert "fork" in log or "resource temporarily unavailable" in log, log

        allow_privileged(http)  # a workingDir on the node is refused by baseline
        missing = tmp_path / "not" / "there"
        create_pod(http, make_pod("nowhere", node.name, ["pwd"], workingDir=str(missing)))
        pod = wait_pod(http, "nowhere", lambda p: container_status(p).get("state", {}).get(
            "waiting", {}).get("reason") == "CreateContainerError")
        assert str(missing) in container_status(pod)["state"]["waiting"]["message"]
        assert not missing.exists() and not missing.parent.exists()

        create_pod(http, make_pod("somewhere", node.name, ["pwd"], workingDir=str(tmp_path)))
        wait_pod(http, "somewhere", lambda p: phase(p) == "Succeeded")
        assert http.get("/api/v1/namespaces/default/pods/somewhere/log").text.strip() == str(
            tmp_path)
        for name in ("forky", "nowhere", "somewhere"):
            http.delete(f"/api/v1/namespaces/default/pods/{name}")


