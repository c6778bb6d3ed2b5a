"""The node's own client certificate, by TLS bootstrapping as the kubelet does it:

    start with --bootstrap-kubeconfig (a short-lived bootstrap token of group
    system:bootstrappers, `corral token create --bootstrap`):
        STATE_DIR/pki/client.pem usable (this CA's, for system:node:<name>, not
        expired)? ─yes─► use it
            │ no
        renew_client_cert: ask with a CSR (signer
        kubernetes.io/kube-apiserver-client-kubelet, CN system:node:<name>, O
        system:nodes): with the node's own certificate while it still holds (a
        renewal, auto-approved as selfnodeclient), else with the bootstrap token
        (auto-approved as nodeclient)
        ─► certificate and key in one file, STATE_DIR/pki/client.pem (0600, in
           0700), replaced in one rename, so no crash leaves a key beside a
           certificate it does not match (the kubelet's kubelet-client-current.pem);
           STATE_DIR/kubeconfig names it; every later request authenticates with it
           (client.crt/client.key of older agents are used once to renew, then removed)
    while running: cert_rotation.py calls renew_client_cert at 70-90 % of the
    certificate's life, and the agent's clients switch to the new one

A bootstrap token the master refuses (expired, revoked, mistyped) is an error the
agent stops on: retrying will not make it valid.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from corral.agent.config import AgentConfig
from corral.agent.csr import csr_object, key_pem, new_key, obtain, request_pem
from corral.agent.serving_cert import pki_dir
from corral.api.auth import write_private
from corral.api.errors import Forbidden, Unauthorized
from corral.api.tls import signed_by
from corral.client.backoff import Backoff
from corral.client.http import Client, ServerUnreachable
from corral.client.kubeconfig import write_kubeconfig

log = logging.getLogger(__name__)

CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
CLIENT_USAGES = ["digital signature", "client auth"]


class BootstrapRefused(Exception):
    """The master refused the bootstrap token (or the node's certificate): expired,
    revoked or wrong. Retrying does not help; give the agent a new token."""


def client_cert_path(cfg: AgentConfig) -> Path:
    return pki_dir(cfg.state_dir) / "client.pem"


def _legacy(cfg: AgentConfig) -> tuple[Path, Path]:
    directory = pki_dir(cfg.state_dir)
    return directory / "client.crt", directory / "client.key"


def _usable(cfg: AgentConfig) -> tuple[str, str] | None:
    """The certificate and key files to authenticate with while they hold: the
    current file, else an older agent's pair; None if neither is usable here."""
    pem = client_cert_path(cfg)
    if _left(pem, pem, cfg) is not None:
        return str(pem), str(pem)
    cert, key = _legacy(cfg)
    return (str(cert), str(key)) if _left(cert, key, cfg) is not None else None


def _left(cert_path: Path, key_path: Path, cfg: AgentConfig) -> dt.timedelta | None:
    """How long the stored certificate still holds, or None if it is not usable here."""
    if not (cert_path.exists() and key_path.exists() and cfg.ca_pem):
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not signed_by(cert, x509.load_pem_x509_certificate(cfg.ca_pem)) or not names or \
            names[0].value != f"system:node:{cfg.name}":
        return None
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return left if left > dt.timedelta(0) else None


async def ensure_client_cert(cfg: AgentConfig) -> None:
    """Sets cfg.client_cert to the node's certificate, asking for one if needed
    (retried while no master answers). Does nothing for an agent given a token of
    its own (no bootstrap token)."""
    if cfg.bootstrap_token is None and cfg.client_cert is None:
        return
    backoff = Backoff(initial=0.2, maximum=10.0)
    while True:
        try:
            return await _ensure(cfg)
        except ServerUnreachable as err:
            delay = backoff.next_delay()
            log.warning("node certificate: no master answers node=%s error=%s retry_in=%.1fs",
                        cfg.name, err, delay)
            await asyncio.sleep(delay)


async def _ensure(cfg: AgentConfig) -> None:
    pem = client_cert_path(cfg)
    if _usable(cfg) != (str(pem), str(pem)):
        await renew_client_cert(cfg)
    cfg.client_cert = (str(pem), str(pem))
    write_kubeconfig(cfg.state_dir / "kubeconfig", cfg.servers[0], cfg.ca_pem, None,
                     client_cert=cfg.client_cert)


async def renew_client_cert(cfg: AgentConfig) -> None:
    """A new key and certificate for the node in STATE_DIR/pki/client.pem, asked
    for with its certificate while that holds, else with the bootstrap token."""
    own = _usable(cfg)
    if own is None and cfg.bootstrap_token is None:
        raise BootstrapRefused(f"no usable certificate in {pki_dir(cfg.state_dir)} and no "
                               "bootstrap token (--bootstrap-kubeconfig) to ask for one")
    await _ask(cfg, own)
    for legacy in _legacy(cfg):
        legacy.unlink(missing_ok=True)


async def _ask(cfg: AgentConfig, own: tuple[str, str] | None) -> None:
    key = new_key()
    request = request_pem(key, f"system:node:{cfg.name}", ("system:nodes",))
    body = csr_object("node-csr-", request, CLIENT_SIGNER, CLIENT_USAGES)
    token = None if own is not None else cfg.bootstrap_token
    async with Client(cfg.servers, token, cfg.ca_pem, client_cert=own,
                      user_agent=f"corral-agent/{cfg.name}") as client:
        try:
            cert = await obtain(client, body)
        except (Unauthorized, Forbidden) as err:
            what = "its certificate" if own else "the bootstrap token"
            raise BootstrapRefused(f"the master refused {what} ({err.reason}: {err.message}); "
                                   "give the agent a new one: corral token create "
                                   "--bootstrap") from None
    write_private(client_cert_path(cfg), cert.decode() + key_pem(key).decode())
    log.info("node client certificate issued node=%s via=%s", cfg.name,
             "renewal" if own else "bootstrap token")
