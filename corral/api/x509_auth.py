"""Client certificate authentication, as kube-apiserver's x509 authenticator:

    TLS handshake (uvicorn, CERT_OPTIONAL against the cluster CA: a certificate the
    CA did not sign fails the handshake) ─► scope["extensions"]["tls"] (connections.py)
    ─► user = the subject's CN, groups = its O values; the certificate must be for
       client auth (a node's serving certificate is not a login), and within its
       validity at this request: the handshake checked it once, but a kept-alive
       connection must not outlive its certificate (kube-apiserver verifies the
       chain on every request; agents rotating short-lived certificates open new
       connections for the new one)

Certificates come from the cluster CA's signer (corral/api/certificates/): nodes'
through TLS bootstrapping, the operator's through `kubectl certificate approve`.
"""

from __future__ import annotations

import datetime as dt
import functools

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.types import Scope

Identity = tuple[str, tuple[str, ...]]  # the user's name and groups


def certificate_identity(scope: Scope) -> Identity | None:
    chain = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_chain") or []
    if not chain:
        return None
    known = _read(str(chain[0]))
    if known is None:
        return None
    identity, not_before, not_after = known
    # The validity at this request; the rest of what the certificate says is its own.
    return identity if not_before <= dt.datetime.now(dt.UTC) <= not_after else None


@functools.lru_cache(maxsize=256)
def _read(pem: str) -> tuple[Identity | None, dt.datetime, dt.datetime] | None:
    """What a certificate says (its identity, if it is a login; its validity),
    parsed once: the same few certificates come with every request (the master's
    with each of its calls to a node agent, nodes' with theirs to the master)."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    return _identity(cert), cert.not_valid_before_utc, cert.not_valid_after_utc


def identity_of(cert: x509.Certificate, now: dt.datetime | None = None) -> Identity | None:
    now = now or dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return None
    return _identity(cert)


def _identity(cert: x509.Certificate) -> Identity | None:
    """The user a client certificate names, whatever the time."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or not str(names[0].value):
        return None
    groups = tuple(str(a.value) for a in
                   cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return str(names[0].value), groups
