"""Container logs through the master (which relays the node agent's log server):
plain, tail, timestamps, previous, follow; with corral's client, `corral logs`
and the real kubectl."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from corral.client.http import Client
from tests.cluster import Agent, Master
from tests.integration.agent_api.conftest import (
    container_status,
    create_pod,
    make_pod,
    phase,
    wait_pod,
)
from tests.kubectl import kubectl_binary

LOG = "/api/v1/namespaces/default/pods/{}/log"


def test_log_tail_and_timestamps(node: Agent, http: httpx.Client) -> None:
    create_pod(http, make_pod("counter", node.name,
                              ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done"]))
    wait_pod(http, "counter", lambda p: phase(p) == "Succeeded")
    assert http.get(LOG.format("counter")).text == "".join(f"line {i}\n" for i in range(1, 6))
    assert http.get(LOG.format("counter"), params={"tailLines": 2}).text == "line 4\nline 5\n"
    stamped = http.get(LOG.format("counter"), params={"timestamps": "true"}).text.splitlines()
    assert stamped[0].endswith(" line 1") and stamped[0][:4].isdigit() and "T" in stamped[0]


def test_previous_is_the_last_terminated_instance(node: Agent, http: httpx.Client) -> None:
    script = "if [ -f ran ]; then echo second; sleep 60; fi; touch ran; echo first; exit 1"
    create_pod(http, make_pod("twice", node.name, ["sh", "-c", script], restart="Always"))
    wait_pod(http, "twice", lambda p: "running" in container_status(p).get("state", {})
             and container_status(p)["restartCount"] == 1)
    assert http.get(LOG.format("twice")).text == "second\n"
    assert http.get(LOG.format("twice"), params={"previous": "true"}).text == "first\n"


def test_log_errors_are_kubernetes_statuses(node: Agent, http: httpx.Client) -> None:
    pod = make_pod("two", node.name, ["sleep", "30"])
    pod["spec"]["containers"].append({"name": "other", "image": "none", "command": ["true"]})
    create_pod(http, pod)
    r = http.get(LOG.format("two"))
    assert r.status_code == 400
    assert "a container name must be specified for pod two, choose one of: [main other]" \
        in r.json()["message"]
    r = http.get(LOG.format("two"), params={"container": "nope"})
    assert r.status_code == 400 and "container nope is not valid" in r.json()["message"]
    assert http.get(LOG.format("absent")).status_code == 404


def test_follow_sees_new_lines(master: Master, node: Agent, http: httpx.Client,
                               tmp_path: Path) -> None:
    # Prints a line whenever the test creates the next numbered file.
    script = ("i=0; while [ $i -lt 3 ]; do if [ -f " + str(tmp_path) + "/go$i ]; then "
              "echo tick $i; i=$((i+1)); fi; sleep 0.05; done")
    # Root: the files are under the test's own 0700 temp dir.
    create_pod(http, make_pod("ticker", node.name, ["sh", "-c", script],
                              securityContext={"runAsUser": 0}))
    wait_pod(http, "ticker", lambda p: phase(p) == "Running")

    async def follow() -> list[str]:
        async with Client(master.url, master.token, master.ca_pem) as client:
            seen: list[str] = []
            (tmp_path / "go0").touch()
            stream = await client.logs("ticker", "default", follow=True)
            async for line in stream:
                seen.append(line)
                if len(seen) < 3:
                    (tmp_path / f"go{len(seen)}").touch()  # a line only after we saw one
            return seen  # the stream ends when the container exits

    assert asyncio.run(asyncio.wait_for(follow(), 30)) == ["tick 0", "tick 1", "tick 2"]


def test_corral_logs_command(master: Master, node: Agent, http: httpx.Client) -> None:
    create_pod(http, make_pod("cli-logs", node.name, ["sh", "-c", "echo a; echo b; echo c"]))
    wait_pod(http, "cli-logs", lambda p: phase(p) == "Succeeded")
    out = subprocess.run([sys.executable, "-m", "corral.cli.main", "logs", "cli-logs",
                          "--tail", "2", "--kubeconfig", str(master.kubeconfig)],
                         check=False, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "b\nc\n"


def test_real_kubectl_logs(master: Master, node: Agent, http: httpx.Client,
                           tmp_path: Path) -> None:
    create_pod(http, make_pod("kc-logs", node.name,
                              ["sh", "-c", "echo one; echo two; echo three; sleep 1"]))
    wait_pod(http, "kc-logs", lambda p: phase(p) == "Succeeded")
    env = {**os.environ, "KUBECONFIG": str(master.kubeconfig),
           "KUBECACHEDIR": str(tmp_path / "cache")}
    for args, expected in ((["logs", "kc-logs"], "one\ntwo\nthree\n"),
                           (["logs", "kc-logs", "--tail=1"], "three\n"),
                           (["logs", "-f", "kc-logs"], "one\ntwo\nthree\n")):
        out = subprocess.run([kubectl_binary(), "--cache-dir", str(tmp_path / "cache"), *args],
                             env=env, check=False, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout == expected
