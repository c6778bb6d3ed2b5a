"""The cluster CA as the signer of approved CertificateSigningRequests, and of the
master's own client certificate (what it shows the agents).

    sign(csr) ─► the request's subject and SANs, the usages it was approved for,
                 notAfter = now + min(expirationSeconds, the signing duration: a year
                 unless `corral master --cluster-signing-duration` says otherwise),
                 never past the CA; notBefore backdated 5 min (a tenth of a short
                 lifetime), and a lifetime under 8 h not shortened by it, as
                 kube-controller-manager's signer does
    ensure_client_cert(pki_dir, "apiserver-kubelet-client", CN=kube-apiserver-kubelet-client)
              ─► pki/apiserver-kubelet-client.{crt,key}, renewed as the serving one is
              (cert_reload.py: also while the master runs)
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from corral.api.certificates.requests import parse_request
from corral.api.tls import (
    CLOCK_SKEW,
    RENEW_BEFORE,
    Issuer,
    key_usage,
    load_issuer,
    signed_by,
    write_cert,
    write_key,
)

# kube-controller-manager's --cluster-signing-duration default.
DEFAULT_DURATION = dt.timedelta(days=365)
# Its signer's Backdate (for clocks behind ours) and Short: below it, notAfter is
# not moved back by the backdate.
BACKDATE = dt.timedelta(minutes=5)
SHORT = dt.timedelta(hours=8)
# The identity the master calls agents with (kube-apiserver's --kubelet-client-certificate).
KUBELET_CLIENT_CN = "kube-apiserver-kubelet-client"
KUBELET_CLIENT_STEM = "apiserver-kubelet-client"  # pki/<stem>.crt and .key
_EXTENDED = {"server auth": ExtendedKeyUsageOID.SERVER_AUTH,
             "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
             "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
             "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
             "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
             "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING}


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


class Signer:
    """Signs with the CA in pki_dir (ca.crt, ca.key), read when first needed;
    what it signs lasts at most ``duration``."""

    def __init__(self, pki_dir: Path, duration: dt.timedelta = DEFAULT_DURATION) -> None:
        self.pki_dir = pki_dir
        self.duration = duration
        self._issuer: Issuer | None = None

    def issuer(self) -> Issuer:
        if self._issuer is None:
            self._issuer = load_issuer(self.pki_dir / "ca.crt", self.pki_dir / "ca.key")
            if self._issuer is None:
                raise FileNotFoundError(f"no cluster CA in {self.pki_dir}")
        return self._issuer

    def sign(self, request_b64: str, usages: list[str], expiration_seconds: int | None,
             now: dt.datetime | None = None) -> str:
        """status.certificate (base64 of the PEM) for an approved request."""
        request = parse_request(request_b64)
        issuer = self.issuer()
        now = now or dt.datetime.now(dt.UTC)
        lifetime = self.duration
        if expiration_seconds:
            lifetime = min(lifetime, dt.timedelta(seconds=expiration_seconds))
        backdate = min(BACKDATE, lifetime / 10)
        end = now + lifetime if lifetime < SHORT else now + lifetime - backdate
        builder = _base(issuer, request.subject, request.public_key(), now - backdate, end)
        usage = _key_usage_of(usages)
        if usage is not None:
            builder = builder.add_extension(usage, critical=True)
        extended = [_EXTENDED[u] for u in usages if u in _EXTENDED]
        if extended:
            builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
        try:
            sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            builder = builder.add_extension(sans.value, critical=False)
        except x509.ExtensionNotFound:
            pass
        cert = builder.sign(issuer.key, hashes.SHA256())
        return base64.b64encode(cert.public_bytes(Encoding.PEM)).decode()

    def ensure_client_cert(self, stem: str, cn: str, groups: tuple[str, ...] = (),
                           now: dt.datetime | None = None) -> CertFiles:
        """pki/<stem>.crt and .key: a client certificate for cn (O = groups), made on
        first use and re-made when it nears its end or the CA changed."""
        now = now or dt.datetime.now(dt.UTC)
        files = CertFiles(self.pki_dir / f"{stem}.crt", self.pki_dir / f"{stem}.key")
        issuer = self.issuer()
        if files.cert.exists() and files.key.exists():
            cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
            if signed_by(cert, issuer.cert) and cert.not_valid_after_utc - now > RENEW_BEFORE:
                return files
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                             *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups)])
        cert = (_base(issuer, subject, key.public_key(), now - CLOCK_SKEW,
                      now + DEFAULT_DURATION)
                .add_extension(key_usage(cert_sign=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(issuer.key, hashes.SHA256()))
        write_key(files.key, key)
        write_cert(files.cert, cert)
        return files


def _base(issuer: Issuer, subject: x509.Name, public_key: object, start: dt.datetime,
          end: dt.datetime) -> x509.CertificateBuilder:
    ca_ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(min(end, issuer.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False))


def _key_usage_of(usages: list[str]) -> x509.KeyUsage | None:
    wanted = set(usages)
    if not wanted & {"digital signature", "signing", "content commitment",
                     "key encipherment", "data encipherment", "key agreement"}:
        return None
    return x509.KeyUsage(
        digital_signature="digital signature" in wanted or "signing" in wanted,
        content_commitment="content commitment" in wanted,
        key_encipherment="key encipherment" in wanted,
        data_encipherment="data encipherment" in wanted,
        key_agreement="key agreement" in wanted, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False)
