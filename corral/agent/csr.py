"""The agent's keys and certificate requests: what it asks the cluster CA for.

    new_key()                           an EC P-256 key (what the CA itself uses)
    request_pem(key, cn, groups, sans)  a PKCS#10 request, PEM
    csr_object(name, request, signer, usages)  the CertificateSigningRequest body
    await obtain(client, body)          POST it; the certificate (PEM) once approved
                                        and signed: at once when auto-approved, else
                                        when an operator runs `kubectl certificate
                                        approve` (watched); CertificateRefused if denied
"""

from __future__ import annotations

import base64
import ipaddress
import logging

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from corral.client.http import Client
from corral.objects import Obj, meta, name_of, status

log = logging.getLogger(__name__)


class CertificateRefused(Exception):
    """The request was denied, or its signer failed it. Retrying the same request
    does not help: an operator has to look (kubectl describe csr)."""


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def request_pem(key: ec.EllipticCurvePrivateKey, cn: str, groups: tuple[str, ...] = (),
                sans: tuple[str, ...] = ()) -> bytes:
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups),
                         x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [_san(s) for s in sans]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def csr_object(name: str, request: bytes, signer: str, usages: list[str],
               expiration_seconds: int | None = None) -> Obj:
    """The body; a name ending in "-" is a generateName prefix."""
    spec: Obj = {"request": base64.b64encode(request).decode(), "signerName": signer,
                 "usages": usages}
    if expiration_seconds:
        spec["expirationSeconds"] = expiration_seconds
    naming = {"generateName": name} if name.endswith("-") else {"name": name}
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": naming, "spec": spec}


def _issued(csr: Obj) -> bytes | None:
    """The PEM certificate once there; CertificateRefused once it never will be."""
    st = status(csr)
    if st.get("certificate"):
        return base64.b64decode(st["certificate"])
    for cond in st.get("conditions") or []:
        if cond.get("type") in ("Denied", "Failed") and cond.get("status", "True") == "True":
            raise CertificateRefused(f"certificate request {name_of(csr)} {cond['type']}: "
                                     f"{cond.get('reason', '')} {cond.get('message', '')}")
    return None


async def obtain(client: Client, body: Obj) -> bytes:
    created = await client.create(body)
    issued = _issued(created)
    if issued is not None:
        return issued
    name = name_of(created)
    log.warning("certificate request waiting for approval csr=%s signer=%s "
                "(approve it: kubectl certificate approve %s)", name,
                body["spec"]["signerName"], name)
    version = str(meta(created).get("resourceVersion") or "")
    while True:  # a watch the server ends is taken up again from where it stopped
        async for event in client.watch("CertificateSigningRequest", resource_version=version,
                                        field_selector=f"metadata.name={name}"):
            version = event.resource_version or version
            if event.type == "DELETED":
                raise CertificateRefused(f"certificate request {name} was deleted")
            if event.type != "BOOKMARK" and (issued := _issued(event.object)) is not None:
                return issued
