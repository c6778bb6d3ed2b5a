"""The master's certificate reloader: a changed pair is loaded into the same
SSLContext; a pair that does not load leaves the one in use and is tried again."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import pytest

from corral.api.cert_reload import CertificateReloader, LoadedPair
from corral.api.tls import ensure_pki


async def test_a_bad_pair_keeps_the_old_one_until_a_good_one_comes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pki = ensure_pki(tmp_path / "a", [])
    other = ensure_pki(tmp_path / "b", [])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_path, pki.key_path)
    pair = LoadedPair("serving", pki.cert_path, pki.key_path, context)
    pair.mark_loaded()
    renewals: list[int] = []
    reloader = CertificateReloader(lambda: renewals.append(1), [pair], interval=1)
    assert await reloader.check() == [] and renewals == [1]

    shutil.copy(other.key_path, pki.key_path)  # a key that is not the certificate's
    assert await reloader.check() == []
    assert "certificate not reloaded name=serving" in caplog.text
    shutil.copy(other.cert_path, pki.cert_path)  # now a matching pair
    assert await reloader.check() == ["serving"]
    assert await reloader.check() == []  # loaded once, not on every pass
