"""The master ↔ agent channel, probed with a fake "agent" this test controls: the
master calls only an agent endpoint the node's own credential registered, over
TLS with its own client certificate (never the caller's token), and only an
agent whose certificate the cluster CA issued for that node's name. What a
caller may reach through it (pods/log, pods/exec, nodes/proxy) is authorized at
the master."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from corral.agent.csr import csr_object, key_pem, new_key, request_pem
from tests.cluster import Master

CERTS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


@pytest.fixture(scope="module")
def master(quiet_master: Master) -> Master:
    """No controllers: a pod bound to a fake node stays (nothing evicts it)."""
    return quiet_master


def _token(master: Master, user: str, *groups: str) -> str:
    args = [a for g in groups for a in ("--group", g)]
    made = subprocess.run([sys.executable, "-m", "corral.cli.main", "token", "create",
                           "--data-dir", str(master.data_dir), "--user", user, *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def _as(master: Master, token: str) -> httpx.Client:
    return httpx.Client(base_url=master.url, verify=str(master.ca_path), timeout=30.0,
                        headers={"Authorization": f"Bearer {token}"})


@dataclass
class FakeAgent:
    """A TLS listener on loopback that answers one JSON document to whatever
    asks, and keeps what it was sent and who showed which client certificate."""

    cert: Path
    key: Path
    ca: Path
    sock: socket.socket = field(init=False)
    received: list[bytes] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)
    handshakes_failed: int = 0
    _stop: bool = False

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _serve(self) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        context.verify_mode = ssl.CERT_OPTIONAL
        while not self._stop:
            try:
                raw, _ = self.sock.accept()
            except TimeoutError:
                continue
            with raw:
                self._answer(context, raw)

    def _answer(self, context: ssl.SSLContext, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            conn = context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            return
        with conn:
            der = conn.getpeercert(binary_form=True)
            if der:
                cert = x509.load_der_x509_certificate(der)
                self.peers.append(str(cert.subject.get_attributes_for_oid(
                    NameOID.COMMON_NAME)[0].value))
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.received.append(data)
            body = b'{"node": {"nodeName": "fake"}}'
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"content-length: " + str(len(body)).encode() +
                         b"\r\nconnection: close\r\n\r\n" + body)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=5)
        self.sock.close()


def _serving_cert(master: Master, token: str, node: str, where: Path) -> tuple[Path, Path]:
    """A serving certificate for `node` from the cluster CA, asked for with the
    node's own token (auto-approved, as an agent's is)."""
    key = new_key()
    body = csr_object("csr-", request_pem(key, f"system:node:{node}", ("system:nodes",),
                                          ("127.0.0.1", node)),
                      "kubernetes.io/kubelet-serving", ["digital signature", "server auth"])
    with _as(master, token) as http:
        made = http.post(CERTS, json=body)
    assert made.status_code == 201, made.text
    cert, key_path = where / f"{node}.crt", where / f"{node}.key"
    cert.write_bytes(base64.b64decode(made.json()["status"]["certificate"]))
    key_path.write_bytes(key_pem(key))
    return cert, key_path


def _register(http: httpx.Client, node: str, port: int) -> None:
    """Create the Node and name 127.0.0.1:port as its agent, with http's credential."""
    made = http.post("/api/v1/nodes", json={"metadata": {"name": node}})
    assert made.status_code in (201, 409), made.text
    current = http.get(f"/api/v1/nodes/{node}").json()
    current["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                         "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}
    written = http.put(f"/api/v1/nodes/{node}/status", json=current)
    assert written.status_code == 200, written.text


@pytest.fixture
def fake_agents(master: Master, tmp_path: Path) -> Iterator[list[FakeAgent]]:
    started: list[FakeAgent] = []
    try:
        yield started
    finally:
        for agent in started:
            agent.close()


def _node_with_fake_agent(master: Master, where: Path, fakes: list[FakeAgent],
                          node: str) -> tuple[str, FakeAgent]:
    """A node's token, and a fake agent with the node's serving certificate that
    the node itself registered as its agent."""
    node_token = _token(master, f"system:node:{node}", "system:nodes")
    fake = FakeAgent(*_serving_cert(master, node_token, node, where), master.ca_path)
    fakes.append(fake)
    with _as(master, node_token) as as_node:
        _register(as_node, node, fake.port)
    return node_token, fake


def test_the_master_calls_with_its_own_certificate_never_the_callers_token(
        master: Master, tmp_path: Path, fake_agents: list[FakeAgent]) -> None:
    node_token, fake = _node_with_fake_agent(master, tmp_path, fake_agents, "decoy")
    with master.http() as admin:
        got = admin.get("/api/v1/nodes/decoy/proxy/stats/summary")
    assert got.status_code == 200, got.text
    assert got.json() == {"node": {"nodeName": "fake"}}
    (request,) = fake.received
    assert request.startswith(b"GET /stats/summary HTTP/1.1")
    assert b"authorization" not in request.lower()
    assert master.token.encode() not in request and node_token.encode() not in request
    assert fake.peers == ["kube-apiserver-kubelet-client"]


def test_the_node_proxy_refuses_an_address_the_node_did_not_register(
        master: Master, tmp_path: Path, fake_agents: list[FakeAgent]) -> None:
    node_token = _token(master, "system:node:ghost", "system:nodes")
    cert, key = _serving_cert(master, node_token, "ghost", tmp_path)
    fake = FakeAgent(cert, key, master.ca_path)
    fake_agents.append(fake)
    with master.http() as admin:
        _register(admin, "ghost", fake.port)  # the admin, not the node, names the address
        refused = admin.get("/api/v1/nodes/ghost/proxy/stats/summary")
        assert refused.status_code == 503
        assert refused.json()["message"] == (
            f"node ghost's agent endpoint 127.0.0.1:{fake.port} was written by 'admin', not "
            "by the node's own credential system:node:ghost: the master calls only an "
            "address the node registered itself")
        # The annotation that records it is the server's: a client cannot forge it.
        forged = admin.patch("/api/v1/nodes/ghost", headers={
            "Content-Type": "application/merge-patch+json"}, content=json.dumps(
            {"metadata": {"annotations": {
                "corral.dev/endpoints-written-by": "system:node:ghost"}}}))
        assert forged.status_code == 200
        assert forged.json()["metadata"]["annotations"][
            "corral.dev/endpoints-written-by"] == "admin"
        assert admin.get("/api/v1/nodes/ghost/proxy/stats/summary").status_code == 503
    assert fake.received == [] and fake.handshakes_failed == 0  # never even connected


def test_the_master_refuses_an_agent_certified_for_another_node(
        master: Master, tmp_path: Path, fake_agents: list[FakeAgent]) -> None:
    thief = _token(master, "system:node:thief", "system:nodes")
    victim = _token(master, "system:node:victim", "system:nodes")
    cert, key = _serving_cert(master, victim, "victim", tmp_path)
    fake = FakeAgent(cert, key, master.ca_path)  # victim's certificate, thief's address
    fake_agents.append(fake)
    with _as(master, thief) as as_thief:
        _register(as_thief, "thief", fake.port)
    with master.http() as admin:
        refused = admin.get("/api/v1/nodes/thief/proxy/stats/summary")
    assert refused.status_code == 503, refused.text
    assert "CERTIFICATE_VERIFY_FAILED" in refused.json()["message"] or \
        "certificate" in refused.json()["message"].lower()
    assert fake.received == []
    # A node may not have its own serving certificate name another node.
    other = csr_object("csr-", request_pem(new_key(), "system:node:thief", ("system:nodes",),
                                           ("127.0.0.1", "victim")),
                       "kubernetes.io/kubelet-serving", ["digital signature", "server auth"])
    with _as(master, thief) as as_thief:
        asked = as_thief.post(CERTS, json=other).json()
    assert not asked["status"].get("certificate") and not asked["status"].get("conditions")


def test_logs_exec_and_node_proxy_are_authorized_at_the_master(
        master: Master, tmp_path: Path, fake_agents: list[FakeAgent]) -> None:
    _, fake = _node_with_fake_agent(master, tmp_path, fake_agents, "authz-node")
    with master.http() as admin:
        for kind, body in (("roles", {"metadata": {"name": "pod-reader"}, "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
                ("rolebindings", {"metadata": {"name": "pod-reader"}, "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "pod-reader"}, "subjects": [{"kind": "User", "name": "reader"}]})):
            made = admin.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/default/{kind}",
                              json=body)
            assert made.status_code == 201, made.text
        made = admin.post("/api/v1/namespaces/default/pods", json={
            "metadata": {"name": "on-authz-node"}, "spec": {"nodeName": "authz-node",
                                                            "containers": [{"name": "c", "image": "x"}]}})
        assert made.status_code == 201, made.text
    reader = _token(master, "reader")
    base = "/api/v1/namespaces/default/pods/on-authz-node"
    with _as(master, reader) as http:
        assert http.get(base).status_code == 200
        for path, verb in ((f"{base}/log", 'get resource "pods/log"'),
                           ("/api/v1/nodes/authz-node/proxy/stats/summary",
                            'get resource "nodes/proxy"')):
            refused = http.get(path)
            assert refused.status_code == 403, refused.text
            assert f'User "reader" cannot {verb}' in refused.json()["message"]
        refused = http.post(f"{base}/exec?command=ls&stdout=true")
        assert refused.status_code == 403
        assert 'cannot create resource "pods/exec"' in refused.json()["message"]
        refused = http.post(f"{base}/portforward?ports=80")
        assert 'cannot create resource "pods/portforward"' in refused.json()["message"]
        refused = http.post(f"{base}/attach?stdout=true")
        assert 'cannot create resource "pods/attach"' in refused.json()["message"]
    assert fake.received == []  # nothing reached the agent for a refused caller
