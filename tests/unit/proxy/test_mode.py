"""Choosing the proxy mode: nftables where it can run, user space otherwise, and why."""

from __future__ import annotations

import shutil

import pytest

from corral.proxy.mode import ProxyMode, ProxyModeError, choose, table_name


def no_nft(_: str) -> None:
    return None


def test_without_nft_on_path_the_default_falls_back_and_says_why() -> None:
    choice = choose(None, which=no_nft, euid=0)
    assert choice.mode is ProxyMode.USERSPACE
    assert "nft not found on PATH" in choice.reason


def test_not_root_falls_back() -> None:
    choice = choose(None, which=shutil.which, euid=1000)
    assert choice.mode is ProxyMode.USERSPACE and "not root" in choice.reason


def test_asking_for_nftables_where_it_cannot_run_is_an_error() -> None:
    with pytest.raises(ProxyModeError, match="nft not found"):
        choose("nftables", which=no_nft, euid=0)
    with pytest.raises(ProxyModeError, match="unknown proxy mode"):
        choose("ipvs")


def test_userspace_when_asked_and_nftables_by_default_as_root() -> None:
    assert choose("userspace", which=no_nft).mode is ProxyMode.USERSPACE
    assert shutil.which("nft") is not None, "nft must be installed (scripts/debian-packages.txt)"
    assert choose(None, euid=0).mode is ProxyMode.NFTABLES


def test_one_table_per_cluster() -> None:
    assert table_name(b"ca-1", ["https://a"]) == table_name(b"ca-1", ["https://b"])
    assert table_name(b"ca-1", []) != table_name(b"ca-2", [])
    assert table_name(None, ["https://b", "https://a"]) == table_name(None, ["https://a",
                                                                             "https://b"])
