"""An Alloc on a real agent: one executor runs its task range (claims written
before launches, completions in batched status), a restarted agent re-adopts the
running executor (same pid, nothing run twice), logs of one task, and deletion
stops the executor and finishes the graceful deletion."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from corral.api.certificates.signer import Signer
from corral.indexset import IndexSet
from corral.objects import Obj, status
from tests.cluster import Master
from tests.poll import wait_for

ALLOCS = "/apis/corral.dev/v1/namespaces/default/allocs"


def alloc(name: str, node: str, command: list[str], ranges: str, slots: int = 4) -> Obj:
    return {"apiVersion": "corral.dev/v1", "kind": "Alloc", "metadata": {"name": name},
            # Tolerating unreachability forever: the agent's restart may take longer
            # than the node grace plus eviction timeout on a loaded machine, and this
            # test is about adoption, not eviction.
            "spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable",
                                      "operator": "Exists", "effect": "NoExecute"}],
                     "nodeName": node, "resources": {"cpu": "500m", "memory": "256Mi"},
                     "slots": slots, "ranges": ranges, "terminationGracePeriodSeconds": 2,
                     "task": {"command": command, "env": [{"name": "OUT", "value": "x"}]}}}


def get_alloc(http: httpx.Client, name: str) -> Obj | None:
    r = http.get(f"{ALLOCS}/{name}")
    return None if r.status_code == 404 else dict(r.json())


def completed(http: httpx.Client, name: str) -> IndexSet:
    got = get_alloc(http, name) or {}
    return IndexSet.parse(status(got).get("completed"))


def test_an_alloc_runs_its_range_and_survives_an_agent_restart(
        master: Master, agents: Any, searchable_base: Path) -> None:
    agent = agents(master, "alloc-node", node_ip="127.0.1.31")
    # The tasks run as the node's pod user: their files live where it may write.
    shared = searchable_base / "alloc-tasks"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    out = shared / "ran"
    # Indices 0-59 print and finish at once; 60-79 wait for a file, so the
    # agent's restart happens while they run.
    gate = shared / "gate"
    script = (f'echo "$JOB_COMPLETION_INDEX" >> {out}; echo "task $JOB_COMPLETION_INDEX"; '
              f'[ "$JOB_COMPLETION_INDEX" -lt 60 ] || '
              f'while [ ! -e {gate} ]; do sleep 0.05; done')
    with master.http() as http:
        r = http.post(ALLOCS, json=alloc("a1", "alloc-node", ["sh", "-c", script], "0-79"))
        assert r.status_code == 201, r.text
        wait_for(lambda: len(completed(http, "a1")) == 60, 60, "the first 60 tasks")
        running = wait_for(lambda: (get_alloc(http, "a1") or {}).get("status", {}).get(
            "running") == 4 and get_alloc(http, "a1"), 30, "four tasks waiting at the gate")
        pid = running["status"]["executorPid"]
        assert {60, 61, 62, 63} <= set(IndexSet.parse(running["status"]["claimed"]))
        port = master.agent_port("alloc-node")
        # The agent dies (kill -9) and comes back: the executor is adopted. Its
        # server (--port 0) is back on the port the Node shows, before anything is
        # reported: the master reaches it at once (the log read below).
        agent.kill()
        gate.write_text("open")
        agent.start()
        assert master.agent_port("alloc-node") == port
        wait_for(lambda: len(completed(http, "a1")) == 80, 60, "every task")
        final = get_alloc(http, "a1")
        assert final is not None and final["status"]["executorPid"] == pid
        ran = [int(line) for line in out.read_text().split()]
        assert sorted(ran) == list(range(80))  # none twice, none missing
        logs = http.get(f"{ALLOCS}/a1/log", params={"task": "17"})
        assert logs.status_code == 200 and logs.text == "task 17\n", (logs.status_code, logs.text)
        assert http.get(f"{ALLOCS}/a1/log", params={"task": "99"}).text == ""
        # Deleting it stops the executor and completes the graceful deletion.
        http.delete(f"{ALLOCS}/a1")
        wait_for(lambda: get_alloc(http, "a1") is None, 30, "the alloc deleted")
        # Its state goes with its cgroup; an executor still leaving the cgroup
        # keeps both for the agent's sweeper (every 30 s).
        allocs_dir = agent.state_dir / "runtime" / "allocs"
        wait_for(lambda: list(allocs_dir.iterdir()) == [], 45, "the executor's state removed")


def _fenced_launches(base: str, as_master: ssl.SSLContext, uid: str,
                     http_as_admin: Callable[[], httpx.Client]) -> None:
    """The agent takes the Mesos master's line from the newest term it has been
    shown (its feed or a launch); a deposed master's term gets 409 (master_terms.py),
    and so does its feed, over either of the agent's two launch paths."""
    lease = "kube-system/corral-mesos-master"

    def post(fence: str, task: str, lane: bool = True) -> httpx.Response:
        # Expect: 100-continue is one the lane leaves to the ASGI app
        expect = {} if lane else {"expect": "100-continue"}
        return httpx.post(f"{base}/frameworkTasks/default/fw-a", verify=as_master,
                          headers={"corral-leader-fence": fence, **expect},
                          json={"uid": uid, "tasks": [{"id": task, "command": ["true"]}]})

    assert post(f"{lease} master-b 7", "t7").status_code == 200
    assert post(f"{lease} master-b 7", "t7-again").status_code == 200
    for fence in (f"{lease} master-a 6", f"{lease} master-a 7"):
        for lane in (True, False):
            old = post(fence, "stale", lane)
            assert old.status_code == 409, old.text
            assert "deposed master" in old.text and "'master-b' leads it in term 7" in old.text
    feed = httpx.get(f"{base}/frameworkTasks", verify=as_master,
                     headers={"corral-leader-fence": f"{lease} master-a 6"})
    assert feed.status_code == 409, feed.text
    bad = post("no-lease master 1", "bad")
    assert bad.status_code == 400 and "corral-leader-fence" in bad.text, bad.text
    assert post(f"{lease} master-c 8", "t8").status_code == 200  # a newer term
    assert post(f"{lease} master-b 7", "stale").status_code == 409
    # The agent watches the Lease itself: a holder of a newer term there deposes
    # master-c before the new one has called.
    with http_as_admin() as http:
        created = http.post("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
                            json={"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                  "metadata": {"name": "corral-mesos-master"},
                                  "spec": {"holderIdentity": "master-d",
                                           "leaseTransitions": 9}})
        assert created.status_code == 201, created.text
        try:
            deposed = wait_for(lambda: (r := post(f"{lease} master-c 8", "stale")).status_code
                               == 409 and r, 30, "the agent seeing the Lease's new term")
            assert "'master-d' leads it in term 9" in deposed.text, deposed.text
        finally:
            http.delete("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
                        "corral-mesos-master")


def _raw_post(context: ssl.SSLContext, port: int, path: str, body: bytes,
              version: str) -> tuple[int, str, bytes]:
    """A POST to the agent at 127.0.1.32 over a socket of its own: the status,
    content type and body of the answer (HTTP/1.0: read to the close)."""
    with socket.create_connection(("127.0.1.32", port), timeout=30) as raw, \
            context.wrap_socket(raw) as tls:
        tls.sendall(f"POST {path} HTTP/{version}\r\nhost: x\r\nconnection: close\r\n"
                    f"content-length: {len(body)}\r\n\r\n".encode() + body)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    fields = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), fields["content-type"], content


def _raw_posts(context: ssl.SSLContext, port: int, path: str, body: bytes,
               count: int) -> list[int]:
    """``count`` POSTs of ``body``, one after the other on one kept-alive
    connection: the status of each answer."""
    codes = []
    with socket.create_connection(("127.0.1.32", port), timeout=30) as raw, \
            context.wrap_socket(raw) as tls:
        reader = tls.makefile("rb")
        for _ in range(count):
            tls.sendall(f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}"
                        "\r\n\r\n".encode() + body)
            codes.append(int(reader.readline().split()[1]))
            length = 0
            while (line := reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
    return codes


def _task_state(http: httpx.Client, name: str, task: str) -> str:
    got = get_alloc(http, name) or {}
    return next((t["state"] for t in status(got).get("tasks") or () if t["id"] == task), "")


def test_a_task_launched_directly_is_reported_and_outlives_an_agent_restart(
        master: Master, agents: Any, searchable_base: Path, tmp_path: Path) -> None:
    """The Mesos master's direct line on the agent's server (framework_feed.py): a
    launch into a framework's Alloc ahead of its spec runs at once, shows in the
    feed and in status.tasks though the spec never names it (its master died
    before writing it), and a restarted agent adopts it and reports its end. Only
    the master's certificate may launch: another the cluster CA signed gets 403."""
    agent = agents(master, "direct-node", node_ip="127.0.1.32")
    shared = searchable_base / "direct-tasks"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    gate = shared / "gate"
    body = alloc("fw-a", "direct-node", [], "")
    body["metadata"]["labels"] = {"corral.dev/framework": "fw-x"}
    del body["spec"]["task"], body["spec"]["ranges"]
    body["spec"]["tasks"] = [{"id": "first", "command": ["sleep", "600"]}]
    with master.http() as http:
        created = http.post(ALLOCS, json=body)
        assert created.status_code == 201, created.text
        wait_for(lambda: _task_state(http, "fw-a", "first") == "TASK_RUNNING", 60,
                 "the spec's task running")
        port = master.agent_port("direct-node")
        base = f"https://127.0.1.32:{port}"
        pki = master.data_dir / "pki"
        as_master = master.as_master_to_agents()
        launch = {"uid": created.json()["metadata"]["uid"], "tasks": [
            {"id": "direct", "command": ["sh", "-c",
                                         f"while [ ! -e {gate} ]; do sleep 0.05; done"]}]}
        # Another certificate of the cluster's CA (the node's own name, even): 403.
        own = tmp_path / "pki"
        own.mkdir()
        for name in ("ca.crt", "ca.key"):
            (own / name).write_bytes((pki / name).read_bytes())
        stranger = Signer(own).ensure_client_cert("stranger", "system:node:direct-node")
        refused = httpx.post(f"{base}/frameworkTasks/default/fw-a", json=launch,
                             verify=master.agent_tls(stranger.cert, stranger.key))
        assert refused.status_code == 403, refused.text
        assert httpx.post(f"{base}/frameworkTasks/default/fw-a", json=launch,
                          verify=master.agent_tls()).status_code == 401
        assert httpx.post(f"{base}/frameworkTasks/default/nope", json=launch,
                          verify=as_master).status_code == 404
        for bad in (b"{not json", b"[1]", b'{"tasks": [{"command": ["true"]}], "uid": "x"}'):
            refused = httpx.post(f"{base}/frameworkTasks/default/fw-a", content=bad,
                                 verify=as_master)
            assert refused.status_code == 400, refused.text
            assert refused.text.startswith("malformed launch: "), refused.text
        # What the agent's protocol does not answer itself (HTTP/1.0 here) goes
        # the ASGI way, to the same answer; one connection, kept alive, can take
        # several.
        for path, want in (("/frameworkTasks/default/nope", 404),
                           ("/frameworkTasks/default/fw-a", 400)):
            answers = [_raw_post(as_master, port, path, b"{not json" if want == 400
                                 else json.dumps(launch).encode(), version)
                       for version in ("1.0", "1.1")]
            assert answers[0] == answers[1] and answers[0][0] == want, answers
        assert _raw_posts(as_master, port, "/frameworkTasks/default/nope",
                          json.dumps(launch).encode(), 3) == [404] * 3
        taken = httpx.post(f"{base}/frameworkTasks/default/fw-a", json=launch,
                           verify=as_master)
        assert taken.status_code == 200 and taken.json() == {"launched": ["direct"]}
        _fenced_launches(base, as_master, launch["uid"], master.http)
        # The feed: live, every task's state now, then each new one.
        seen: set[tuple[str, str, str, str]] = set()
        want = {("default/fw-a", "fw-x", "first", "TASK_RUNNING"),
                ("default/fw-a", "fw-x", "direct", "TASK_RUNNING")}
        with httpx.stream("GET", f"{base}/frameworkTasks", verify=as_master,
                          timeout=30) as feed:
            lines = feed.iter_lines()
            assert json.loads(next(lines)) == {"node": "direct-node"}
            while not want <= seen:
                line = json.loads(next(lines))
                seen.add((line["alloc"], line["framework"], line["task"]["id"],
                          line["task"]["state"]))
        wait_for(lambda: _task_state(http, "fw-a", "direct") == "TASK_RUNNING", 30,
                 "the direct task in status.tasks")
        pid = (get_alloc(http, "fw-a") or {})["status"]["executorPid"]
        agent.kill()
        gate.write_text("open")
        agent.start()
        wait_for(lambda: _task_state(http, "fw-a", "direct") == "TASK_FINISHED", 60,
                 "the adopted task's end reported")
        final = get_alloc(http, "fw-a") or {}
        assert final["status"]["executorPid"] == pid
        assert _task_state(http, "fw-a", "first") == "TASK_RUNNING"
        assert [t["id"] for t in final["spec"]["tasks"]] == ["first"]
        http.delete(f"{ALLOCS}/fw-a")
        wait_for(lambda: get_alloc(http, "fw-a") is None, 30, "the alloc deleted")
