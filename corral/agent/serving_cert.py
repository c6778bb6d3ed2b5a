"""The agent's serving certificate: what its HTTPS server shows the master.

    state_dir/pki/ca.crt        the cluster CA (the master's client certificate is
                                checked against it)
    state_dir/pki/serving.pem   CN system:node:<name>, O system:nodes, SANs = the
                                node IP and name, and its key, in one file (0600,
                                in a 0700 directory) replaced in one rename: no
                                crash leaves a key beside another certificate

Asked for as the kubelet asks (signer kubernetes.io/kubelet-serving, through a
CertificateSigningRequest the master approves for the node's own name) whenever
there is none, it is not from this CA, does not cover the node IP and name, or
has expired; while the agent runs, cert_rotation.py renews it at 70-90 % of its
life (renew_serving_cert) and the server shows the new one to new connections.
A cluster served over plain HTTP has no CA: no certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from corral.agent.config import AgentConfig
from corral.agent.csr import csr_object, key_pem, new_key, obtain, request_pem
from corral.api.auth import write_private
from corral.api.tls import signed_by
from corral.client.http import Client

SERVING_SIGNER = "kubernetes.io/kubelet-serving"
SERVING_USAGES = ["digital signature", "server auth"]  # an EC key enciphers no keys


@dataclass(frozen=True)
class ServingFiles:
    ca: Path
    cert: Path
    key: Path


def pki_dir(state_dir: Path) -> Path:
    path = state_dir / "pki"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


async def ensure_serving_cert(client: Client, cfg: AgentConfig) -> ServingFiles | None:
    """The node's serving files, a certificate asked of the master when the one on
    disk will not do; None: no CA, plain HTTP."""
    if not cfg.ca_pem:
        return None
    files = _files(cfg)
    if not _usable(files, cfg):
        await renew_serving_cert(client, cfg, files)
    return files


def serving_cert_on_disk(cfg: AgentConfig) -> tuple[bool, ServingFiles | None]:
    """Whether the agent can serve without asking the master (a restart's
    certificate still good, or no CA), and with which files."""
    if not cfg.ca_pem:
        return True, None
    files = _files(cfg)
    return _usable(files, cfg), files


def _files(cfg: AgentConfig) -> ServingFiles:
    assert cfg.ca_pem
    directory = pki_dir(cfg.state_dir)
    files = ServingFiles(directory / "ca.crt", directory / "serving.pem",
                         directory / "serving.pem")
    for legacy in ("serving.crt", "serving.key"):  # an older agent's pair: asked anew
        (directory / legacy).unlink(missing_ok=True)
    files.ca.write_bytes(cfg.ca_pem)
    return files


async def renew_serving_cert(client: Client, cfg: AgentConfig, files: ServingFiles) -> None:
    """A new key and serving certificate in ``files``."""
    key = new_key()
    request = request_pem(key, f"system:node:{cfg.name}", ("system:nodes",),
                          (cfg.node_ip, cfg.name))
    cert = await obtain(client, csr_object("csr-", request, SERVING_SIGNER, SERVING_USAGES))
    write_private(files.cert, cert.decode() + key_pem(key).decode())


def _usable(files: ServingFiles, cfg: AgentConfig) -> bool:
    if not (files.cert.exists() and files.key.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    except ValueError:
        return False
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    if not signed_by(cert, ca):
        return False  # another cluster's, or the CA was made anew
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    names = set(sans.get_values_for_type(x509.DNSName))
    expired = cert.not_valid_after_utc <= dt.datetime.now(dt.UTC)
    return (str(ipaddress.ip_address(cfg.node_ip)) in ips and cfg.name in names
            and not expired)
