"""csrcleaner's rules (removable_at), from a table: Kubernetes' deadlines per
state, and an issued certificate's end."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from corral.controllers.csrcleaner import certificate_end, removable_at
from corral.objects import Obj, rfc3339

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def certificate(ends: datetime) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(ends - timedelta(days=1)).not_valid_after(ends)
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(Encoding.PEM)).decode()


def csr(*conditions: tuple[str, timedelta], cert: str = "") -> Obj:
    st: Obj = {"conditions": [{"type": t, "status": "True", "lastUpdateTime": rfc3339(T0 + at)}
                              for t, at in conditions]}
    if cert:
        st["certificate"] = cert
    return {"metadata": {"name": "c", "creationTimestamp": rfc3339(T0)}, "status": st}


HOUR = timedelta(hours=1)
SOON = certificate(T0 + timedelta(minutes=10))
LATER = certificate(T0 + timedelta(days=365))


@pytest.mark.parametrize(("obj", "expected"), [
    (csr(), T0 + 24 * HOUR),                                        # pending: a day
    (csr(("Denied", HOUR)), T0 + 2 * HOUR),                         # denied: an hour
    (csr(("Failed", 2 * HOUR)), T0 + 3 * HOUR),                     # failed: an hour
    (csr(("Approved", HOUR), cert=LATER), T0 + 2 * HOUR),           # issued: an hour
    (csr(("Approved", timedelta(0)), cert=SOON), T0 + timedelta(minutes=10)),  # expired first
    (csr(("Approved", HOUR)), None),                                # approved, never issued
    (csr(("Approved", HOUR), cert="bm90IGEgY2VydA=="), T0 + 2 * HOUR),  # unparsable: no expiry
])
def test_removable_at(obj: Obj, expected: datetime | None) -> None:
    assert removable_at(obj) == expected


def test_certificate_end() -> None:
    assert certificate_end(csr(("Approved", HOUR), cert=SOON)) == T0 + timedelta(minutes=10)
    assert certificate_end(csr()) is None
