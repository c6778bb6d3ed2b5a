"""Socket-level load balancing: a clusterIP connect() goes straight to an endpoint.

nftables DNAT costs every connection a NAT binding and every packet a translation;
rewriting the destination once, at connect(), makes the connection a direct one
to the endpoint (what Cilium does without kube-proxy). The programs are in
`socklbprog.py`; this module owns their maps and links for one agent:

    SocketLB.open()   maps (services, backends, frontends), the five programs,
                      bpf_links on the cgroup2 root; SocketLBError says why not
    apply(services, endpoints)    per changed Service: new backend slots first,
                      then the service entry flips to them, then the old slots go
                      (a connect never sees a Service without its backends)
                      → the (Service, endpoint) pairs that left
    drop(departed)    aborts the sockets this hook steered to a departed endpoint
                      (sock_diag SOCK_DESTROY), as nftables mode flushes conntrack
    close()           closes the links and maps; kill -9 does the same

Taken: TCP Service ports with an IPv4 clusterIP and at least one ready endpoint,
without sessionAffinity ClientIP (nftables keeps client affinity in its sets).
Everything else, and NodePorts, and connections from other hosts, go through the
nftables table as before: a connection the hook rewrote no longer matches it.
Each agent has its own programs and maps, all with the same content for their
namespace; the first program that matches rewrites, and the ones after see an
endpoint address, which is in none of their maps.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from corral.bpf.syscall import (
    NO_PREALLOC,
    AttachType,
    BpfError,
    Map,
    MapType,
    ProgType,
    link_cgroup,
    load,
)
from corral.proxy import sockdiag, socklbprog
from corral.proxy.model import Algorithm, Backend, ServicePortKey, ServiceProxySpec
from corral.proxy.nftrules import ipv4, proxied

log = logging.getLogger(__name__)

SO_NETNS_COOKIE = 71  # asm-generic/socket.h
MAX_SERVICES = 65536
MAX_BACKENDS = 262144  # slots: each Service's endpoints, twice while it changes
MAX_CONNECTIONS = 262144  # live connections remembered (getpeername, dropping)
Frontend = tuple[str, int]


class SocketLBError(Exception):
    """The socket-level load balancer cannot run here (why, for the log); nftables
    alone carries the Services then."""


@dataclass(frozen=True)
class Departed:
    """An endpoint that left a clusterIP: sockets steered there are dropped."""

    frontend: Frontend
    endpoint: tuple[str, int]


@dataclass(frozen=True)
class _Slots:
    endpoints: tuple[tuple[str, int], ...]
    random: bool
    base: int


def cgroup2_root(mounts: str = "/proc/self/mounts") -> Path:
    """Where the cgroup2 hierarchy is mounted (e.g. /sys/fs/cgroup/unified on a hybrid
    host); SocketLBError if it is not in this mount namespace."""
    with open(mounts) as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return Path(fields[1])
    raise SocketLBError("no cgroup2 hierarchy mounted here (`ip netns exec` runs its "
                        "command with a /sys of its own: use nsenter --net)")


def netns_cookie() -> int:
    """The calling thread's network namespace, as bpf_get_netns_cookie() names it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        return int.from_bytes(sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8), "little")


def taken(spec: ServiceProxySpec) -> bool:
    """Whether the hook steers this Service port (the rest stays with nftables)."""
    return proxied(spec) and spec.session_affinity is None


class SocketLB:
    def __init__(self, cgroup: Path, netns: int) -> None:
        self.cgroup = cgroup
        self.netns = netns
        self.services: Map | None = None
        self.backends: Map | None = None
        self.frontends: Map | None = None
        self._fds: list[int] = []  # programs and links
        self._programmed: dict[Frontend, _Slots] = {}
        self._next_slot = 0

    @classmethod
    def open(cls, cgroup: Path | None = None) -> SocketLB:
        """Load and attach; SocketLBError (nothing left open) when the kernel will not."""
        if os.geteuid() != 0:
            raise SocketLBError("not root: loading eBPF programs needs CAP_BPF")
        try:
            lb = cls(cgroup or cgroup2_root(), netns_cookie())
        except OSError as err:  # SO_NETNS_COOKIE needs Linux 5.14
            raise SocketLBError(f"{err}") from err
        try:
            lb._attach()
        except OSError as err:  # BpfError included
            lb.close()
            full = " (the cgroup holds 64 programs on a hook already)" if (
                err.errno == errno.E2BIG and "LINK_CREATE" in str(err)) else ""
            raise SocketLBError(f"{err}{full}") from err
        return lb

    def _attach(self) -> None:
        self.services = Map.create(MapType.HASH, socklbprog.SERVICE_KEY.size,
                                   socklbprog.SERVICE_VALUE.size, MAX_SERVICES,
                                   "corral_svc", NO_PREALLOC)
        self.backends = Map.create(MapType.HASH, socklbprog.SLOT_KEY.size,
                                   socklbprog.ADDRESS.size, MAX_BACKENDS, "corral_backend",
                                   NO_PREALLOC)
        self.frontends = Map.create(MapType.HASH, socklbprog.COOKIE.size,
                                    socklbprog.ADDRESS.size, MAX_CONNECTIONS, "corral_front",
                                    NO_PREALLOC)
        s, b, f = self.services.fd, self.backends.fd, self.frontends.fd
        programs = [
            (ProgType.CGROUP_SOCK_ADDR, socklbprog.connect4(s, b, f), "corral_connect4",
             AttachType.CGROUP_INET4_CONNECT),
            (ProgType.CGROUP_SOCK_ADDR, socklbprog.connect6(s, b, f), "corral_connect6",
             AttachType.CGROUP_INET6_CONNECT),
            (ProgType.CGROUP_SOCK_ADDR, socklbprog.getpeername4(f), "corral_peername4",
             AttachType.CGROUP_INET4_GETPEERNAME),
            (ProgType.CGROUP_SOCK_ADDR, socklbprog.getpeername6(f), "corral_peername6",
             AttachType.CGROUP_INET6_GETPEERNAME),
            (ProgType.CGROUP_SOCK, socklbprog.release(f), "corral_release",
             AttachType.CGROUP_INET_SOCK_RELEASE)]
        cgroup_fd = os.open(self.cgroup, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for prog_type, code, name, hook in programs:
                prog = load(prog_type, code, name, hook)
                self._fds.append(prog)
                self._fds.append(link_cgroup(prog, cgroup_fd, hook))
        finally:
            os.close(cgroup_fd)

    def close(self) -> None:
        """Detach (closing the links) and free the maps."""
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        for m in (self.services, self.backends, self.frontends):
            if m is not None:
                m.close()

    # ---- programming ---------------------------------------------------------------

    def apply(self, services: Mapping[ServicePortKey, ServiceProxySpec],
              endpoints: Mapping[ServicePortKey, Sequence[Backend]]) -> list[Departed]:
        """Make the maps steer these Services; the endpoints that left a clusterIP
        (not ready any more, or the Service gone: a Service merely handed back to
        nftables, e.g. given sessionAffinity, keeps its connections)."""
        ready = ready_frontends(services, endpoints)
        desired = {frontend: (endpoints_, random)
                   for frontend, (endpoints_, random, hooked) in ready.items() if hooked}
        departed: list[Departed] = []
        for frontend, slots in list(self._programmed.items()):
            still = ready.get(frontend, ((), False, False))[0]
            departed += [Departed(frontend, e) for e in sorted(set(slots.endpoints) - set(still))]
            if frontend not in desired:
                self._remove(frontend, slots)
        for frontend, (wanted, random) in desired.items():
            old = self._programmed.get(frontend)
            if old is None or (old.endpoints, old.random) != (wanted, random):
                self._program(frontend, wanted, random, old)
        return departed

    def _program(self, frontend: Frontend, wanted: tuple[tuple[str, int], ...],
                 random: bool, old: _Slots | None) -> None:
        assert self.services is not None and self.backends is not None
        base = self._next_slot
        self._next_slot = (base + len(wanted)) % 2**32
        key = socklbprog.service_key(self.netns, *frontend)
        try:
            for i, endpoint in enumerate(wanted):
                self.backends.update(socklbprog.SLOT_KEY.pack((base + i) % 2**32),
                                     socklbprog.pack_address(*endpoint))
            self.services.update(key, socklbprog.service_value(len(wanted), base, random))
        except BpfError as err:  # a full map: nftables DNATs this Service instead
            log.warning("socket-lb cannot steer service=%s:%d error=%s; nftables carries it",
                        frontend[0], frontend[1], err)
            self.services.delete(key)
            self._free(_Slots(wanted, random, base))
            if old is not None:
                self._free(old)
                del self._programmed[frontend]
            return
        if old is not None:
            self._free(old)
        self._programmed[frontend] = _Slots(wanted, random, base)

    def _remove(self, frontend: Frontend, old: _Slots) -> None:
        assert self.services is not None
        self.services.delete(socklbprog.service_key(self.netns, *frontend))
        self._free(old)
        del self._programmed[frontend]

    def _free(self, slots: _Slots) -> None:
        assert self.backends is not None
        for i in range(len(slots.endpoints)):
            self.backends.delete(socklbprog.SLOT_KEY.pack((slots.base + i) % 2**32))

    @property
    def steered(self) -> dict[Frontend, tuple[tuple[str, int], ...]]:
        """clusterIP:port → the endpoints the hook picks among."""
        return {f: s.endpoints for f, s in self._programmed.items()}

    # ---- connections to departed endpoints ---------------------------------------

    def drop(self, departed: Sequence[Departed]) -> int:
        """Abort the sockets this hook steered from a departed pair's clusterIP to its
        endpoint (ones made directly, or through another Service, are left alone)."""
        assert self.frontends is not None
        by_endpoint: dict[tuple[str, int], set[Frontend]] = {}
        for d in departed:
            by_endpoint.setdefault(d.endpoint, set()).add(d.frontend)
        doomed = []
        for sock in sockdiag.tcp_sockets():
            frontends = by_endpoint.get(sock.peer)
            if not frontends:
                continue
            value = self.frontends.lookup(socklbprog.COOKIE.pack(sock.cookie))
            if value is not None and socklbprog.unpack_address(value) in frontends:
                doomed.append(sock)
        return sockdiag.destroy(doomed) if doomed else 0


def ready_frontends(services: Mapping[ServicePortKey, ServiceProxySpec],
           endpoints: Mapping[ServicePortKey, Sequence[Backend]]
           ) -> dict[Frontend, tuple[tuple[tuple[str, int], ...], bool, bool]]:
    """clusterIP:port → (ready endpoints, random pick, taken by the hook) for every
    proxied Service port; the hook takes those `taken` with a ready endpoint."""
    ready: dict[Frontend, tuple[tuple[tuple[str, int], ...], bool, bool]] = {}
    for key, spec in sorted(services.items(), key=lambda item: (
            item[0].namespace, item[0].service, item[0].port_name)):
        if not proxied(spec):
            continue
        addresses = tuple(dict.fromkeys(b.address for b in endpoints.get(key, ())
                                        if b.ready and ipv4(b.ip)))
        assert spec.cluster_ip is not None
        ready.setdefault((spec.cluster_ip, spec.port),
                         (addresses, spec.algorithm is Algorithm.LEAST_CONNECTIONS,
                          taken(spec) and bool(addresses)))
    return ready
