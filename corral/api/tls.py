"""The API server's PKI: a cluster CA and a serving certificate it signs.

    data_dir/pki/ca.crt       10-year CA (EC P-256); kubeconfigs trust this one
    data_dir/pki/ca.key       0600
    data_dir/pki/server.crt   1-year serving cert, SANs for every host asked for
    data_dir/pki/server.key   0600

The CA is made once and kept. The serving certificate is re-issued from that
same CA whenever it lacks a host, expires within 30 days, is not yet valid, or
was not signed by the CA on disk — so kubeconfigs written earlier keep working.
A running master asks again every hour (cert_reload.py) and serves a renewed
certificate without a restart.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = dt.timedelta(days=3650)
SERVING_LIFETIME = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
# Backdate notBefore so a client whose clock lags a little still accepts the cert.
CLOCK_SKEW = dt.timedelta(hours=1)

SanName = x509.DNSName | x509.IPAddress


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes  # what kubeconfig's certificate-authority-data carries
    cert_path: Path  # serving certificate, for uvicorn's ssl_certfile
    key_path: Path  # serving key, for uvicorn's ssl_keyfile
    ca_path: Path  # for clients: httpx verify=, kubectl certificate-authority


@dataclass(frozen=True)
class Issuer:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def default_hosts() -> list[str]:
    """The names every serving certificate covers, whatever the caller asks."""
    return ["127.0.0.1", "::1", "localhost", socket.gethostname()]


def ensure_pki(data_dir: Path, hosts: list[str], *, now: dt.datetime | None = None) -> Pki:
    """Create the CA and serving certificate on first start; reuse or renew after.

    ``now`` is a clock seam for tests of renewal; callers leave it out.
    """
    now = now or dt.datetime.now(dt.UTC)
    pki_dir = data_dir / "pki"
    pki_dir.mkdir(parents=True, exist_ok=True)
    ca_path, ca_key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
    cert_path, key_path = pki_dir / "server.crt", pki_dir / "server.key"
    issuer = load_issuer(ca_path, ca_key_path)
    if issuer is None:
        issuer = _create_ca(now)
        write_key(ca_key_path, issuer.key)
        write_cert(ca_path, issuer.cert)
    sans = _san_names([*default_hosts(), *hosts])
    if _needs_serving_cert(cert_path, key_path, issuer, sans, now):
        cert, key = _issue_serving_cert(issuer, sans, now)
        write_key(key_path, key)
        write_cert(cert_path, cert)
    return Pki(ca_pem=ca_path.read_bytes(), cert_path=cert_path, key_path=key_path,
               ca_path=ca_path)


def _san_names(hosts: list[str]) -> list[SanName]:
    """IP SANs for addresses, DNS SANs for names; duplicates and blanks dropped."""
    names: list[SanName] = []
    for host in hosts:
        host = host.strip().strip("[]")
        if not host:
            continue
        name: SanName
        try:
            name = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            name = x509.DNSName(host.lower())
        if name not in names:
            names.append(name)
    return names


def load_issuer(ca_path: Path, ca_key_path: Path) -> Issuer | None:
    if not (ca_path.exists() and ca_key_path.exists()):
        return None
    cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{ca_key_path}: expected an EC private key")
    return Issuer(cert, key)


def _create_ca(now: dt.datetime) -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corral-ca")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issuer(cert, key)


def _issue_serving_cert(
    issuer: Issuer, sans: list[SanName], now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corral-apiserver")]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + SERVING_LIFETIME, issuer.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return cert, key


def key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def _needs_serving_cert(cert_path: Path, key_path: Path, issuer: Issuer,
                        sans: list[SanName], now: dt.datetime) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return True
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if not signed_by(cert, issuer.cert):
        return True
    if cert.not_valid_before_utc > now or cert.not_valid_after_utc - now < RENEW_BEFORE:
        return True
    try:
        present = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return True
    return any(name not in present for name in sans)


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def write_cert(path: Path, cert: x509.Certificate) -> None:
    _write_atomic(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    _write_atomic(path, pem, 0o600)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write beside the target and rename, so a reader never sees half a file and a
    key is never readable by others, not even for a moment."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(fd, mode)  # O_CREAT's mode is masked by umask and ignored if tmp existed
        out.write(data)
        out.flush()
        os.fsync(fd)
    os.replace(tmp, path)
