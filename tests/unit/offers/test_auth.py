"""The Mesos endpoint's authentication, the parts without an API: Mesos'
credentials file in both its forms, HTTP Basic against it, the default
principal written once, and the answer cache's expiry on a fake clock."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from corral.client.clock import FakeClock
from corral.client.http import Client
from corral.offers.auth import (
    ANONYMOUS,
    DEFAULT_PRINCIPAL,
    FrameworkAuth,
    Principal,
    ensure_credentials,
    parse_credentials,
)


def basic(principal: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{principal}:{secret}".encode()).decode()


def test_credentials_file_in_json_or_lines() -> None:
    assert parse_credentials(json.dumps({"credentials": [
        {"principal": "a", "secret": "s1"}, {"principal": "b", "secret": "s2"}]})) == {
        "a": "s1", "b": "s2"}
    assert parse_credentials("a s1\n# comment\nb s2\nbroken\n") == {"a": "s1", "b": "s2"}


def test_the_default_principal_is_written_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "mesos-credentials"
    principal, secret = ensure_credentials(path)
    assert principal == DEFAULT_PRINCIPAL and len(secret) >= 24
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_credentials(path) == (principal, secret)


async def test_basic_authentication_against_the_file(tmp_path: Path) -> None:
    path = tmp_path / "creds"
    path.write_text("fw s3cret\n")
    async with Client("http://127.0.0.1:9") as client:  # never called: Basic is local
        auth = FrameworkAuth(client, path)
        who = await auth.authenticate(basic("fw", "s3cret"))
        assert who == Principal("fw", "", ("system:authenticated",))
        for bad in (basic("fw", "wrong"), basic("other", "s3cret"), "Basic !!!", None, "",
                    "Digest x"):
            assert await auth.authenticate(bad) is None, bad
        path.write_text("fw changed\n")  # re-read when it changes
        assert await auth.authenticate(basic("fw", "changed")) is not None
        off = FrameworkAuth(client, None, enabled=False)
        assert await off.authenticate(None) is ANONYMOUS


async def test_answers_are_cached_until_they_expire(tmp_path: Path) -> None:
    clock = FakeClock()
    async with Client("http://127.0.0.1:9") as client:
        auth = FrameworkAuth(client, None, clock=clock)
        auth._remember("k", True)
        assert auth._cached("k") is True
        clock.advance(11)
        assert auth._cached("k") is None
    with pytest.raises(KeyError):
        parse_credentials(json.dumps({"credentials": [{"secret": "no principal"}]}))
