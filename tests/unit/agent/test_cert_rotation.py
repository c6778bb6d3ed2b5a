"""Certificate rotation's timing on a fake clock: renewed between 70 % and 90 %
of the lifetime (the jitter), not before; a failed renewal retried after a
back-off while the old certificate holds; the next deadline from the new one.
And the files it writes."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from corral.agent.bootstrap import _legacy, _usable, client_cert_path
from corral.agent.cert_rotation import Rotation, rotation_deadline
from corral.agent.config import AgentConfig
from corral.agent.csr import key_pem, new_key, request_pem
from corral.api.certificates.signer import Signer
from corral.api.tls import ensure_pki
from corral.client.clock import FakeClock
from tests.poll import eventually

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LIFE = dt.timedelta(seconds=100)


def certificate(start: dt.datetime, serial: int) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system:node:n")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(start).not_valid_after(start + LIFE)
            .sign(key, hashes.SHA256()))


def test_the_deadline_is_between_70_and_90_percent() -> None:
    cert = certificate(T0, 1)
    assert rotation_deadline(cert, 0.0) == T0 + dt.timedelta(seconds=70)
    assert rotation_deadline(cert, 0.5) == T0 + dt.timedelta(seconds=80)
    assert rotation_deadline(cert, 0.9999) < T0 + dt.timedelta(seconds=90)


async def test_renewed_at_the_deadline_retried_on_failure_then_from_the_new_one() -> None:
    clock = FakeClock(T0)
    held = [certificate(T0, 1)]
    failures = [RuntimeError("master away")]

    async def renew() -> None:
        if failures:
            raise failures.pop()
        held.append(certificate(clock.now(), len(held) + 1))

    rotation = Rotation("client", lambda: held[-1], renew, clock=clock, rand=lambda: 0.5)
    rotation.start()
    try:
        await eventually(lambda: clock.sleepers == 1, what="waiting for the deadline")
        clock.advance(79.9)
        await asyncio.sleep(0)
        assert len(held) == 1 and clock.sleepers == 1  # not before 80 %
        clock.advance(0.1)
        await eventually(lambda: not failures and clock.sleepers == 1,
                         what="the retry's back-off")
        assert len(held) == 1  # the failure kept the old certificate
        clock.advance(0.4)
        await asyncio.sleep(0)
        assert len(held) == 1  # a back-off of at least 0.5 s
        clock.advance(0.6)  # past 0.5 s with up to 50 % jitter, to a whole second
        await eventually(lambda: len(held) == 2 and clock.sleepers == 1, what="renewed")
        assert rotation.rotations == 1
        clock.advance(79.9)  # the new one's 80 %, counted from its own start
        await asyncio.sleep(0)
        assert len(held) == 2
        clock.advance(0.1)
        await eventually(lambda: len(held) == 3, what="renewed again")
    finally:
        await rotation.stop()


def test_the_client_certificate_file_and_an_older_agents_pair(tmp_path: Path) -> None:
    """One file holds certificate and key (replaced in one rename); an older
    agent's client.crt/client.key still authenticate the renewal that replaces them."""
    pki = ensure_pki(tmp_path / "master", [])
    signer = Signer(tmp_path / "master" / "pki")
    cfg = AgentConfig(name="n1", servers=["https://127.0.0.1:1"], ca_pem=pki.ca_pem,
                      state_dir=tmp_path / "agent")

    def issue(cn: str) -> tuple[str, str]:
        key = new_key()
        request = base64.b64encode(request_pem(key, cn, ("system:nodes",))).decode()
        cert = base64.b64decode(signer.sign(request, ["client auth"], None)).decode()
        return cert, key_pem(key).decode()

    assert _usable(cfg) is None
    legacy_cert, legacy_key = _legacy(cfg)
    cert, key = issue("system:node:n1")
    legacy_cert.write_text(cert)
    legacy_key.write_text(key)
    assert _usable(cfg) == (str(legacy_cert), str(legacy_key))
    pem = client_cert_path(cfg)
    pem.write_text("".join(issue("system:node:other")))  # not this node's: not used
    assert _usable(cfg) == (str(legacy_cert), str(legacy_key))
    pem.write_text("".join(issue("system:node:n1")))
    assert _usable(cfg) == (str(pem), str(pem))
    context = ssl.create_default_context(cadata=pki.ca_pem.decode())
    context.load_cert_chain(str(pem), str(pem))  # the one file serves as both
