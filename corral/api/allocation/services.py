"""Service address allocation, as kube-apiserver's Service REST storage does it.

    CREATE/UPDATE of a Service (admission, after validation and defaults)
      UPDATE: an omitted clusterIP / nodePort keeps the one allocated before
      clusterIP: ExternalName, headless ("None") ─► none
                 given ─► in range? claimed by no one else? ─► 422 naming spec.clusterIP
                 empty ─► a random free address of the range
      nodePort (NodePort, LoadBalancer): the same per port, from the port range,
                 422 naming spec.ports[i].nodePort
      then settle in the background: values the write dropped are released once
      the stored Service no longer holds them; values claimed for a write that
      never landed (a dry run, a failed create) are released after a few seconds
    DELETE (registry.on_deleted) ─► the Service's claims released

Claims are store keys created only if absent (``claims.py``), so concurrent
creates on any number of API servers never share a value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from corral.api.allocation.claims import Claims, Owner
from corral.api.allocation.ranges import IpRange, PortRange
from corral.api.errors import APIError, invalid
from corral.api.field_errors import FieldErrors
from corral.api.registry import Registry
from corral.api.resources import BY_KIND, Resource
from corral.objects import Obj, meta
from corral.store.errors import StoreError

log = logging.getLogger(__name__)

SERVICE = BY_KIND["Service"]
SERVICE_IPS = "serviceips"
NODE_PORTS = "servicenodeports"
# When to look whether a write landed (seconds between looks, ~9 s in all).
SETTLE_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
Value = tuple[str, str]  # (pool name, value)


def wants_cluster_ip(spec: Obj) -> bool:
    return spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None"


def wants_node_ports(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind == "NodePort" or (kind == "LoadBalancer"
                                  and spec.get("allocateLoadBalancerNodePorts") is not False)


def held_values(svc: Obj | None) -> set[Value]:
    """What a stored Service uses: its clusterIP and its nodePorts."""
    if svc is None:
        return set()
    spec = svc.get("spec") or {}
    held: set[Value] = set()
    ip = spec.get("clusterIP")
    if ip and ip != "None":
        held.add((SERVICE_IPS, str(ip)))
    held |= {(NODE_PORTS, str(p["nodePort"])) for p in spec.get("ports") or []
             if p.get("nodePort")}
    return held


def owner_of(svc: Obj) -> Owner:
    m = meta(svc)
    return Owner(str(m.get("namespace") or ""), str(m.get("name") or ""), str(m.get("uid") or ""))


def keep_allocated(spec: Obj, old_spec: Obj) -> None:
    """An update that leaves out clusterIP or a nodePort keeps the allocated one."""
    if wants_cluster_ip(spec) and wants_cluster_ip(old_spec) and old_spec.get("clusterIP"):
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
    elif spec.get("type") == "ExternalName" and spec.get("clusterIP") == old_spec.get(
            "clusterIP"):
        spec.pop("clusterIP", None)  # a type change drops what the old type needed
        spec.pop("clusterIPs", None)
    if not (wants_node_ports(spec) and wants_node_ports(old_spec)):
        return
    old_ports = old_spec.get("ports") or []
    for port in spec.get("ports") or []:
        if port.get("nodePort"):
            continue
        match = next((p for p in old_ports if p.get("port") == port.get("port")
                      and p.get("protocol", "TCP") == port.get("protocol", "TCP")), None)
        if match is not None and match.get("nodePort"):
            port["nodePort"] = match["nodePort"]


def range_full(what: str) -> APIError:
    return APIError(f"Internal error occurred: failed to allocate a {what}: range is full")


class ServiceAllocation:
    """Admission plugin and delete hook that give Services their clusterIP and nodePorts."""

    def __init__(self, registry: Registry, ip_range: IpRange, port_range: PortRange) -> None:
        self.registry = registry
        self.ip_range = ip_range
        self.port_range = port_range
        self.pools = {
            SERVICE_IPS: Claims(registry.store, SERVICE_IPS, ip_range, self._holds),
            NODE_PORTS: Claims(registry.store, NODE_PORTS, port_range, self._holds),
        }
        self._tasks: set[asyncio.Task[None]] = set()
        registry.on_deleted.append(self.on_deleted)

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> None:
        if res.kind != "Service":
            return
        owner = owner_of(obj)
        if op == "CREATE" and await self.registry.find(res, owner.namespace, owner.name):
            return  # the create fails with AlreadyExists: nothing to claim
        spec = obj.setdefault("spec", {})
        if old is not None:
            keep_allocated(spec, old.get("spec") or {})
        before = held_values(old)
        errs = FieldErrors()
        taken: list[Value] = []
        try:
            await self._cluster_ip(spec, owner, before, errs, taken)
            await self._node_ports(spec, owner, before, errs, taken)
        except APIError:
            await self._release(owner, taken)
            raise
        if errs:
            await self._release(owner, taken)
            raise invalid(res.kind, owner.name, list(errs), res.group)
        if dry_run:  # the answer shows what a create would get; nothing is kept
            await self._release(owner, taken)
            return
        self._settle_later(owner, set(taken), before - held_values(obj))

    async def on_deleted(self, res: Resource, obj: Obj) -> None:
        if res.kind == "Service":
            await self._release(owner_of(obj), held_values(obj))

    async def aclose(self) -> None:
        """Stop settling (claims left behind are reclaimed once stale)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- clusterIP -------------------------------------------------------------------

    async def _cluster_ip(self, spec: Obj, owner: Owner, before: set[Value],
                          errs: FieldErrors, taken: list[Value]) -> None:
        if spec.get("type") == "ExternalName":
            return
        if not wants_cluster_ip(spec):  # headless
            spec["clusterIPs"] = ["None"]
            _single_stack(spec)
            return
        ip = str(spec.get("clusterIP") or (spec.get("clusterIPs") or [""])[0] or "")
        if not ip:
            allocated = await self.pools[SERVICE_IPS].allocate(owner)
            if allocated is None:
                raise range_full("serviceIP")
            ip = allocated
            taken.append((SERVICE_IPS, ip))
        elif (SERVICE_IPS, ip) in before:
            await self.pools[SERVICE_IPS].take(ip, owner)  # re-creates a lost claim
        elif not self.ip_range.contains(ip):
            errs.invalid("spec.clusterIP", ip, f"failed to allocate IP {ip}: provided IP is "
                         f"not in the valid range. The range of valid IPs is {self.ip_range}")
            return
        elif await self.pools[SERVICE_IPS].take(ip, owner):
            taken.append((SERVICE_IPS, ip))
        else:
            errs.invalid("spec.clusterIP", ip,
                         f"failed to allocate IP {ip}: provided IP is already allocated")
            return
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
        _single_stack(spec)

    # -- nodePorts -------------------------------------------------------------------

    async def _node_ports(self, spec: Obj, owner: Owner, before: set[Value],
                          errs: FieldErrors, taken: list[Value]) -> None:
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            return
        seen: set[tuple[int, str]] = set()
        for i, port in enumerate(spec.get("ports") or []):
            path = f"spec.ports[{i}].nodePort"
            number = port.get("nodePort")
            if not number:
                if wants_node_ports(spec):
                    port["nodePort"] = await self._allocate_port(owner, taken)
                continue
            key = (int(number), str(port.get("protocol") or "TCP"))
            if key in seen:
                errs.duplicate(path, number)
                continue
            seen.add(key)
            await self._claim_port(int(number), path, owner, before, errs, taken)

    async def _allocate_port(self, owner: Owner, taken: list[Value]) -> int:
        value = await self.pools[NODE_PORTS].allocate(owner)
        if value is None:
            raise range_full("nodePort")
        taken.append((NODE_PORTS, value))
        return int(value)

    async def _claim_port(self, number: int, path: str, owner: Owner, before: set[Value],
                          errs: FieldErrors, taken: list[Value]) -> None:
        value = str(number)
        claims = self.pools[NODE_PORTS]
        if (NODE_PORTS, value) in before:
            await claims.take(value, owner)
        elif not self.port_range.contains(value):
            errs.invalid(path, number, "provided port is not in the valid range. "
                         f"The range of valid ports is {self.port_range}")
        elif (NODE_PORTS, value) in taken or await claims.take(value, owner):
            if (NODE_PORTS, value) not in taken:
                taken.append((NODE_PORTS, value))
        else:
            errs.invalid(path, number, "provided port is already allocated")

    # -- releasing -------------------------------------------------------------------

    async def _holds(self, owner: Owner, pool: str, value: str) -> bool:
        svc = await self.registry.find(SERVICE, owner.namespace, owner.name)
        return (pool, value) in held_values(svc)

    async def _release(self, owner: Owner, values: Iterable[Value]) -> None:
        for pool, value in values:
            if await self.pools[pool].release(value, owner):
                log.info("service allocation released pool=%s value=%s service=%s/%s",
                         pool, value, owner.namespace, owner.name)

    def _settle_later(self, owner: Owner, fresh: set[Value], dropped: set[Value]) -> None:
        if not fresh and not dropped:
            return
        task = asyncio.create_task(self._settle(owner, fresh, dropped))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, owner: Owner, fresh: set[Value], dropped: set[Value]) -> None:
        """Free what the write dropped once it landed; free fresh claims it never stored."""
        try:
            for delay in SETTLE_DELAYS:
                await asyncio.sleep(delay)
                current = await self.registry.find(SERVICE, owner.namespace, owner.name)
                ours = current is not None and owner_of(current).uid == owner.uid
                held = held_values(current) if ours else set()
                await self._release(owner, dropped - held)
                dropped &= held  # still held: the write has not landed (or failed)
                fresh -= held
                if not fresh and not dropped:
                    return
            await self._release(owner, fresh)
        except (APIError, StoreError) as err:  # store away: stale claims heal later
            log.warning("service allocation settle failed service=%s/%s error=%s",
                        owner.namespace, owner.name, err)


def _single_stack(spec: Obj) -> None:
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
