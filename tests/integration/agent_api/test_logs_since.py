"""logs --since, --since-time and --limit-bytes, through the master to the agent,
with the real kubectl, and how bad values are refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from corral.objects import parse_time, rfc3339
from tests.cluster import Agent, Master
from tests.integration.agent_api.conftest import create_pod, make_pod, phase, wait_pod
from tests.kubectl import Kubectl
from tests.poll import wait_for

LOG = "/api/v1/namespaces/default/pods/{}/log"
# One early line, a pause, then a late line every 0.2 s: whenever the test
# looks after the pause, the last 2 s hold late lines only.
SCRIPT = ("echo early; sleep 3; i=0; while true; do i=$((i+1)); "
          "echo late-$i-padding; sleep 0.2; done")


@pytest.fixture(scope="module")
def chatty(node: Agent, master: Master) -> str:
    with master.http() as http:
        create_pod(http, make_pod("chatty", node.name, ["sh", "-c", SCRIPT]))
        wait_pod(http, "chatty", lambda p: phase(p) == "Running")
        wait_for(lambda: "late-" in http.get(LOG.format("chatty")).text,
                 what="the pod's lines after its pause")
    return "chatty"


def test_since_and_limit_bytes_with_kubectl(chatty: str, master: Master,
                                            tmp_path: Path) -> None:
    kubectl = Kubectl(master, tmp_path)
    out = kubectl("logs", chatty, "--since=2s", "--limit-bytes=10")
    assert out.startswith("late-") and len(out) == 10
    assert kubectl("logs", chatty, "--limit-bytes=10") == "early\nlate"
    stamped = kubectl("logs", chatty, "--timestamps").splitlines()
    early = parse_time(stamped[0].split()[0])
    assert early is not None and stamped[0].endswith(" early")
    after_early = rfc3339(early.replace(microsecond=0) + timedelta(seconds=1))
    lines = kubectl("logs", chatty, f"--since-time={after_early}").splitlines()
    assert lines and all(line.startswith("late-") for line in lines)
    before = rfc3339(early.replace(microsecond=0))
    assert kubectl("logs", chatty, f"--since-time={before}").startswith("early\n")


def test_follow_honours_since_and_limit(chatty: str, http: httpx.Client) -> None:
    with http.stream("GET", LOG.format(chatty), params={
            "follow": "true", "sinceSeconds": "2", "limitBytes": "25"}) as r:
        body = r.read()
    assert len(body) == 25 and body.startswith(b"late-")


@pytest.mark.parametrize(("params", "code", "field"), [
    ({"sinceSeconds": "0"}, 422, "sinceSeconds"),
    ({"limitBytes": "0"}, 422, "limitBytes"),
    ({"tailLines": "-1"}, 422, "tailLines"),
    ({"sinceTime": "yesterday"}, 422, "sinceTime"),
    ({"sinceSeconds": "5", "sinceTime": "2024-01-01T00:00:00Z"}, 422, ""),
    ({"limitBytes": "ten"}, 400, None),
])
def test_bad_log_options(chatty: str, http: httpx.Client, params: dict[str, str], code: int,
                         field: str | None) -> None:
    r = http.get(LOG.format(chatty), params=params)
    assert r.status_code == code, r.text
    if field is not None:
        causes = r.json()["details"]["causes"]
        assert field in [c["field"] for c in causes]
        assert r.json()["message"].startswith('PodLogOptions "chatty" is invalid: ')
