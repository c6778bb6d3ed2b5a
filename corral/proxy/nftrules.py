"""The node's Services as one nftables table, written as one `nft -f` transaction.

Pure: desired Service ports and backends in, the transaction text out, plus the
bookkeeping (`Programmed`) that tells which endpoints left so their conntrack
entries can be dropped. The shape follows kube-proxy's nftables mode:

    filter-prerouting, filter-output   (priority -110, before DNAT; new connections only)
        ip daddr . proto . dport                      vmap @no-endpoint-services  ─► reject-chain
        ip daddr @nodeport-ips proto . dport          vmap @no-endpoint-nodeports ─► reject-chain
    nat-prerouting, nat-output         (priority -100 = dstnat)  jump services
    services
        ip daddr . proto . dport                      vmap @service-ips
        ip daddr @nodeport-ips proto . dport          vmap @service-nodeports
    service-<ns>/<name>/tcp/<port>
        [ip saddr @affinity-… goto endpoint-…]        one per endpoint, ClientIP affinity only
        numgen inc|random mod N vmap { 0 : goto endpoint-…, … }
    endpoint-<ns>/<name>/tcp/<port>__<ip>/<port>
        [update @affinity-… { ip saddr }]  mark |= MASQ_MARK  dnat to ip:port
    nat-postrouting                    (priority 100 = srcnat)
        mark & MASQ_MARK, leaving by a real interface ─► masquerade (backend on another host)

A Service lookup is one map lookup whatever the number of Services; only a
Service's own chain grows with its endpoints. NodePorts answer on the node IPs of
the agents alive on the host (`nodeport-ips`: one under a real host, all nodes'
under `corral up`), never on every local address: kube-proxy's nftables default,
and the user-space proxy's too. So every agent on a host renders the same table
from the same Services and the same members.

Two kinds of transaction, each atomic and each leaving the whole desired table:
- full (a writer's first write, after reading the table back): flush every rule
  and map and re-add them, keeping the affinity sets (`flush table` leaves set
  elements alone, so ClientIP stickiness survives); chains and sets nothing
  refers to any more are deleted;
- a change (every later write, from the Ruleset this writer wrote last): only the
  chains, map elements and sets that differ, as kube-proxy's partial syncs. An
  endpoint change among 1,000 Services is a few lines, not the whole table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from corral.proxy.model import Algorithm, Backend, ServicePortKey, ServiceProxySpec

# A packet mark bit of corral's own (kube-proxy uses 0x4000): set on the first
# packet of a DNATed connection, so postrouting masquerades it when it leaves.
MASQ_MARK = 0x00200000

SERVICE_PREFIX = "service-"
ENDPOINT_PREFIX = "endpoint-"
AFFINITY_PREFIX = "affinity-"
MAP_TYPES = {
    "service-ips": "ipv4_addr . inet_proto . inet_service : verdict",
    "service-nodeports": "inet_proto . inet_service : verdict",
    "no-endpoint-services": "ipv4_addr . inet_proto . inet_service : verdict",
    "no-endpoint-nodeports": "inet_proto . inet_service : verdict",
}
NODE_IPS = "nodeport-ips"
# Sets and maps refilled on every write (the affinity sets are not: they hold state).
COLLECTIONS = {NODE_IPS: ("set", "ipv4_addr"), **{m: ("map", t) for m, t in MAP_TYPES.items()}}
_NEW_ONLY = "ct state new"
_BY_ADDRESS = "ip daddr . meta l4proto . th dport vmap"
_BY_NODE_PORT = f"ip daddr @{NODE_IPS} meta l4proto . th dport vmap"
BASE_CHAINS: dict[str, tuple[str, list[str]]] = {
    "filter-prerouting": ("type filter hook prerouting priority -110; policy accept;",
                          [f"{_NEW_ONLY} {_BY_ADDRESS} @no-endpoint-services",
                           f"{_NEW_ONLY} {_BY_NODE_PORT} @no-endpoint-nodeports"]),
    "filter-output": ("type filter hook output priority -110; policy accept;",
                      [f"{_NEW_ONLY} {_BY_ADDRESS} @no-endpoint-services",
                       f"{_NEW_ONLY} {_BY_NODE_PORT} @no-endpoint-nodeports"]),
    "nat-prerouting": ("type nat hook prerouting priority -100; policy accept;",
                       ["jump services"]),
    "nat-output": ("type nat hook output priority -100; policy accept;", ["jump services"]),
    "nat-postrouting": ("type nat hook postrouting priority 100; policy accept;",
                        [f'meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} oifname != "lo" masquerade']),
}
FIXED_CHAINS: dict[str, list[str]] = {
    "services": [f"{_BY_ADDRESS} @service-ips", f"{_BY_NODE_PORT} @service-nodeports"],
    # A reset, not an ICMP error: TCP treats ICMP on an open connection as soft
    # and keeps retrying, so a client of a Service that lost its endpoints would hang.
    "reject-chain": ["reject with tcp reset"],
}


def proxied(spec: ServiceProxySpec) -> bool:
    """Only TCP ports of Services with a clusterIP are proxied (as in user-space
    mode); the table is `ip` (IPv4), so an IPv6 clusterIP is left out rather than
    failing the whole transaction."""
    return (spec.protocol.upper() == "TCP" and not spec.headless
            and ipv4(str(spec.cluster_ip)))


def ipv4(address: str) -> bool:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True


def service_id(key: ServicePortKey) -> str:
    """`<ns>/<name>/tcp/<port name>`: DNS labels only, so a valid nft identifier part."""
    return f"{key.namespace}/{key.service}/tcp/{key.port_name}"


# What the API lets through (DNS labels) is all a name may hold: it is written into
# nft's input, so anything else (never expected) is left out, not interpreted.
_SAFE_ID = re.compile(r"[a-z0-9][a-z0-9.-]*/[a-z0-9][a-z0-9.-]*/tcp/[a-z0-9-]*")


def endpoint_chain(sid: str, address: tuple[str, int]) -> str:
    return f"{ENDPOINT_PREFIX}{sid}__{address[0]}/{address[1]}"


def affinity_set(sid: str, address: tuple[str, int], timeout: int) -> str:
    # The timeout is part of the name: a set's timeout cannot change in place.
    return f"{AFFINITY_PREFIX}{timeout}-{sid}__{address[0]}/{address[1]}"


def parse_endpoint_chain(name: str) -> tuple[str, tuple[str, int]] | None:
    """(service id, endpoint address) of an endpoint chain's name; None otherwise."""
    if not name.startswith(ENDPOINT_PREFIX) or "__" not in name:
        return None
    sid, _, address = name[len(ENDPOINT_PREFIX):].rpartition("__")
    ip, _, port = address.partition("/")
    return (sid, (ip, int(port))) if port.isdigit() else None


@dataclass(frozen=True)
class ServiceState:
    """What the table does for one Service port: its frontends and endpoints."""

    cluster: tuple[str, int] | None = None
    node_port: int | None = None
    endpoints: frozenset[tuple[str, int]] = frozenset()


# service id → its state; what one write programs (or what a table read back holds)
Programmed = dict[str, ServiceState]


@dataclass(frozen=True)
class Stale:
    """A connection tuple to drop from conntrack: an endpoint that left a frontend."""

    frontend_ip: str | None  # None: a NodePort (any local address)
    frontend_port: int
    endpoint: tuple[str, int]


def departed(before: Programmed, after: Programmed) -> list[Stale]:
    """Every (frontend, endpoint) pair programmed before and not after."""
    stale: list[Stale] = []
    for sid, old in sorted(before.items()):
        new = after.get(sid, ServiceState())
        for endpoint in sorted(old.endpoints):
            if old.cluster is not None and (old.cluster != new.cluster
                                            or endpoint not in new.endpoints):
                stale.append(Stale(old.cluster[0], old.cluster[1], endpoint))
            if old.node_port is not None and (old.node_port != new.node_port
                                              or endpoint not in new.endpoints):
                stale.append(Stale(None, old.node_port, endpoint))
    return stale


@dataclass
class Ruleset:
    """The desired table: chains with their rules, map elements, affinity sets."""

    chains: dict[str, list[str]] = field(default_factory=dict)
    elements: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in COLLECTIONS})
    affinity_sets: dict[str, int] = field(default_factory=dict)  # name → timeout (s)
    programmed: Programmed = field(default_factory=dict)


def build(services: Mapping[ServicePortKey, ServiceProxySpec],
          endpoints: Mapping[ServicePortKey, Sequence[Backend]],
          node_ips: Iterable[str] = ()) -> Ruleset:
    """The desired table for these Service ports (only ready backends, TCP only),
    NodePorts answering on ``node_ips``."""
    rules = Ruleset(chains={name: list(body) for name, body in FIXED_CHAINS.items()})
    rules.elements[NODE_IPS] = sorted({ip for ip in node_ips if ipv4(ip)})
    for key, spec in sorted(services.items(), key=lambda item: service_id(item[0])):
        if proxied(spec) and _SAFE_ID.fullmatch(service_id(key)):
            ready = list(dict.fromkeys(b.address for b in endpoints.get(key, ())
                                       if b.ready and ipv4(b.ip)))
            _add_service(rules, service_id(key), spec, ready)
    return rules


def _add_service(rules: Ruleset, sid: str, spec: ServiceProxySpec,
                 ready: list[tuple[str, int]]) -> None:
    assert spec.cluster_ip is not None
    cluster = f"{spec.cluster_ip} . tcp . {spec.port}"
    node = f"tcp . {spec.node_port}" if spec.node_port else None
    rules.programmed[sid] = ServiceState((spec.cluster_ip, spec.port), spec.node_port,
                                         frozenset(ready))
    if not ready:
        rules.elements["no-endpoint-services"].append(f"{cluster} : goto reject-chain")
        if node:
            rules.elements["no-endpoint-nodeports"].append(f"{node} : goto reject-chain")
        return
    chain = SERVICE_PREFIX + sid
    rules.elements["service-ips"].append(f"{cluster} : goto {chain}")
    if node:
        rules.elements["service-nodeports"].append(f"{node} : goto {chain}")
    timeout = int(spec.session_affinity.timeout_seconds) if spec.session_affinity else 0
    body: list[str] = []
    for address in ready:
        target = endpoint_chain(sid, address)
        dnat = (f"meta mark set meta mark | {MASQ_MARK:#x} "
                f"meta l4proto tcp dnat to {address[0]}:{address[1]}")
        if timeout:
            sticky = affinity_set(sid, address, timeout)
            rules.affinity_sets[sticky] = timeout
            body.append(f"ip saddr @{sticky} goto {target}")
            dnat = f"update @{sticky} {{ ip saddr }} {dnat}"
        rules.chains[target] = [dnat]
    # Least-connections needs per-connection state nftables does not keep:
    # it is approximated by a random pick (kube-proxy's nftables choice).
    pick = "inc" if spec.algorithm is Algorithm.ROUND_ROBIN else "random"
    verdicts = ", ".join(f"{i} : goto {endpoint_chain(sid, a)}" for i, a in enumerate(ready))
    body.append(f"numgen {pick} mod {len(ready)} vmap {{ {verdicts} }}")
    rules.chains[chain] = body


@dataclass(frozen=True)
class Existing:
    """What the kernel's table holds now (names only), read before a first write."""

    chains: frozenset[str] = frozenset()
    sets: frozenset[str] = frozenset()
    maps: frozenset[str] = frozenset()


def transaction(table: str, rules: Ruleset, existing: Existing) -> str:
    """The `nft -f` text that turns `existing` into `rules`, atomically."""
    return "\n".join(_lines(f"ip {table}", rules, existing)) + "\n"


def change(table: str, rules: Ruleset, previous: Ruleset) -> str:
    """The `nft -f` text that turns a table holding `previous` into `rules`."""
    return "\n".join(_change_lines(f"ip {table}", rules, previous)) + "\n"


def _change_lines(t: str, new: Ruleset, old: Ruleset) -> Iterator[str]:
    for name in new.affinity_sets.keys() - old.affinity_sets.keys():
        yield (f"add set {t} {name} {{ type ipv4_addr; flags dynamic,timeout; "
               f"timeout {new.affinity_sets[name]}s; }}")
    for name in new.chains.keys() - old.chains.keys():
        yield f"add chain {t} {name}"
    for name, body in new.chains.items():
        if old.chains.get(name) != body:
            if name in old.chains:
                yield f"flush chain {t} {name}"
            yield from (f"add rule {t} {name} {rule}" for rule in body)
    for name in COLLECTIONS:
        before, after = _keyed(old.elements[name]), _keyed(new.elements[name])
        gone = [key for key, element in before.items() if after.get(key) != element]
        added = [element for key, element in after.items() if before.get(key) != element]
        if gone:
            yield f"delete element {t} {name} {{ {', '.join(gone)} }}"
        if added:
            yield f"add element {t} {name} {{ {', '.join(added)} }}"
    # Emptied first, then deleted: removed chains may refer to each other.
    removed = sorted(old.chains.keys() - new.chains.keys())
    yield from (f"flush chain {t} {name}" for name in removed)
    yield from (f"delete chain {t} {name}" for name in removed)
    for name in sorted(old.affinity_sets.keys() - new.affinity_sets.keys()):
        yield f"delete set {t} {name}"


def _keyed(elements: list[str]) -> dict[str, str]:
    return {element.partition(" : ")[0]: element for element in elements}


def _lines(t: str, rules: Ruleset, existing: Existing) -> Iterator[str]:
    yield f"add table {t}"
    yield f"flush table {t}"  # every rule; set and map elements stay
    for name, (hook, _) in BASE_CHAINS.items():
        yield f"add chain {t} {name} {{ {hook} }}"
    for name in rules.chains:
        yield f"add chain {t} {name}"
    for name, (kind, key) in COLLECTIONS.items():
        yield f"add {kind} {t} {name} {{ type {key}; }}"
        yield f"flush {kind} {t} {name}"
    for name, timeout in rules.affinity_sets.items():
        yield f"add set {t} {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"
    for name, (_, body) in BASE_CHAINS.items():
        yield from (f"add rule {t} {name} {rule}" for rule in body)
    for name, body in rules.chains.items():
        yield from (f"add rule {t} {name} {rule}" for rule in body)
    for name, elements in rules.elements.items():
        if elements:
            yield f"add element {t} {name} {{ {', '.join(elements)} }}"
    # Nothing refers to these any more: their rules and map elements were flushed above.
    for name in sorted(existing.chains - rules.chains.keys() - BASE_CHAINS.keys()):
        yield f"delete chain {t} {name}"
    for name in sorted(existing.sets - rules.affinity_sets.keys() - COLLECTIONS.keys()):
        yield f"delete set {t} {name}"
    for name in sorted(existing.maps - MAP_TYPES.keys()):
        yield f"delete map {t} {name}"
