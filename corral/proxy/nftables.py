"""The Service data plane in the kernel: the agent only programs an nftables table.

    NodeServices ──apply(ports, backends)──▶ NftProxy
        ports and backends are always kept (a later writer needs them)
        HostLock.try_write()?  no ─▶ done: another agent on this host writes
                               yes ▼
        nftrules.build(ports, backends, node IPs of the host's live members)
        first write as writer: read the table back (`nft -j list table`), write
        it whole; later writes: only what changed since (nftrules.change)
        nft -f -   (one transaction, atomically)
        then, in the background and in write order: drop the conntrack entries of
        connections to every endpoint that left a frontend (clients fail fast)
    a poll every POLL_SECONDS: a member that is not the writer asks again, so a
    writer that died (kill -9 frees its lock) is replaced and its table reconciled;
    the writer rebuilds, so a member joining or dying changes the NodePort addresses,
    and every CHECK_SECONDS makes sure its table was not flushed away (then writes it whole)
    close(): stop writing; the last agent on the host deletes the table

With a socket-level load balancer (socklb.py, every agent its own), apply first
updates its maps: the clusterIP connects it takes never reach the table; sockets
it steered to a departed endpoint are aborted in the same background order as the
conntrack flush.

Unlike the user-space proxy there is nothing to drain: established connections
stay in conntrack; only those to departed endpoints are dropped, as kube-proxy
does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from corral.aiotasks import cancel_and_wait
from corral.proxy.conntrack import drop_connections
from corral.proxy.hostlock import DEFAULT_RUN_DIR, HostLock
from corral.proxy.model import Algorithm, Backend, ServicePortKey, ServiceProxySpec
from corral.proxy.nftrules import (
    MAP_TYPES,
    NODE_IPS,
    SERVICE_PREFIX,
    Existing,
    Programmed,
    Ruleset,
    ServiceState,
    Stale,
    build,
    change,
    departed,
    parse_endpoint_chain,
    transaction,
)
from corral.proxy.socklb import Departed, SocketLB

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how soon a member notices the writer is gone
# How often the writer checks its table is still there: a firewall reload
# (Debian's nftables.service runs `flush ruleset`) takes every table with it,
# and with no Service changing nothing else would notice. The check lists one
# small set (~50 ms with 1,000 Services; listing a chain would fetch them all).
CHECK_SECONDS = 10.0


class NftablesError(Exception):
    """`nft` refused a transaction or could not run; the next apply retries."""


def run_nft(args: Sequence[str], stdin: str | None = None, nft: str = "nft") -> str:
    """Run nft (blocking) and return its stdout; NftablesError on failure."""
    try:
        done = subprocess.run([nft, *args], check=False, input=stdin, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NftablesError(f"nft {' '.join(args)}: {err}") from err
    if done.returncode != 0:
        raise NftablesError(f"nft {' '.join(args)}: {done.stderr.strip()[:2000]}")
    return done.stdout


def delete_table(table: str, nft: str = "nft") -> None:
    """Delete corral's table if it exists (nothing else is ever touched)."""
    with contextlib.suppress(NftablesError):
        run_nft(["delete", "table", "ip", table], nft=nft)


def read_table(table: str, nft: str = "nft") -> tuple[Existing, Programmed]:
    """The table's chain, set and map names, and what it programs; empty if absent."""
    try:
        listing = json.loads(run_nft(["-j", "list", "table", "ip", table], nft=nft))
    except NftablesError:
        return Existing(), {}
    chains, sets, maps = set(), set(), {}
    for item in listing.get("nftables", []):
        if "chain" in item:
            chains.add(item["chain"]["name"])
        elif "set" in item:
            sets.add(item["set"]["name"])
        elif "map" in item:
            maps[item["map"]["name"]] = item["map"].get("elem") or []
    return Existing(frozenset(chains), frozenset(sets), frozenset(maps)), _programmed(chains, maps)


def _programmed(chains: set[str], maps: dict[str, list[Any]]) -> Programmed:
    cluster: dict[str, tuple[str, int]] = {}
    node_port: dict[str, int] = {}
    for key, target in map(_element, maps.get("service-ips", [])):
        if len(key) == 3 and target.startswith(SERVICE_PREFIX):
            cluster[target[len(SERVICE_PREFIX):]] = (str(key[0]), int(key[2]))
    for key, target in map(_element, maps.get("service-nodeports", [])):
        if len(key) == 2 and target.startswith(SERVICE_PREFIX):
            node_port[target[len(SERVICE_PREFIX):]] = int(key[1])
    endpoints: dict[str, set[tuple[str, int]]] = {}
    for name in chains:
        parsed = parse_endpoint_chain(name)
        if parsed is not None:
            endpoints.setdefault(parsed[0], set()).add(parsed[1])
    return {sid: ServiceState(cluster.get(sid), node_port.get(sid),
                              frozenset(endpoints.get(sid, ())))
            for sid in cluster.keys() | node_port.keys()}


def _element(elem: Any) -> tuple[list[Any], str]:
    """([key parts], goto target) of one verdict-map element of `nft -j`."""
    if isinstance(elem, dict):  # {"elem": {"val": [key, value], ...}} with extra attributes
        elem = elem.get("elem", {}).get("val", [None, {}])
    key, value = elem
    parts = key.get("concat", [key]) if isinstance(key, dict) else [key]
    verdict = value.get("goto") or value.get("jump") or {}
    return parts, str(verdict.get("target", ""))


class NftProxy:
    """One host namespace's nftables table, kept equal to the Services (same
    interface as the user-space `ProxyTable`: `apply` and `close`)."""

    def __init__(self, table: str, node_ip: str | None = None, *,
                 run_dir: Path = DEFAULT_RUN_DIR, nft: str = "nft",
                 conntrack: str | None = None, poll_seconds: float = POLL_SECONDS,
                 check_seconds: float = CHECK_SECONDS,
                 socket_lb: SocketLB | None = None) -> None:
        self.table = table
        self.socket_lb = socket_lb  # owned: closed with this proxy
        self.last_socket_lb_seconds = 0.0
        self.node_ip = node_ip
        self.nft = nft
        self.conntrack = conntrack if conntrack is not None else shutil.which("conntrack")
        if self.conntrack is None:
            log.warning("conntrack not found: connections to removed endpoints are not "
                        "dropped (install the conntrack package)")
        self.host = HostLock(table, run_dir)
        self.poll_seconds = poll_seconds
        self.check_seconds = check_seconds
        self._checked_at = 0.0
        self.writes = 0  # transactions applied by this agent
        self.last_write_seconds = 0.0
        self._asked: tuple[Mapping[ServicePortKey, ServiceProxySpec],
                           Mapping[ServicePortKey, Sequence[Backend]]] | None = None
        self._last: Ruleset | None = None  # what this agent last wrote as the writer
        self._written: Programmed | None = None  # None: not read back since becoming writer
        self._existing = Existing()
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._flush: asyncio.Task[None] | None = None  # the latest drop (conntrack, sockets)
        self._approximated: set[ServicePortKey] = set()
        self._asked_version = 0
        # (asked version, node IPs) → Ruleset: the writer's poll rebuilds nothing
        # (1,000 Services cost tens of ms to build) until either changes.
        self._built: tuple[tuple[int, tuple[str, ...]], Ruleset] | None = None
        self._last_error = ""

    @property
    def writing(self) -> bool:
        return self.host.writing

    async def apply(self, services: Mapping[ServicePortKey, ServiceProxySpec],
                    endpoints: Mapping[ServicePortKey, Sequence[Backend]]) -> None:
        self._asked = (services, endpoints)
        self._asked_version += 1
        self._note_approximations(services)
        async with self._lock:
            if self.socket_lb is not None:
                await self._steer(services, endpoints)
            if not self.host.joined:
                await asyncio.to_thread(self.host.join, self.node_ip)
                self._poller = asyncio.create_task(self._poll(), name="nftables-writer-poll")
            await self._write_if_writer()

    def _note_approximations(self, services: Mapping[ServicePortKey, ServiceProxySpec]) -> None:
        """Say once per Service port that least-connections is a random pick here."""
        for key, spec in services.items():
            if spec.algorithm is Algorithm.LEAST_CONNECTIONS and key not in self._approximated:
                self._approximated.add(key)
                log.info("nftables cannot count connections: least-connections is a random "
                         "pick service=%s/%s port=%s", key.namespace, key.service,
                         key.port_name or "-")

    async def close(self) -> None:
        if self._poller is not None:
            await cancel_and_wait(self._poller)
            self._poller = None
        await self.flushed()
        async with self._lock:
            if self.socket_lb is not None:
                self.socket_lb.close()
                self.socket_lb = None
            last = await asyncio.to_thread(self.host.leave,
                                           lambda: delete_table(self.table, self.nft))
        if last:
            log.info("nftables table removed table=ip %s (last agent on this host)", self.table)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                async with self._lock:
                    await self._check_table()
                    await self._write_if_writer()
                self._last_error = ""
            except NftablesError as err:
                if str(err) != self._last_error:  # once per distinct failure, not per poll
                    log.warning("nftables write failed table=ip %s error=%s (retried every "
                                "%.1fs)", self.table, err, self.poll_seconds)
                self._last_error = str(err)

    async def _write_if_writer(self) -> None:
        if self._asked is None:
            return
        if not self.host.writing:
            if not self.host.try_write():
                return
            log.info("nftables writer table=ip %s: this agent programs the host's table",
                     self.table)
            self._last = self._written = None
        if self._written is None:  # reconcile what a previous writer (or we, before) left
            self._existing, self._written = await asyncio.to_thread(read_table, self.table,
                                                                    self.nft)
        rules = self._rules(tuple(await asyncio.to_thread(self.host.node_ips)))
        if rules is not self._last and rules != self._last:  # a failed write: the poll retries
            await self._write(rules)

    async def _check_table(self) -> None:
        """If this writer's table vanished, forget it was written: the write that
        follows reads back (nothing) and writes it whole."""
        now = time.monotonic()
        due = now - self._checked_at >= self.check_seconds
        if not (due and self.host.writing and self._last is not None):
            return
        self._checked_at = now
        try:
            await asyncio.to_thread(run_nft, ["list", "set", "ip", self.table, NODE_IPS],
                                    None, self.nft)
        except NftablesError as err:
            log.warning("nftables table gone table=ip %s error=%s; writing it again",
                        self.table, err)
            self._last = self._written = None

    def _rules(self, node_ips: tuple[str, ...]) -> Ruleset:
        assert self._asked is not None
        key = (self._asked_version, node_ips)
        if self._built is None or self._built[0] != key:
            self._built = (key, build(*self._asked, node_ips))
        return self._built[1]

    async def _write(self, rules: Ruleset) -> None:
        assert self._written is not None
        began = time.perf_counter()
        previous = self._last
        text = (transaction(self.table, rules, self._existing) if previous is None
                else change(self.table, rules, previous))
        try:
            await asyncio.to_thread(run_nft, ["-f", "-"], text, self.nft)
        except NftablesError:
            self._last = self._written = None  # read back and write whole next time
            raise
        stale = departed(self._written, rules.programmed)
        self._existing = Existing(frozenset(rules.chains), frozenset(rules.affinity_sets),
                                  frozenset(MAP_TYPES))
        self._written = rules.programmed
        self._last = rules
        self.writes += 1
        self.last_write_seconds = time.perf_counter() - began
        log.info("nftables table written table=ip %s kind=%s services=%d seconds=%.3f "
                 "departed_endpoints=%d", self.table, "full" if previous is None else "change",
                 len(rules.programmed), self.last_write_seconds, len(stale))
        if stale and self.conntrack:
            # Not under the lock: listing conntrack can take far longer than a write
            # on a busy host, and the next change must not wait for it.
            self._after(self._drop(stale), "nftables-conntrack-flush")

    async def _steer(self, services: Mapping[ServicePortKey, ServiceProxySpec],
                     endpoints: Mapping[ServicePortKey, Sequence[Backend]]) -> None:
        """The socket-level load balancer's maps (every agent has its own)."""
        assert self.socket_lb is not None
        began = time.perf_counter()
        try:
            departed = await asyncio.to_thread(self.socket_lb.apply, services, endpoints)
        except OSError as err:  # its maps as they were: nftables still DNATs the rest
            log.warning("socket-lb update failed error=%s", err)
            return
        self.last_socket_lb_seconds = time.perf_counter() - began
        if departed:
            self._after(self._drop_sockets(departed), "socket-lb-drop")

    def _after(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` in the background once the earlier drops are done: drops
        happen in the order of their writes, and `flushed()` waits for them all."""
        self._flush = asyncio.create_task(_in_order(self._flush, work), name=name)

    async def _drop(self, stale: list[Stale]) -> None:
        assert self.conntrack is not None
        try:
            dropped = await asyncio.to_thread(drop_connections, stale, self.conntrack)
        except (OSError, subprocess.SubprocessError) as err:
            log.warning("conntrack flush failed table=ip %s error=%s", self.table, err)
            return
        log.info("conntrack flushed table=ip %s departed_endpoints=%d connections_dropped=%d",
                 self.table, len(stale), dropped)

    async def _drop_sockets(self, departed: list[Departed]) -> None:
        socket_lb = self.socket_lb
        if socket_lb is None:
            return
        try:
            dropped = await asyncio.to_thread(socket_lb.drop, departed)
        except OSError as err:
            log.warning("socket-lb could not drop connections error=%s", err)
            return
        log.info("socket-lb dropped connections departed_endpoints=%d sockets_aborted=%d",
                 len(departed), dropped)

    async def flushed(self) -> None:
        """Until the connections of every departed endpoint so far are dropped."""
        while self._flush is not None and not self._flush.done():
            await asyncio.wait([self._flush])


async def _in_order(before: asyncio.Task[None] | None, work: Coroutine[Any, Any, None]) -> None:
    if before is not None:
        await asyncio.wait([before])
    await work
