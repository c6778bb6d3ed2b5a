"""Network namespaces a test creates (`ip netns add`), and code run inside them.

setns(2) is per thread, so `Netns.run(fn)` runs an event loop in a thread that
entered the namespace: the sockets it opens, and the threads and subprocesses it
starts (nft, conntrack, asyncio's executor), are all in the namespace. Processes
of the harness enter one with `nsenter --net` (tests/cluster.py): unlike `ip netns
exec`, which gives its command a mount namespace with a /sys of its own (no cgroup
mounts), it changes nothing but the network, as for an agent on a real host. Deleting
a namespace takes its nftables tables, conntrack entries and interfaces with it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import random
import shutil
import subprocess
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Netns:
    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def create(self) -> Netns:
        ip("netns", "add", self.name)
        ip("-n", self.name, "link", "set", "lo", "up")
        return self

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, check=False)

    def prefix(self) -> list[str]:
        """What runs a command inside (only its network namespace changes)."""
        return prefix(self.name)

    def sh(self, *args: str) -> str:
        """Run a command inside; its stdout (CalledProcessError on failure)."""
        return subprocess.run([*self.prefix(), *args], check=True, capture_output=True,
                              text=True).stdout

    def link(self, peer: Netns, address: str, peer_address: str) -> None:
        """A veth pair between the two namespaces, ``address``/24 on this side."""
        here, there = f"vh{random.randrange(16**6):06x}", f"vp{random.randrange(16**6):06x}"
        ip("link", "add", here, "netns", self.name, "type", "veth", "peer", "name", there,
           "netns", peer.name)
        ip("-n", self.name, "addr", "add", f"{address}/24", "dev", here)
        ip("-n", peer.name, "addr", "add", f"{peer_address}/24", "dev", there)
        ip("-n", self.name, "link", "set", here, "up")
        ip("-n", peer.name, "link", "set", there, "up")

    def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``fn()`` on a fresh event loop in a thread inside the namespace."""
        return self.call(lambda: asyncio.run(_call(fn)))

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a thread inside the namespace; its result or its exception."""
        result: list[T] = []
        failure: list[BaseException] = []

        def inside() -> None:
            try:
                self._enter()
                result.append(fn())
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller
                failure.append(err)

        thread = threading.Thread(target=inside, name=f"netns-{self.name}")
        thread.start()
        thread.join()
        if failure:
            raise failure[0]
        return result[0]

    def _enter(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns {self.name}: {os.strerror(err)}")
        finally:
            os.close(fd)


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


def prefix(name: str) -> list[str]:
    """`nsenter --net=/run/netns/<name>`: execs the command (same pid), in that network
    namespace and the caller's mount namespace."""
    return [shutil.which("nsenter") or "nsenter", f"--net=/run/netns/{name}"]


def unique_name(prefix: str = "corral-t") -> str:
    return f"{prefix}-{os.getpid()}-{random.randrange(16**6):06x}"
