"""The PKI: files and modes, a real uvicorn HTTPS listener verified with the CA,
re-issue of the serving certificate from the same CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import stat
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from corral.api.tls import ensure_pki
from tests.https import https_server


def _trusting(ca_path: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_path))


async def _get(url: str, verify: ssl.SSLContext) -> str:
    async with httpx.AsyncClient(verify=verify) as client:
        return (await client.get(url)).text


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(path: Path) -> tuple[set[str], set[str]]:
    san = _cert(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return ips, set(san.get_values_for_type(x509.DNSName))


def test_first_start_writes_ca_and_serving_cert_with_private_keys(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, ["10.0.0.7", "master.example", "[fd00::5]"])
    pki_dir = tmp_path / "pki"
    assert {p.name for p in pki_dir.iterdir()} == {"ca.crt", "ca.key", "server.crt", "server.key"}
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((pki_dir / key).stat().st_mode) == 0o600
    assert pki.ca_pem == (pki_dir / "ca.crt").read_bytes()
    assert (pki.cert_path, pki.key_path, pki.ca_path) == (
        pki_dir / "server.crt", pki_dir / "server.key", pki_dir / "ca.crt")
    ips, names = _sans(pki.cert_path)
    assert ips == {"127.0.0.1", "::1", "10.0.0.7", "fd00::5"}
    assert names == {"localhost", socket.gethostname().lower(), "master.example"}


def test_ca_is_a_ten_year_ca_and_signs_the_serving_cert(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, [])
    ca, served = _cert(pki.ca_path), _cert(pki.cert_path)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= dt.timedelta(days=3650)
    served.verify_directly_issued_by(ca)
    assert not served.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


async def test_https_server_is_trusted_through_the_ca_only(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "cluster", [])
    stranger = ensure_pki(tmp_path / "other", [])
    async with https_server(pki) as port:
        assert await _get(f"https://127.0.0.1:{port}/", _trusting(pki.ca_path)) == \
            "hello over tls"
        assert await _get(f"https://localhost:{port}/", _trusting(pki.ca_path)) == \
            "hello over tls"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await _get(f"https://127.0.0.1:{port}/", _trusting(stranger.ca_path))
        inline = ssl.create_default_context(cadata=pki.ca_pem.decode())  # kubeconfig's way
        assert await _get(f"https://127.0.0.1:{port}/", inline) == "hello over tls"


def test_later_starts_reuse_every_file(tmp_path: Path) -> None:
    ensure_pki(tmp_path, ["10.0.0.7"])
    before = {p.name: p.read_bytes() for p in (tmp_path / "pki").iterdir()}
    ensure_pki(tmp_path, ["10.0.0.7"])
    assert {p.name: p.read_bytes() for p in (tmp_path / "pki").iterdir()} == before


async def test_a_new_host_reissues_the_serving_cert_from_the_same_ca(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path, [])
    old_ca, old_cert = first.ca_pem, first.cert_path.read_bytes()
    old_ca_path = tmp_path / "kubeconfig-ca.crt"
    old_ca_path.write_bytes(old_ca)  # what an existing kubeconfig holds
    second = ensure_pki(tmp_path, ["192.0.2.10"])
    assert second.ca_pem == old_ca
    assert second.cert_path.read_bytes() != old_cert
    assert "192.0.2.10" in _sans(second.cert_path)[0]
    async with https_server(second) as port:
        assert await _get(f"https://127.0.0.1:{port}/", _trusting(old_ca_path)) == \
            "hello over tls"


def test_a_cert_near_expiry_or_not_yet_valid_is_reissued(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path, [])
    serial = _cert(first.cert_path).serial_number
    late = dt.datetime.now(dt.UTC) + dt.timedelta(days=340)  # 25 days before expiry
    renewed = ensure_pki(tmp_path, [], now=late)
    assert renewed.ca_pem == first.ca_pem
    assert _cert(renewed.cert_path).serial_number != serial
    assert _cert(renewed.cert_path).not_valid_after_utc > late + dt.timedelta(days=300)
    # Back at the real time that cert is not valid yet: issue one that is.
    serial = _cert(renewed.cert_path).serial_number
    now_again = ensure_pki(tmp_path, [])
    assert _cert(now_again.cert_path).serial_number != serial
    assert _cert(now_again.cert_path).not_valid_before_utc < dt.datetime.now(dt.UTC)


def test_a_cert_from_another_ca_is_replaced(tmp_path: Path) -> None:
    ensure_pki(tmp_path / "a", [])
    other = ensure_pki(tmp_path / "b", [])
    shutil.copy(other.cert_path, tmp_path / "a" / "pki" / "server.crt")
    shutil.copy(other.key_path, tmp_path / "a" / "pki" / "server.key")
    fixed = ensure_pki(tmp_path / "a", [])
    _cert(fixed.cert_path).verify_directly_issued_by(_cert(fixed.ca_path))


def test_ip_sans_are_ip_entries_not_names(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, ["::1", "127.0.0.1"])
    san = _cert(pki.cert_path).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    ips = san.value.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("::1") in ips
    assert "::1" not in san.value.get_values_for_type(x509.DNSName)
