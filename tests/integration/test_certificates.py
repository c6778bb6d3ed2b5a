"""CertificateSigningRequests against a real master: node client certificates
auto-approved for a bootstrapper and for a node renewing its own, signed by the
cluster CA and accepted as client certificates (CN user, O groups) by the real
`kubernetes` client; what a node may not approve or ask for; `kubectl get csr`
and `kubectl certificate approve|deny`; NodeRestriction's label rule."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from kubernetes import client

from corral.agent.csr import csr_object, key_pem, new_key, request_pem
from corral.client.clock import FakeClock
from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.csrcleaner import CsrCleanerController
from corral.controllers.informers import SharedInformers
from corral.objects import name_of
from tests.cluster import Master
from tests.kubectl import Kubectl

CERTS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
CLIENT_USAGES = ["digital signature", "client auth"]


def _token(master: Master, *args: str) -> str:
    made = subprocess.run([sys.executable, "-m", "corral.cli.main", "token", "create",
                           "--data-dir", str(master.data_dir), *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def _bearer(master: Master, token: str) -> httpx.Client:
    return httpx.Client(base_url=master.url, verify=str(master.ca_path), timeout=30.0,
                        headers={"Authorization": f"Bearer {token}"})


def _node_request(name: str, csr_name: str) -> tuple[bytes, dict[str, object]]:
    key = new_key()
    pem = request_pem(key, f"system:node:{name}", ("system:nodes",))
    return key_pem(key), csr_object(csr_name, pem, KUBELET_CLIENT, CLIENT_USAGES)


def _conditions(csr: dict[str, object]) -> list[str]:
    status = csr.get("status") or {}
    assert isinstance(status, dict)
    return [str(c["type"]) for c in status.get("conditions") or []]


def _save_credential(dirpath: Path, key: bytes, csr: dict[str, object]) -> tuple[str, str]:
    status = csr["status"]
    assert isinstance(status, dict)
    cert_path, key_path = dirpath / "node.crt", dirpath / "node.key"
    cert_path.write_bytes(base64.b64decode(status["certificate"]))
    key_path.write_bytes(key)
    return str(cert_path), str(key_path)


def _cert_http(master: Master, cert: tuple[str, str]) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(master.ca_path))
    context.load_cert_chain(*cert)
    return httpx.Client(base_url=master.url, verify=context, timeout=30.0)


def _cert_api(master: Master, cert: tuple[str, str]) -> client.ApiClient:
    cfg = client.Configuration(host=master.url)
    cfg.ssl_ca_cert = str(master.ca_path)
    cfg.cert_file, cfg.key_file = cert
    return client.ApiClient(cfg)


@pytest.fixture(scope="module")
def node_cert(master: Master, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """system:node:csr-n1's client certificate, asked for with a bootstrap token."""
    bootstrap = _token(master, "--user", "system:bootstrap:test", "--group",
                       "system:bootstrappers", "--ttl", "10m")
    key, body = _node_request("csr-n1", "node-csr-n1")
    with _bearer(master, bootstrap) as http:
        made = http.post(CERTS, json=body)
    assert made.status_code == 201, made.text
    csr = made.json()
    assert csr["spec"]["username"] == "system:bootstrap:test"
    assert "system:bootstrappers" in csr["spec"]["groups"]
    assert _conditions(csr) == ["Approved"]
    assert csr["status"]["conditions"][0]["reason"] == "AutoApproved"
    cert = x509.load_pem_x509_certificate(base64.b64decode(csr["status"]["certificate"]))
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(master.ca_pem))
    return _save_credential(tmp_path_factory.mktemp("node-cert"), key, csr)


def test_a_bootstrapped_node_certificate_authenticates_as_the_node(
        master: Master, node_cert: tuple[str, str]) -> None:
    me = client.AuthenticationV1Api(_cert_api(master, node_cert)).create_self_subject_review(
        client.V1SelfSubjectReview())
    assert me.status.user_info.username == "system:node:csr-n1"
    assert set(me.status.user_info.groups) == {"system:nodes", "system:authenticated"}
    # NodeRestriction applies to it as to a node's token.
    nodes = client.CoreV1Api(_cert_api(master, node_cert))
    nodes.create_node(client.V1Node(metadata=client.V1ObjectMeta(
        name="csr-n1", labels={"kubernetes.io/hostname": "csr-n1"})))
    with pytest.raises(client.ApiException) as err:
        nodes.delete_node("some-other-node")
    assert err.value.status == 403


def test_a_node_renews_its_own_but_cannot_ask_or_approve_for_another(
        master: Master, node_cert: tuple[str, str]) -> None:
    with _cert_http(master, node_cert) as http:
        _, own = _node_request("csr-n1", "renew-csr-n1")
        renewed = http.post(CERTS, json=own).json()
        assert _conditions(renewed) == ["Approved"] and renewed["status"]["certificate"]
        assert "self kubelet client" in renewed["status"]["conditions"][0]["message"]
        _, other = _node_request("csr-n2", "csr-n1-asks-for-n2")
        asked = http.post(CERTS, json=other).json()
        assert _conditions(asked) == [] and not asked["status"].get("certificate")
        asked["status"] = {"conditions": [{"type": "Approved", "status": "True",
                                           "reason": "Mine", "message": "mine"}]}
        refused = http.put(f"{CERTS}/csr-n1-asks-for-n2/approval", json=asked)
        assert refused.status_code == 403, refused.text
        assert 'cannot update resource "certificatesigningrequests/approval"' in \
            refused.json()["message"]
        assert http.get(f"{CERTS}/csr-n1-asks-for-n2").json()["status"].get("certificate") \
            is None


def test_a_node_may_not_set_restricted_labels(master: Master,
                                              node_cert: tuple[str, str]) -> None:
    with _cert_http(master, node_cert) as http:
        path = "/api/v1/nodes/csr-n1"
        merge = {"Content-Type": "application/merge-patch+json"}
        ok = http.patch(path, headers=merge, content=json.dumps({"metadata": {"labels": {
            "disk": "ssd", "node.kubernetes.io/instance-type": "big"}}}))
        assert ok.status_code == 200, ok.text
        for label in ("node-restriction.kubernetes.io/trusted", "node-role.kubernetes.io/master",
                      "example.k8s.io/x"):
            refused = http.patch(path, headers=merge, content=json.dumps(
                {"metadata": {"labels": {label: "true"}}}))
            assert refused.status_code == 403, refused.text
            assert refused.json()["message"] == (
                f'nodes "csr-n1" is forbidden: is not allowed to modify labels: {label}')


def test_kubectl_get_approve_and_deny(master: Master, tmp_path: Path) -> None:
    kubectl = Kubectl(master, tmp_path / "cache")
    for name in ("jane-csr", "joe-csr"):
        user = name.split("-")[0]
        body = csr_object(name, request_pem(new_key(), user, ("dev",)),
                          "kubernetes.io/kube-apiserver-client", ["client auth"], 3600)
        kubectl("create", "-f", "-", input=json.dumps(body))
    table = kubectl("get", "csr", "jane-csr")
    assert "kubernetes.io/kube-apiserver-client" in table and "Pending" in table
    assert "admin" in table and "60m" in table
    kubectl("certificate", "approve", "jane-csr")
    kubectl("certificate", "deny", "joe-csr")
    assert "Approved,Issued" in kubectl("get", "csr", "jane-csr")
    assert "Denied" in kubectl("get", "csr", "joe-csr")
    issued = json.loads(kubectl("get", "csr", "jane-csr", "-o", "json"))
    cert = x509.load_pem_x509_certificate(base64.b64decode(issued["status"]["certificate"]))
    assert cert.subject.rfc4514_string() == "CN=jane,O=dev"
    assert not json.loads(kubectl("get", "csr", "joe-csr", "-o", "json"))["status"].get(
        "certificate")


def test_a_bad_request_is_refused_naming_the_field(master: Master) -> None:
    body = csr_object("bad-csr", b"not a request", KUBELET_CLIENT, CLIENT_USAGES)
    with master.http() as http:
        refused = http.post(CERTS, json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["details"]["causes"][0]["field"] == "spec.request"
        # A node client certificate must name a node.
        wrong = csr_object("wrong-csr", request_pem(new_key(), "jane", ("dev",)),
                           KUBELET_CLIENT, CLIENT_USAGES)
        refused = http.post(CERTS, json=wrong)
        assert refused.status_code == 422
        assert "system:node:" in refused.json()["details"]["causes"][0]["message"]


async def test_old_requests_are_cleaned(master: Master, tmp_path: Path) -> None:
    """kube-controller-manager's csrcleaner on a fake clock: decided requests go an
    hour after the decision, pending ones after a day, approved ones that no signer
    here issues stay."""
    kubectl = Kubectl(master, tmp_path / "cache")
    names = {"issued": "apiserver-client", "denied": "apiserver-client",
             "pending": "example.com/x", "unissued": "example.com/x"}
    with master.http() as http:
        for name, signer in names.items():
            body = csr_object(f"clean-{name}", request_pem(new_key(), name, ("dev",)),
                              signer if "/" in signer else f"kubernetes.io/kube-{signer}",
                              ["client auth"])
            assert http.post(CERTS, json=body).status_code == 201
    kubectl("certificate", "approve", "clean-issued", "clean-unissued")
    kubectl("certificate", "deny", "clean-denied")
    async with Client.from_kubeconfig(master.kubeconfig) as api:
        clock = FakeClock(datetime.now(UTC))
        informers = SharedInformers(api)
        cleaner = CsrCleanerController(api, informers, EventRecorder(api), clock=clock)
        informers.start()
        try:
            await informers.wait_synced(30)

            async def after(seconds: float) -> set[str]:
                clock.advance(seconds)
                for name in names:
                    await cleaner.reconcile(f"clean-{name}")
                left = (await api.list("CertificateSigningRequest")).items
                return {n for csr in left if (n := name_of(csr)).startswith("clean-")}

            everything = {f"clean-{n}" for n in names}
            assert await after(0) == everything
            assert await after(3500) == everything
            assert await after(200) == {"clean-pending", "clean-unissued"}
            assert await after(22 * 3600) == {"clean-pending", "clean-unissued"}
            assert await after(2 * 3600) == {"clean-unissued"}
        finally:
            cleaner.queue.shutdown()
            await informers.stop()
