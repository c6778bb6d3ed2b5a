"""ServiceAccount JWTs: what the master signs, it verifies; anything altered,
expired, for another audience or signed by another key is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jwt

from corral.api.sa_auth import user_of
from corral.api.sa_tokens import (
    ISSUER,
    Binding,
    TokenSigner,
    ensure_signing_key,
    new_claims,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _signer(tmp_path: Path) -> TokenSigner:
    return TokenSigner(ensure_signing_key(tmp_path / "pki"))


def test_the_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    first = _signer(tmp_path)
    assert (tmp_path / "pki" / "sa.key").stat().st_mode & 0o777 == 0o600
    assert _signer(tmp_path).kid == first.kid


def test_claims_round_trip_as_kubernetes_names_them(tmp_path: Path) -> None:
    signer = _signer(tmp_path)
    claims = new_claims("team", "robot", "sa-uid", (), 3600, Binding("Pod", "web", "pod-uid"),
                        Binding("Node", "n1", "node-uid"), now=T0)
    token = signer.issue(claims)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == signer.kid
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["iss"] == ISSUER and payload["sub"] == "system:serviceaccount:team:robot"
    assert payload["kubernetes.io"] == {
        "namespace": "team", "serviceaccount": {"name": "robot", "uid": "sa-uid"},
        "pod": {"name": "web", "uid": "pod-uid"}, "node": {"name": "n1", "uid": "node-uid"}}
    back = signer.verify(token, now=T0 + dt.timedelta(minutes=30))
    assert back == claims
    user = user_of(back)
    assert user.name == "system:serviceaccount:team:robot"
    assert user.groups[:2] == ("system:serviceaccounts", "system:serviceaccounts:team")
    assert dict(user.extra)["authentication.kubernetes.io/pod-name"] == ("web",)


def test_expired_foreign_or_altered_tokens_are_refused(tmp_path: Path) -> None:
    signer = _signer(tmp_path)
    token = signer.issue(new_claims("ns", "sa", "u", (), 600, None, None, now=T0))
    assert signer.verify(token, now=T0 + dt.timedelta(seconds=599)) is not None
    assert signer.verify(token, now=T0 + dt.timedelta(seconds=600 + 61)) is None
    assert signer.verify(token, ("vault",), now=T0) is None
    other = _signer(tmp_path / "other")
    assert other.verify(token, now=T0) is None
    head, body, sig = token.split(".")
    assert signer.verify(f"{head}.{body}.{sig[::-1]}", now=T0) is None
    unsigned = jwt.encode(jwt.decode(token, options={"verify_signature": False}), key=None,
                          algorithm="none")
    assert signer.verify(unsigned, now=T0) is None
    for_vault = signer.issue(new_claims("ns", "sa", "u", ("vault",), 600, None, None, now=T0))
    assert signer.verify(for_vault, ("vault", "other"), now=T0) is not None
    assert signer.verify(for_vault, now=T0) is None
