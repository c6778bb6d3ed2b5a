"""Kubelet TLS bootstrapping with real processes: an agent given only a
short-lived bootstrap token (`corral token create --bootstrap`) asks for
system:node:<name>'s client certificate, gets it auto-approved, keeps it (0600)
and works with it — registered, running a pod whose logs the real kubectl reads
through the master — also after the token is revoked; an expired or revoked
bootstrap token is refused and the agent says so."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from corral.api.certificates.signer import KUBELET_CLIENT_CN, KUBELET_CLIENT_STEM, Signer
from corral.api.tls import ensure_pki
from corral.api.token_store import create_token
from corral.client.kubeconfig import write_kubeconfig
from tests.cluster import Agent, Master
from tests.conftest import AgentFactory
from tests.integration.agent_api.conftest import create_pod, make_pod, phase, wait_pod
from tests.kubectl import Kubectl
from tests.poll import wait_for


def _corral_token(master: Master, *args: str) -> str:
    made = subprocess.run([sys.executable, "-m", "corral.cli.main", "token", *args,
                           "--data-dir", str(master.data_dir)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def _bootstrap_kubeconfig(master: Master, token: str, where: Path) -> Path:
    path = where / "bootstrap.kubeconfig"
    write_kubeconfig(path, master.url, master.ca_pem, token)
    return path


def test_an_agent_bootstrapped_from_a_token_gets_a_node_certificate_and_works(
        master: Master, agents: AgentFactory, tmp_path: Path) -> None:
    token = _corral_token(master, "create", "--bootstrap", "--ttl", "10m")
    token_id = token.split(".")[0]
    listing = _corral_token(master, "list")
    assert f"system:bootstrap:{token_id}" in listing and "system:bootstrappers" in listing
    boot = _bootstrap_kubeconfig(master, token, tmp_path)
    agent = agents(master, "boot-1", "--bootstrap-kubeconfig", str(boot),
                   node_ip="127.0.1.71")
    pki = agent.state_dir / "pki"
    key = pki / "client.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(pki.stat().st_mode) == 0o700
    cert = x509.load_pem_x509_certificate((pki / "client.pem").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=system:node:boot-1,O=system:nodes"
    kubectl = Kubectl(master, tmp_path / "cache")
    csrs = json.loads(kubectl("get", "csr", "-o", "json"))["items"]
    mine = [c for c in csrs if c["spec"]["username"] == f"system:bootstrap:{token_id}"]
    assert len(mine) == 1 and mine[0]["spec"]["signerName"] == \
        "kubernetes.io/kube-apiserver-client-kubelet"
    assert "Approved,Issued" in kubectl("get", "csr", mine[0]["metadata"]["name"])
    # The node wrote its own status with its certificate: the master calls its agent.
    with master.http() as http:
        node = http.get("/api/v1/nodes/boot-1").json()
        assert node["metadata"]["annotations"]["corral.dev/endpoints-written-by"] == \
            "system:node:boot-1"
        create_pod(http, make_pod("boot-pod", "boot-1", ["sh", "-c", "echo from boot-1"]))
        wait_pod(http, "boot-pod", lambda p: phase(p) == "Succeeded")
    assert kubectl("logs", "boot-pod") == "from boot-1\n"
    # Revoked, the token is no longer needed: the agent restarts on its certificate.
    _corral_token(master, "revoke", token_id)
    agent.stop()
    agent.start()
    assert "node client certificate issued" not in agent.log().split("starting agent")[-1]


def test_an_expired_or_revoked_bootstrap_token_is_refused(
        master: Master, agents: AgentFactory, tmp_path: Path) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    expired, _ = create_token(master.data_dir, None, dt.timedelta(hours=1), now=long_ago)
    revoked = _corral_token(master, "create", "--bootstrap")
    _corral_token(master, "revoke", revoked.split(".")[0])
    for name, token in (("boot-expired", expired), ("boot-revoked", revoked)):
        where = tmp_path / name
        where.mkdir()
        agent: Agent = agents(master, name, "--bootstrap-kubeconfig",
                              str(_bootstrap_kubeconfig(master, token, where)), start=False)
        agent.start(wait_registered=False)
        assert agent.proc is not None
        code = wait_for(lambda a=agent: a.proc is not None and a.proc.poll(), timeout=60,
                        what=f"{name} to give up on its bootstrap token")
        assert code == 1
        assert "the master refused the bootstrap token (Unauthorized" in agent.log()
        assert not (agent.state_dir / "pki" / "client.pem").exists()
    with master.http() as http:
        assert http.get("/api/v1/nodes/boot-expired").status_code == 404


def test_a_serving_certificate_no_rule_approves_waits_for_the_operator(
        master: Master, agents: AgentFactory, tmp_path: Path) -> None:
    """An agent run with the admin's credential (not the node's) asks for its
    serving certificate, which nothing approves on its own: it waits until an
    operator approves it with kubectl, then serves; and since the admin, not the
    node, wrote its address, the master will not call it."""
    kubectl = Kubectl(master, tmp_path / "cache")
    agent = agents(master, "as-admin", "--kubeconfig", str(master.kubeconfig),
                   node_ip="127.0.1.72", start=False)
    agent.start(wait_registered=False)

    def pending() -> str | None:
        items = json.loads(kubectl("get", "csr", "-o", "json"))["items"]
        return next((c["metadata"]["name"] for c in items
                     if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
                     and c["spec"]["username"] == "admin"
                     and not c.get("status", {}).get("conditions")), None)

    name = wait_for(pending, timeout=60, what="the agent's serving CSR, pending")
    # Logged just after the request is made (the whole log: other lines may follow).
    wait_for(lambda: f"kubectl certificate approve {name}" in agent.log_path.read_text(),
             what="the agent naming the command that approves its request")
    kubectl("certificate", "approve", name)
    agent.wait_registered(timeout=60)
    with master.http() as http:
        refused = http.get("/api/v1/nodes/as-admin/proxy/healthz")
    assert refused.status_code == 503
    assert "was written by 'admin', not by the node's own credential" in \
        refused.json()["message"]


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_a_live_agent_rotates_its_certificates_and_stays_ready(
        agents: AgentFactory, tmp_path: Path) -> None:
    """With a 20 s signing duration (`--cluster-signing-duration`), a bootstrapped
    agent renews its client and its serving certificate at 70-90 % of their life,
    without a restart; once the first client certificate has ended, the node
    still heartbeats (new connections show the new one: the master refuses an
    ended certificate even on a kept-alive connection) and the master still calls
    it; and the csrcleaner removes the requests whose certificates ended. The
    master renews its own serving and kubelet-client certificates near their end
    while it runs (`--cert-check-interval`), and serves and uses the new ones."""
    master = Master(tmp_path / "short", extra_args=["--cluster-signing-duration", "20s",
                                                    "--cert-check-interval", "1"])
    master.start()
    try:
        token = _corral_token(master, "create", "--bootstrap", "--ttl", "10m")
        agent = agents(master, "rot-1", "--bootstrap-kubeconfig",
                       str(_bootstrap_kubeconfig(master, token, tmp_path)),
                       node_ip="127.0.1.73")
        pid = agent.pid
        pki = agent.state_dir / "pki"
        first = x509.load_pem_x509_certificate((pki / "client.pem").read_bytes())
        # 20 s, backdated a tenth of it: renewed 13-18 s after it was issued.
        assert first.not_valid_after_utc - first.not_valid_before_utc == dt.timedelta(seconds=22)
        first_serving = _serial(pki / "serving.pem")
        wait_for(lambda: _serial(pki / "client.pem") != first.serial_number
                 and _serial(pki / "serving.pem") != first_serving, timeout=90,
                 what="both certificates rotated")
        ended = first.not_valid_after_utc

        def heartbeat_after_the_first_ended() -> bool:
            with master.http() as http:
                lease = http.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/"
                                 "leases/rot-1").json()
                node = http.get("/api/v1/nodes/rot-1").json()
            renewed = dt.datetime.fromisoformat(lease["spec"]["renewTime"])
            ready = [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"]
            return renewed > ended + dt.timedelta(seconds=1) and ready == ["True"]

        wait_for(heartbeat_after_the_first_ended, timeout=60,
                 what="a heartbeat after the first client certificate ended, node Ready")
        assert agent.proc is not None and agent.proc.poll() is None and agent.pid == pid
        log = agent.log_path.read_text()  # all of it: log() is the last 8000 characters
        assert "certificate rotated what=client" in log and \
            "certificate rotated what=serving" in log
        # The renewals were asked by the node itself and auto-approved.
        kubectl = Kubectl(master, tmp_path / "cache")
        mine = [c for c in json.loads(kubectl("get", "csr", "-o", "json"))["items"]
                if c["spec"]["username"] == "system:node:rot-1"]
        signers = {c["spec"]["signerName"] for c in mine
                   if c["status"]["conditions"][0]["reason"] == "AutoApproved"}
        assert signers == {"kubernetes.io/kube-apiserver-client-kubelet",
                           "kubernetes.io/kubelet-serving"}
        # The csrcleaner deletes a request once its certificate has ended: the
        # bootstrap token's request (its certificate ended above) goes.
        wait_for(lambda: not [c for c in json.loads(kubectl("get", "csr", "-o", "json"))["items"]
                              if c["spec"]["username"].startswith("system:bootstrap:")],
                 what="the bootstrap request cleaned once its certificate ended")
        # A new connection to the agent is shown its current serving certificate,
        # and the master, with its own client certificate, still reaches it.
        with master.http() as http:
            node = http.get("/api/v1/nodes/rot-1").json()
            port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
            shown = ssl.get_server_certificate(("127.0.1.73", port))
            assert x509.load_pem_x509_certificate(shown.encode()).serial_number in {
                _serial(pki / "serving.pem"), first_serving} - {first_serving}
            assert http.get("/api/v1/nodes/rot-1/proxy/healthz").status_code == 200
        _master_renews_its_own(master)
        agent.stop()
    finally:
        master.stop()


def _served_serial(master: Master) -> int:
    shown = ssl.get_server_certificate((master.host, master.port))
    return x509.load_pem_x509_certificate(shown.encode()).serial_number


def _master_renews_its_own(master: Master) -> None:
    """Both of the master's certificates put on disk as if made 340 days ago
    (25 days left): it re-issues them and serves and uses the new ones."""
    pki = master.data_dir / "pki"
    first = _served_serial(master)
    assert first == _serial(pki / "server.crt")
    then = dt.datetime.now(dt.UTC) - dt.timedelta(days=340)
    for stem in ("server", KUBELET_CLIENT_STEM):
        for suffix in (".crt", ".key"):
            (pki / f"{stem}{suffix}").unlink()
    ensure_pki(master.data_dir, [], now=then)
    Signer(pki).ensure_client_cert(KUBELET_CLIENT_STEM, KUBELET_CLIENT_CN, now=then)
    old = {_serial(pki / "server.crt"), first}

    def renewed() -> bool:
        cert = x509.load_pem_x509_certificate((pki / "server.crt").read_bytes())
        return cert.serial_number not in old and _served_serial(master) == cert.serial_number
    wait_for(renewed, timeout=30, what="the master serving a renewed certificate")
    client = x509.load_pem_x509_certificate((pki / f"{KUBELET_CLIENT_STEM}.crt").read_bytes())
    assert client.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=300)
    wait_for(lambda: "certificate reloaded name=kubelet-client" in master.log_path.read_text(),
             timeout=30, what="the master's kubelet-client certificate reloaded")
    with master.http() as http:  # calls the agent with the new client certificate
        assert http.get("/api/v1/nodes/rot-1/proxy/healthz").status_code == 200
