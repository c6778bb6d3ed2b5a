"""The agent's keys and certificate requests: what it sends the cluster CA.

    new_key()                           an EC P-256 key (what the CA itself uses)
    request_pem(key, cn, groups, sans)  a PKCS#10 request, PEM
    csr_object(name, request, signer, usages)  the CertificateSigningRequest body
"""

from __future__ import annotations

import base64
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from corral.objects import Obj


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
    spec: Obj = {"request": base64.b64encode(request).decode(), "signerName": signer,
                 "usages": usages}
    if expiration_seconds:
        spec["expirationSeconds"] = expiration_seconds
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name}, "spec": spec}
