"""Which data plane a node's Services get, and why (kube-proxy's --proxy-mode).

    nftables   the kernel forwards: the agent programs one table per host network
               namespace (corral/proxy/nftables.py). The default where `nft` is on
               PATH, the agent is root and the kernel accepts a table.
    userspace  the agent forwards every connection itself (corral/proxy/table.py):
               the fallback, and the only mode without root or nftables.

Asking for nftables where it cannot work is an error, never a silent fallback.
"""

from __future__ import annotations

import enum
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass


class ProxyMode(enum.StrEnum):
    NFTABLES = "nftables"
    USERSPACE = "userspace"


class ProxyModeError(Exception):
    """--proxy-mode nftables was asked for on a host where it cannot run."""


@dataclass(frozen=True)
class Choice:
    mode: ProxyMode
    reason: str


def nftables_unavailable(which: Callable[[str], str | None] = shutil.which,
                         euid: int | None = None) -> str | None:
    """Why nftables mode cannot run here, or None when it can."""
    nft = which("nft")
    if nft is None:
        return "nft not found on PATH (Debian package nftables)"
    if (os.geteuid() if euid is None else euid) != 0:
        return "not root: programming nftables needs CAP_NET_ADMIN"
    done = subprocess.run([nft, "list", "tables", "ip"], capture_output=True, text=True,
                          check=False, timeout=30)
    if done.returncode != 0:
        return f"nft cannot list tables: {done.stderr.strip()[:200]}"
    return None


def choose(requested: str | None, *, which: Callable[[str], str | None] = shutil.which,
           euid: int | None = None) -> Choice:
    """The mode to run: the one asked for, or (None) nftables where it works."""
    if requested == ProxyMode.USERSPACE:
        return Choice(ProxyMode.USERSPACE, "asked for (--proxy-mode userspace)")
    problem = nftables_unavailable(which, euid)
    if requested == ProxyMode.NFTABLES:
        if problem is not None:
            raise ProxyModeError(f"--proxy-mode nftables cannot run: {problem}")
        return Choice(ProxyMode.NFTABLES, "asked for (--proxy-mode nftables)")
    if requested is not None:
        raise ProxyModeError(f"unknown proxy mode {requested!r} (nftables or userspace)")
    if problem is not None:
        return Choice(ProxyMode.USERSPACE, f"the fallback: {problem}")
    return Choice(ProxyMode.NFTABLES, "the default: nft works and the agent is root")


def table_name(ca_pem: bytes | None, servers: list[str]) -> str:
    """corral's table for one cluster: `corral-<digest of the cluster CA>` (or of
    the master URLs when there is no CA), so two clusters on one host never share."""
    identity = ca_pem if ca_pem else ",".join(sorted(servers)).encode()
    return "corral-" + hashlib.sha256(identity).hexdigest()[:10]
