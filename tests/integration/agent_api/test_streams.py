"""exec, attach, cp, port-forward and the pods/services proxy, with the real
kubectl and the kubernetes Python client, through the master to the agent."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import kr8s.asyncio
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.stream import portforward, stream
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.cluster import Agent, Master, free_port_block
from tests.integration.agent_api.conftest import (
    allow_privileged,
    condition,
    create_pod,
    instances,
    make_pod,
    phase,
    wait_pod,
)
from tests.integration.services import web
from tests.kubectl import Kubectl


@pytest.fixture(scope="module")
def shell(master: Master, node: Agent, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A running pod `shell` whose working directory is returned."""
    work = tmp_path_factory.mktemp("shell-work")
    with master.http() as http:
        allow_privileged(http)  # a workingDir on the node is refused by baseline
        # Root: its working dir is the test's own (0700 root), written to by cp.
        create_pod(http, make_pod("shell", node.name, ["sleep", "600"], workingDir=str(work),
                                  securityContext={"runAsUser": 0},
                                  env=[{"name": "GREETING", "value": "hello there"}]))
        wait_pod(http, "shell", lambda p: phase(p) == "Running")
    return work


@pytest.fixture(scope="module")
def webpod(master: Master, node: Agent) -> str:
    """A ready HTTP pod `web-0` (container port 8080, named http) behind Service `web`."""
    with master.http() as http:
        create_pod(http, web.pod("web-0", "streams-web", node.name))
        assert http.post("/api/v1/namespaces/default/services",
                         json=web.service("web", "streams-web", "ClusterIP")).status_code == 201
        wait_pod(http, "web-0", lambda p: condition(p, "Ready") == "True")
    return "web-0"


def test_exec_runs_in_the_containers_environment(kubectl: Kubectl, shell: Path,
                                                 node: Agent) -> None:
    out = kubectl.run("exec", "shell", "--", "sh", "-c", 'echo "$GREETING"; pwd')
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["hello there", str(shell)]
    main = next(s for s in instances(node) if s.container_name == "main" and s.running)
    assert main.pid is not None
    cgroup = kubectl.run("exec", "shell", "--", "cat", "/proc/self/cgroup")
    assert cgroup.stdout == Path(f"/proc/{main.pid}/cgroup").read_text()


def test_exec_streams_and_exit_codes(kubectl: Kubectl, shell: Path) -> None:
    out = kubectl.run("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (out.returncode, out.stdout) == (3, "out\n")
    assert "err" in out.stderr and "command terminated with exit code 3" in out.stderr
    piped = kubectl.run("exec", "-i", "shell", "--", "sh", "-c", "wc -c", input="x" * 100_000)
    assert (piped.returncode, piped.stdout.strip()) == (0, "100000")


def test_exec_with_a_terminal(kubectl: Kubectl, shell: Path) -> None:
    out = kubectl.in_tty("exec -it shell -- sh -c 'tty; stty size; exit 7'")
    assert out.returncode == 7, out.stdout + out.stderr
    assert "/dev/pts/" in out.stdout and "40 100" in out.stdout


def test_cp_a_directory_both_ways(kubectl: Kubectl, shell: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(200_000))
    up = kubectl.run("cp", str(src), f"shell:{shell}/uploaded")
    assert up.returncode == 0, up.stderr
    assert (shell / "uploaded" / "sub" / "b.bin").read_bytes() == \
        (src / "sub" / "b.bin").read_bytes()
    down = kubectl.run("cp", f"shell:{shell}/uploaded", str(tmp_path / "back"))
    assert down.returncode == 0, down.stderr
    for rel in ("a.txt", "sub/b.bin"):
        assert (tmp_path / "back" / rel).read_bytes() == (src / rel).read_bytes()


def test_exec_errors(kubectl: Kubectl, shell: Path, http: httpx.Client, node: Agent) -> None:
    create_pod(http, make_pod("done", node.name, ["true"]))
    wait_pod(http, "done", lambda p: phase(p) == "Succeeded")
    completed = kubectl.run("exec", "done", "--", "true")
    assert "cannot exec into a container in a completed pod; current phase is Succeeded" \
        in completed.stderr
    missing = kubectl.run("exec", "nope", "--", "true")
    assert missing.returncode == 1
    assert 'Error from server (NotFound): pods "nope" not found' in missing.stderr
    bad = kubectl.run("exec", "shell", "-c", "other", "--", "true")
    assert bad.returncode == 1 and "container other is not valid for pod shell" in bad.stderr
    absent = kubectl.run("exec", "shell", "--", "no-such-program")
    assert absent.returncode != 0
    assert 'exec: "no-such-program": executable file not found in $PATH' in absent.stderr
    # No upgrade (what kubectl falls back to when its websocket is refused)
    plain = http.post("/api/v1/namespaces/default/pods/shell/exec",
                      params={"command": "true", "stdout": "true"})
    assert plain.status_code == 400
    assert plain.json()["message"].startswith("Upgrade request required: corral serves "
                                              "pods/exec over websockets")
    assert http.post("/api/v1/namespaces/default/pods/shell/exec",
                     params={"stdout": "true"}).json()["message"] == \
        "you must specify at least 1 command"
    debug = kubectl.run("debug", "shell", "--image=busybox", "-q")
    assert debug.returncode == 1 and "panic" not in debug.stderr, debug.stderr


def test_python_client_stream_exec(master: Master, shell: Path) -> None:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(str(master.kubeconfig), client_configuration=configuration)
    with k8s.ApiClient(configuration) as api:
        v1 = k8s.CoreV1Api(api)
        out = stream(v1.connect_get_namespaced_pod_exec, "shell", "default",
                     command=["sh", "-c", "echo $GREETING"], stdout=True, stderr=True,
                     stdin=False, tty=False)
        assert out == "hello there\n"
        resp = stream(v1.connect_get_namespaced_pod_exec, "shell", "default",
                      command=["sh", "-c", "read x; echo got $x; exit 4"], stdout=True,
                      stderr=True, stdin=True, tty=False, _preload_content=False)
        resp.write_stdin("it\n")
        resp.run_forever(timeout=30)
        assert resp.read_stdout() == "got it\n"
        assert resp.returncode == 4


def test_attach_streams_the_containers_output(master: Master, node: Agent,
                                              kubectl: Kubectl) -> None:
    with master.http() as http:
        create_pod(http, make_pod("ticker", node.name,
                                  ["sh", "-c", "while true; do echo tick; echo tock >&2; sleep 0.2; done"],
                                  spec={"terminationGracePeriodSeconds": 1}))
        wait_pod(http, "ticker", lambda p: phase(p) == "Running")
        attach = kubectl.background("attach", "ticker")
        try:
            assert attach.stdout is not None
            first = attach.stdout.readline()
            assert first == "tick\n"
            assert http.delete("/api/v1/namespaces/default/pods/ticker").status_code == 200
            assert attach.wait(timeout=30) == 0
            assert attach.stderr is not None and "tock\n" in attach.stderr.read()
            assert "tock" not in attach.stdout.read()
        finally:
            attach.kill()
            attach.wait()


def test_attach_to_a_terminal(master: Master, node: Agent, kubectl: Kubectl) -> None:
    """A `stdin: true, tty: true` container: keys reach it, its terminal echoes
    and takes the client's size; the shell's prompt (no newline) comes through."""
    with master.http() as http:
        create_pod(http, make_pod("term", node.name, ["sh"], stdin=True, tty=True,
                                  restart="Always"))
        wait_pod(http, "term", lambda p: phase(p) == "Running")
    out = kubectl.in_tty("attach -it term", stdin="echo sum-$((6*7)); stty size; tty\n")
    assert out.returncode == 0, out.stdout
    lines = out.stdout.replace("\r", "").splitlines()
    assert "sum-42" in lines and "40 100" in lines
    assert any(line.startswith("/dev/pts/") for line in lines)
    # The prompt (sh's for a user other than root: pods run as corral-pod), then the echo.
    assert "$ echo sum-$((6*7)); stty size; tty" in lines


def test_run_interactive_with_stdin_once(kubectl: Kubectl, node: Agent) -> None:
    """`kubectl run -i --rm` (stdin, stdinOnce): the client's EOF ends the
    container's stdin, the pod is deleted; with -t the exit code comes back."""
    piped = kubectl.run("run", "-i", "--rm", "piped", "--image=none", "--restart=Never",
                        f"--overrides={{\"spec\": {{\"nodeName\": \"{node.name}\"}}}}",
                        "--", "sh", "-c", "while read l; do echo got $l; done; echo end",
                        input="a\nb\n")
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert lines[-4:] == ["got a", "got b", "end", 'pod "piped" deleted'], piped.stdout
    term = kubectl.in_tty(f"run -it --rm term2 --image=none --restart=Never "
                          f"--overrides='{{\"spec\": {{\"nodeName\": \"{node.name}\"}}}}' -- sh",
                          stdin="echo inside-$((2+3)); exit 3\n")
    assert term.returncode == 3, term.stdout
    assert "inside-5" in term.stdout.replace("\r", "").splitlines()


def _forward(kubectl: Kubectl, target: str, port: str) -> tuple[subprocess.Popen[str], int]:
    proc = kubectl.background("port-forward", target, f":{port}")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
    assert found, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
    return proc, int(found.group(1))


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()


@pytest.fixture
def forwards() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        _stop(proc)


def _hammer(port: int, count: int, workers: int = 4) -> list[str]:
    """``count`` GETs, each on a new connection (so each is a new forwarded stream)."""
    answers: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for _ in range(n):
            body = web.fetch("127.0.0.1", port, timeout=20)
            with lock:
                answers.append(body)

    threads = [threading.Thread(target=work, args=(count // workers,)) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_port_forward_to_a_pod_and_a_service(kubectl: Kubectl, webpod: str,
                                             forwards: list[subprocess.Popen[str]]) -> None:
    for target, port in ((f"pod/{webpod}", "8080"), ("svc/web", "80")):
        proc, local = _forward(kubectl, target, port)
        forwards.append(proc)
        answers = _hammer(local, 1000)
        assert answers == [webpod] * 1000
        assert proc.poll() is None  # still forwarding


def test_port_forward_to_an_undeclared_port(kubectl: Kubectl, webpod: str,
                                            forwards: list[subprocess.Popen[str]]) -> None:
    proc, local = _forward(kubectl, f"pod/{webpod}", "9999")
    forwards.append(proc)
    with pytest.raises(web.RequestFailed):
        web.fetch("127.0.0.1", local)
    proc.wait(timeout=30)  # kubectl 1.32 gives up the forward on an error
    assert proc.stderr is not None
    assert f"error forwarding port 9999 to pod {webpod}, uid " in proc.stderr.read()


def test_pod_and_service_proxy(kubectl: Kubectl, webpod: str, master: Master,
                               http: httpx.Client) -> None:
    for path in (f"pods/{webpod}:8080/proxy/", f"pods/{webpod}:http/proxy/",
                 "services/web/proxy/", "services/http:web:80/proxy/"):
        out = kubectl.run("get", "--raw", f"/api/v1/namespaces/default/{path}")
        assert (out.returncode, out.stdout) == (0, webpod), (path, out.stderr)
    env = http.get(f"/api/v1/namespaces/default/pods/{webpod}/proxy/env",
                   headers={"X-Probe": "1"})
    assert env.status_code == 200 and env.json()["HOSTNAME"] == webpod
    assert http.get("/api/v1/namespaces/default/services/web:99/proxy/").json()["message"] == \
        'no service port "99" found for service "web"'
    assert http.get("/api/v1/namespaces/default/pods/nope/proxy/").status_code == 404


def test_python_client_port_forward(master: Master, webpod: str) -> None:
    """The Python client forwards over the channel protocol, not kubectl's SPDY."""
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(str(master.kubeconfig), client_configuration=configuration)
    with k8s.ApiClient(configuration) as api:
        v1 = k8s.CoreV1Api(api)
        pf = portforward(v1.connect_get_namespaced_pod_portforward, webpod, "default",
                         ports="8080")
        conn = pf.socket(8080)
        conn.setblocking(True)
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        conn.close()
        assert received.startswith(b"HTTP/1.0 200") and received.endswith(webpod.encode())
        assert pf.error(8080) is None
        pf.close()
        refused = portforward(v1.connect_get_namespaced_pod_portforward, webpod, "default",
                              ports="9999")
        refused.socket(9999).setblocking(True)
        assert refused.socket(9999).recv(1) == b""  # closed: nothing to forward to
        assert f"error forwarding port 9999 to pod {webpod}, uid " in str(refused.error(9999))
        refused.close()


def test_kr8s_port_forward(master: Master, webpod: str) -> None:
    """kr8s offers no subprotocol: it gets the channel protocol, as from the kubelet."""

    async def forward() -> list[str]:
        api = await kr8s.asyncio.api(kubeconfig=str(master.kubeconfig))
        pod = await kr8s.asyncio.objects.Pod.get(webpod, namespace="default", api=api)
        # Our port, not kr8s' pick: it tries random ports up to 60000 and checks only
        # for a listener, so on a busy machine a connection's own port can be the
        # one it then fails to bind (EADDRINUSE).
        local = free_port_block(1)
        async with pod.portforward(remote_port=8080, local_port=local) as port, \
                httpx.AsyncClient(timeout=20) as http:
            return [(await http.get(f"http://127.0.0.1:{port}/")).text for _ in range(3)]

    assert asyncio.run(forward()) == [webpod] * 3


def _ws_connect(master: Master, path: str, protocols: list[str],
                headers: dict[str, str] | None = None) -> ClientConnection:
    url = master.url.replace("https", "wss", 1) + path
    tls = ssl.create_default_context(cadata=master.ca_pem.decode())
    return connect(url, ssl=tls, additional_headers=headers,
                   subprotocols=[Subprotocol(p) for p in protocols], open_timeout=20)


def test_websocket_upgrades_are_authenticated(master: Master, shell: Path) -> None:
    path = "/api/v1/namespaces/default/pods/shell/exec?command=echo&command=ok&stdout=true"
    with pytest.raises(InvalidStatus) as refused:
        _ws_connect(master, path, ["v5.channel.k8s.io"])
    assert refused.value.response.status_code == 401
    # kube-apiserver's token-as-subprotocol, for clients that cannot set headers
    encoded = base64.urlsafe_b64encode(master.token.encode()).decode().rstrip("=")
    with _ws_connect(master, path, [f"base64url.bearer.authorization.k8s.io.{encoded}",
                                    "v4.channel.k8s.io"]) as ws:
        assert ws.subprotocol == "v4.channel.k8s.io"
        messages = list(ws)
    assert messages[0] == b"\x01ok\n"
    assert json.loads(messages[-1][1:]) == {"metadata": {}, "status": "Success"}
    with pytest.raises(InvalidStatus) as missing:
        _ws_connect(master, path.replace("shell", "nope"), ["v5.channel.k8s.io"],
                    {"Authorization": f"Bearer {master.token}"})
    status = json.loads(missing.value.response.body or b"{}")
    assert (missing.value.response.status_code, status["reason"]) == (404, "NotFound")
    assert status["details"] == {"name": "nope", "kind": "pods"}


def test_async_clients_exec(master: Master, shell: Path) -> None:
    """kubernetes_asyncio and kr8s were refused (403) on their upgrade before."""

    async def both() -> tuple[str, bytes, int]:
        from kubernetes_asyncio import client as aclient
        from kubernetes_asyncio import config as aconfig
        from kubernetes_asyncio.stream import WsApiClient

        configuration = aclient.Configuration()
        await aconfig.load_kube_config(str(master.kubeconfig),
                                       client_configuration=configuration)
        async with WsApiClient(configuration) as ws_api:
            out = await aclient.CoreV1Api(ws_api).connect_get_namespaced_pod_exec(
                "shell", "default", command=["sh", "-c", "echo $GREETING"], stderr=True,
                stdin=False, stdout=True, tty=False)
        api = await kr8s.asyncio.api(kubeconfig=str(master.kubeconfig))
        pod = await kr8s.asyncio.objects.Pod.get("shell", namespace="default", api=api)
        done = await pod.exec(["sh", "-c", "echo from kr8s; exit 5"], check=False)
        return str(out), bytes(done.stdout), int(done.returncode)

    assert asyncio.run(both()) == ("hello there\n", b"from kr8s\n", 5)
