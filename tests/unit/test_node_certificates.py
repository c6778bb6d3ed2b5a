"""The pure rules of node identities: which labels a node may not give itself
(NodeRestriction), what each built-in signer signs, and the CA's signature."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from corral.agent.csr import new_key, request_pem
from corral.api.auth import REQUESTER, User
from corral.api.certificates.requests import (
    APISERVER_CLIENT,
    KUBELET_CLIENT,
    KUBELET_SERVING,
    parse_request,
    signer_problem,
)
from corral.api.certificates.signer import Signer
from corral.api.node_endpoints import WRITER_ANNOTATION, EndpointWriterAdmission
from corral.api.node_restriction import forbidden_label, modified_labels
from corral.api.resources import BY_KIND
from corral.api.tls import ensure_pki
from corral.api.token_store import (
    TOKENS_FILE,
    HashedTokens,
    create_token,
    read_tokens,
    revoke_token,
)


@pytest.mark.parametrize(("label", "forbidden"), [
    ("node-restriction.kubernetes.io/trusted", True),
    ("team.node-restriction.kubernetes.io/x", True),
    ("node-role.kubernetes.io/control-plane", True),
    ("example.k8s.io/x", True),
    ("kubernetes.io/hostname", False),
    ("topology.kubernetes.io/zone", False),
    ("node.kubernetes.io/instance-type", False),
    ("kubelet.kubernetes.io/anything", False),
    ("disk", False),
    ("example.com/gpu", False),
])
def test_labels_a_node_may_not_give_itself(label: str, forbidden: bool) -> None:
    assert forbidden_label(label) is forbidden


def test_modified_labels_are_added_changed_or_removed() -> None:
    assert modified_labels({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "x", "d": "4"}) == \
        {"b", "c", "d"}


def _request(cn: str, groups: tuple[str, ...] = (), sans: tuple[str, ...] = ()) -> x509.CertificateSigningRequest:
    pem = request_pem(new_key(), cn, groups, sans)
    return parse_request(base64.b64encode(pem).decode())


def test_each_signer_signs_only_what_it_is_for() -> None:
    node = _request("system:node:n1", ("system:nodes",))
    served = _request("system:node:n1", ("system:nodes",), ("127.0.1.1", "n1"))
    assert signer_problem(KUBELET_CLIENT, node, ["digital signature", "client auth"]) is None
    assert signer_problem(KUBELET_CLIENT, node, ["server auth"]) is not None
    assert signer_problem(KUBELET_CLIENT, served, ["client auth"]) is not None  # SANs
    assert signer_problem(KUBELET_CLIENT, _request("system:node:n1", ("system:masters",)),
                          ["client auth"]) is not None
    assert signer_problem(KUBELET_SERVING, served, ["digital signature", "server auth"]) is None
    assert signer_problem(KUBELET_SERVING, node, ["server auth"]) is not None  # no SANs
    assert signer_problem(APISERVER_CLIENT, _request("jane"), ["client auth"]) is None
    assert signer_problem(APISERVER_CLIENT, _request("jane"), ["server auth"]) is not None


def test_a_bad_request_says_why() -> None:
    with pytest.raises(ValueError, match="base64"):
        parse_request("not base64!")
    with pytest.raises(ValueError, match="CERTIFICATE REQUEST"):
        parse_request(base64.b64encode(b"hello").decode())


def test_the_signer_issues_what_was_asked_for_a_bounded_time(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, [])
    pem = request_pem(new_key(), "system:node:n1", ("system:nodes",), ("127.0.1.1",))
    signed = Signer(tmp_path / "pki").sign(base64.b64encode(pem).decode(),
                                          ["digital signature", "server auth"], 3600)
    cert = x509.load_pem_x509_certificate(base64.b64decode(signed))
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.ca_pem))
    assert cert.subject.rfc4514_string() == "CN=system:node:n1,O=system:nodes"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime.total_seconds() == 3600 + 300  # asked for an hour, backdated 5 min
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.1.1"]


def test_the_signing_duration_bounds_every_certificate(tmp_path: Path) -> None:
    ensure_pki(tmp_path, [])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    signer = Signer(tmp_path / "pki", dt.timedelta(seconds=30))
    pem = base64.b64encode(request_pem(new_key(), "system:node:n1", ("system:nodes",))).decode()
    for asked in (None, 3600):  # expirationSeconds may shorten it, never lengthen it
        cert = x509.load_pem_x509_certificate(base64.b64decode(
            signer.sign(pem, ["digital signature", "client auth"], asked, now=now)))
        assert cert.not_valid_after_utc == now + dt.timedelta(seconds=30)
        assert cert.not_valid_before_utc == now - dt.timedelta(seconds=3)  # a tenth
    long = Signer(tmp_path / "pki", dt.timedelta(days=30))
    cert = x509.load_pem_x509_certificate(base64.b64decode(
        long.sign(pem, ["client auth"], None, now=now)))
    assert cert.not_valid_after_utc == now + dt.timedelta(days=30, minutes=-5)


def test_a_bootstrap_token_names_its_own_bootstrapper_and_expires(tmp_path: Path) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    token, issued = create_token(tmp_path, None, dt.timedelta(minutes=30), now=now)
    assert issued.user.name == f"system:bootstrap:{issued.id}" and token.startswith(issued.id)
    assert issued.user.groups == ("system:bootstrappers",)
    tokens = HashedTokens(tmp_path / TOKENS_FILE)
    assert tokens.authenticate(token, now + dt.timedelta(minutes=29)) == issued.user
    assert tokens.authenticate(token, now + dt.timedelta(minutes=30)) is None


def test_token_writers_never_lose_one_and_drop_expired_ones(tmp_path: Path) -> None:
    """Concurrent creates (a lock around each read-modify-write), expired tokens
    dropped by the next write (Kubernetes' tokencleaner), revoke by id or token."""
    def make(_: int) -> list[str]:
        return [create_token(tmp_path, User(f"u{i}", "", ()))[0] for i in range(5)]

    with ThreadPoolExecutor(8) as pool:
        made = [t for batch in pool.map(make, range(8)) for t in batch]
    assert {t.id for t in read_tokens(tmp_path / TOKENS_FILE)} == {
        t.split(".")[0] for t in made}
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    old, _ = create_token(tmp_path, None, dt.timedelta(hours=1), now=long_ago)
    assert old.split(".")[0] in {t.id for t in read_tokens(tmp_path / TOKENS_FILE)}
    create_token(tmp_path, None)
    ids = {t.id for t in read_tokens(tmp_path / TOKENS_FILE)}
    assert old.split(".")[0] not in ids and len(ids) == 41
    assert revoke_token(tmp_path, made[0])  # the whole token names its id
    assert revoke_token(tmp_path, made[1].split(".")[0])
    assert not revoke_token(tmp_path, made[1])
    assert len(read_tokens(tmp_path / TOKENS_FILE)) == 39


def _node(port: int, writer: str | None = None) -> dict[str, Any]:
    annotations = {WRITER_ANNOTATION: writer} if writer else {}
    return {"metadata": {"name": "n1", "annotations": annotations}, "status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.1.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


def _written_by(user: User, new: dict[str, Any], old: dict[str, Any] | None) -> str | None:
    async def admit() -> None:
        token = REQUESTER.set(user)
        try:
            await EndpointWriterAdmission().admit("UPDATE", BY_KIND["Node"], new, old)
        finally:
            REQUESTER.reset(token)
    asyncio.run(admit())
    return new["metadata"].get("annotations", {}).get(WRITER_ANNOTATION)


NODE = User("system:node:n1", "", ("system:nodes",))
ADMIN = User("admin", "", ("system:masters",))


def test_who_wrote_a_nodes_endpoints_is_the_servers_record() -> None:
    assert _written_by(ADMIN, _node(10250), _node(10250, "system:node:n1")) == \
        "system:node:n1"  # the same endpoints, someone else's write: still the node's
    assert _written_by(ADMIN, _node(6666), _node(10250, "system:node:n1")) == "admin"
    assert _written_by(NODE, _node(6666), _node(6666, "admin")) == "system:node:n1"
    forged = _node(6666, "system:node:n1")  # the client's own claim is not taken
    assert _written_by(ADMIN, forged, _node(6666, "admin")) == "admin"
    impostor = User("system:node:n1", "", ())  # the name without the group
    assert _written_by(impostor, _node(7777), _node(6666, "admin")) == \
        "system:node:n1 (not in system:nodes)"
