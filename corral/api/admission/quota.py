"""ResourceQuota admission (Borg's quota, Kubernetes' ResourceQuota).

    CREATE of a counted object (a pod, service, configmap, any count/<resource>)
      usage(obj) ─► quotas of the namespace that cover it (scopes) and limit any of it
        └─ per quota: read ─► must-specify check ─► used + usage ≤ hard?
              no  ─► recount used from the objects that exist (frees stale charges,
                     e.g. pods that finished) and check again ─► still no: 403
                     "exceeded quota: <name>, requested: …, used: …, limited: …"
              yes ─► compare-and-swap status.used += usage  (Conflict: re-read, retry)
        a later quota refusing refunds the ones already charged
    DELETE (after the store removed it) ─► CAS status.used -= usage
    Pod UPDATE to Succeeded/Failed ─► refunded once (a finished pod counts for nothing)
    ResourceQuota CREATE / spec UPDATE ─► status.hard = spec.hard, status.used recounted

Charging in admission with a CAS on the quota's status is what kube-apiserver
does: two concurrent creates can never both take the last unit. A recount cannot
see objects that were charged but not stored yet, so charges this process made
in the last ``IN_FLIGHT_SECONDS`` and whose objects it does not list are added
back. (Another API server's in-flight charges are not known: a recount racing
one of them may undercount for a moment, as Kubernetes' quota controller may.)
The pure part — usage, scopes, recount, wording — is also what the quota
controller (``corral.controllers.quota.reconcile_quota``) uses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from corral import podresources
from corral.api.admission.priority import forbidden
from corral.api.alloc_view import pod_view
from corral.api.errors import APIError, Conflict
from corral.api.quantity import format_bytes, format_cpu, parse_quantity
from corral.api.registry import Filter, Registry, list_objects
from corral.api.registry.core import conflict
from corral.api.registry.objects import shown_name
from corral.api.resources import BY_KIND, RESOURCES, Resource
from corral.objects import Obj, meta, spec, status, uid_of

Amounts = dict[str, Decimal]

QUOTA = BY_KIND["ResourceQuota"]
POD = BY_KIND["Pod"]
PODLIKE = ("Pod", "Alloc")  # kinds that take compute resources
CAS_RETRIES = 20
IN_FLIGHT_SECONDS = 10.0
RELEASED_MEMORY_SECONDS = 600.0
TERMINAL_PHASES = ("Succeeded", "Failed")
COMPUTE = ("cpu", "memory", "ephemeral-storage")
# With a quota on these, every container must state the matching request/limit
# (Kubernetes' backward-compatibility rule for cpu and memory).
MUST_SPECIFY = ("cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu",
                "limits.memory")
# Core kinds with a legacy quota name besides count/<plural>.
LEGACY_COUNTS = {"Pod": "pods", "Service": "services", "ConfigMap": "configmaps",
                 "Secret": "secrets", "ResourceQuota": "resourcequotas"}
_DECIMAL_SUFFIXES = (("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3))


# ---- usage ---------------------------------------------------------------------

def count_name(res: Resource) -> str:
    """count/pods, count/deployments.apps: Kubernetes' object-count quota names."""
    return f"count/{res.plural}.{res.group}" if res.group else f"count/{res.plural}"


def object_usage(res: Resource, obj: Obj) -> Amounts:
    """What ``obj`` takes from a quota; empty when it takes nothing (a finished pod)."""
    if res.kind == "Pod":
        return pod_usage(obj)
    if res.kind == "Alloc":
        return alloc_usage(res, obj)
    usage: Amounts = {count_name(res): Decimal(1)}
    legacy = LEGACY_COUNTS.get(res.kind)
    if legacy:
        usage[legacy] = Decimal(1)
    if res.kind == "Service":
        usage.update(_service_usage(obj))
    return usage


def pod_usage(pod: Obj) -> Amounts:
    if status(pod).get("phase") in TERMINAL_PHASES:
        return {}
    spec = pod.get("spec") or {}
    usage: Amounts = {"pods": Decimal(1), "count/pods": Decimal(1)}
    for name, amount in pod_amounts(spec, "requests").items():
        usage[f"requests.{name}"] = amount
        if name in COMPUTE:
            usage[name] = amount
    for name, amount in pod_amounts(spec, "limits").items():
        if name in COMPUTE:
            usage[f"limits.{name}"] = amount
    return usage


def alloc_usage(res: Resource, alloc: Obj) -> Amounts:
    """An Alloc takes what a pod requesting its resources would, until it is
    deleted (whatever its phase: it is refunded on deletion only)."""
    usage = pod_usage(pod_view({**alloc, "status": {}}))
    del usage["pods"], usage["count/pods"]
    usage[count_name(res)] = Decimal(1)
    return usage


def pod_amounts(spec: Mapping[str, Any], which: str) -> Amounts:
    """The pod's effective requests (or limits): the containers' sum, or the
    largest init container if more, plus sidecars and overhead."""
    overhead = {k: parse_quantity(v) for k, v in (spec.get("overhead") or {}).items()}
    return podresources.pod_amounts(spec, lambda c: _container_amounts(c, which), overhead)


def _container_amounts(container: Mapping[str, Any], which: str) -> Amounts:
    amounts = (container.get("resources") or {}).get(which) or {}
    return {name: parse_quantity(q) for name, q in amounts.items()}


def _exceeding(usage: Amounts, other: Amounts) -> Amounts:
    """By how much each of ``usage``'s amounts is above ``other``'s, where it is."""
    return {name: amount - other.get(name, Decimal(0)) for name, amount in usage.items()
            if amount > other.get(name, Decimal(0))}


def _add(into: Amounts, amounts: Mapping[str, Decimal]) -> None:
    for name, amount in amounts.items():
        into[name] = into.get(name, Decimal(0)) + amount


def _service_usage(svc: Obj) -> Amounts:
    spec = svc.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    usage: Amounts = {}
    if kind in ("NodePort", "LoadBalancer"):
        usage["services.nodeports"] = Decimal(len(spec.get("ports") or ()))
    if kind == "LoadBalancer":
        usage["services.loadbalancers"] = Decimal(1)
    return usage


# ---- which quotas cover what ----------------------------------------------------

def hard_of(quota: Obj) -> Amounts:
    return _amounts(spec(quota).get("hard"))


def used_of(quota: Obj) -> Amounts:
    return _amounts(status(quota).get("used"))


def _amounts(raw: Mapping[str, Any] | None) -> Amounts:
    return {name: parse_quantity(q) for name, q in (raw or {}).items()}


def covers(quota: Obj, res: Resource, obj: Obj) -> bool:
    """Whether the quota's scopes (and scopeSelector) select ``obj``. A scoped
    quota only ever counts pods."""
    scopes = _scope_terms(quota)
    if not scopes:
        return True
    if res.kind == "Alloc":
        obj = pod_view(obj)
    return res.kind in PODLIKE and all(_scope_matches(term, obj) for term in scopes)


def _scope_terms(quota: Obj) -> list[Obj]:
    spec = quota.get("spec") or {}
    terms: list[Obj] = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or ()]
    selector = spec.get("scopeSelector") or {}
    terms.extend(selector.get("matchExpressions") or ())
    return terms


def _scope_matches(term: Obj, pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    scope, operator = term.get("scopeName"), term.get("operator")
    if scope == "PriorityClass":
        name = spec.get("priorityClassName") or ""
        values = term.get("values") or ()
        return {"In": name in values, "NotIn": name not in values, "Exists": bool(name),
                "DoesNotExist": not name}.get(str(operator), False)
    terminating = spec.get("activeDeadlineSeconds") is not None
    best_effort = _best_effort(spec)
    truth = {"Terminating": terminating, "NotTerminating": not terminating,
             "BestEffort": best_effort, "NotBestEffort": not best_effort}.get(str(scope))
    if truth is None:
        return False
    return truth if operator != "DoesNotExist" else not truth


def _best_effort(spec: Mapping[str, Any]) -> bool:
    containers = [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]
    for container in containers:
        resources = container.get("resources") or {}
        for which in ("requests", "limits"):
            if any(name in ("cpu", "memory") for name in resources.get(which) or {}):
                return False
    return True


def resources_counted(hard: Iterable[str]) -> list[Resource]:
    """The kinds whose objects a quota with these hard limits counts."""
    wanted = set(hard)
    found: list[Resource] = []
    for res in RESOURCES:
        names = {count_name(res), LEGACY_COUNTS.get(res.kind, "")}
        if res.kind in PODLIKE:
            names |= {n for n in wanted if n.startswith(("requests.", "limits."))}
            names |= set(COMPUTE)
        if res.kind == "Service":
            names |= {"services.nodeports", "services.loadbalancers"}
        if wanted & names:
            found.append(res)
    return found


def recount(quota: Obj, objects: Iterable[tuple[Resource, Obj]]) -> Amounts:
    """status.used from scratch: the usage of every covered object, for each hard key."""
    hard = hard_of(quota)
    used: Amounts = {name: Decimal(0) for name in hard}
    for res, obj in objects:
        if covers(quota, res, obj):
            _add(used, {k: v for k, v in object_usage(res, obj).items() if k in hard})
    return used


# ---- wording --------------------------------------------------------------------

def format_amount(name: str, value: Decimal) -> str:
    """A quantity as Kubernetes prints it: cpu in cores or millicores, bytes with
    a binary suffix (or a decimal one), counts as integers."""
    if name.endswith("cpu"):
        return format_cpu(int((value * 1000).to_integral_value(rounding=ROUND_CEILING)))
    if value != value.to_integral_value():
        return str(value.normalize())
    n = int(value)
    if n and n % 1024 == 0:
        return format_bytes(n)
    for suffix, power in _DECIMAL_SUFFIXES:
        if n and n % 10**power == 0:
            return f"{n // 10**power}{suffix}"
    return str(n)


def pretty(amounts: Mapping[str, Decimal]) -> str:
    return ",".join(f"{k}={format_amount(k, amounts[k])}" for k in sorted(amounts))


def formatted(amounts: Mapping[str, Decimal]) -> dict[str, str]:
    return {k: format_amount(k, v) for k, v in sorted(amounts.items())}


def exceeded_message(name: str, requested: Amounts, used: Amounts, hard: Amounts,
                     over: list[str]) -> str:
    def mask(a: Amounts) -> Amounts:
        return {k: a.get(k, Decimal(0)) for k in over}

    return (f"exceeded quota: {name}, requested: {pretty(mask(requested))}, "
            f"used: {pretty(mask(used))}, limited: {pretty(mask(hard))}")


def missing_specifications(hard: Iterable[str], pod: Obj) -> str:
    """'' or "must specify limits.cpu for: app; requests.memory for: app,side"."""
    required = [r for r in MUST_SPECIFY if r in set(hard)]
    spec = pod.get("spec") or {}
    missing: dict[str, list[str]] = {}
    for container in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
        resources = container.get("resources") or {}
        for resource in required:
            which, _, base = resource.rpartition(".")
            if base not in (resources.get(which or "requests") or {}):
                missing.setdefault(resource, []).append(container.get("name") or "")
    if not missing:
        return ""
    parts = [f"{r} for: {','.join(sorted(missing[r]))}" for r in sorted(missing)]
    return "must specify " + "; ".join(parts)


# ---- the admission plugin ---------------------------------------------------------

@dataclass(frozen=True)
class Charge:
    object_key: str  # "<plural>/<name>"
    usage: Amounts
    at: float  # time.monotonic()


class QuotaAdmission:
    """Charges quotas in admission and refunds them when objects go away."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        registry.on_deleted.append(self.on_deleted)
        self._locks: dict[str, asyncio.Lock] = {}
        self._in_flight: dict[tuple[str, str], list[Charge]] = {}  # (ns, quota) → charges
        self._released: dict[str, float] = {}  # pod uid → when its usage was refunded

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> None:
        if not res.namespaced:
            return
        if res.kind == "ResourceQuota":
            await self._admit_quota(op, obj, old)
        if op == "CREATE":
            await self._admit_create(res, obj, dry_run)
        elif res.kind == "Pod" and old is not None and not dry_run:
            await self._admit_pod_update(obj, old)
        elif res.kind == "Alloc" and old is not None:
            await self._admit_alloc_resize(res, obj, old, dry_run)

    # -- create: charge -----------------------------------------------------------

    async def _admit_create(self, res: Resource, obj: Obj, dry_run: bool) -> None:
        usage = object_usage(res, obj)
        ns, name = _ns_name(obj)
        if not usage or not await self._covering(ns, res, obj):
            return
        if await self.registry.find(res, ns, name) is not None:
            return  # the create fails with AlreadyExists: nothing to charge
        async with self._lock(ns):
            charged = await self._charge_all(
                [q["metadata"]["name"] for q in await self._covering(ns, res, obj)],
                ns, res, obj, usage, dry_run)
            for quota_name in charged if not dry_run else ():
                self._remember(ns, quota_name,
                               Charge(f"{res.plural}/{name}", usage, time.monotonic()))

    async def _charge_all(self, quota_names: list[str], ns: str, res: Resource, obj: Obj,
                          usage: Amounts, dry_run: bool) -> list[str]:
        """Charge ``usage`` to every quota named, or to none: a refusal takes back
        what the others were charged, then raises. The names charged."""
        charged: list[str] = []
        try:
            for quota_name in quota_names:
                await self._charge(quota_name, ns, res, obj, usage, dry_run)
                charged.append(quota_name)
        except APIError:
            for quota_name in charged if not dry_run else ():
                await self._apply(ns, quota_name, usage, -1)
            raise
        return charged

    async def _covering(self, ns: str, res: Resource, obj: Obj) -> list[Obj]:
        """The namespace's quotas that select ``obj`` and limit something of its kind
        (a quota on limits.cpu covers a pod without limits: it must state them)."""
        return [q for q in await self._quotas(ns)
                if covers(q, res, obj) and res in resources_counted(hard_of(q))]

    async def _charge(self, quota_name: str, ns: str, res: Resource, obj: Obj,
                      usage: Amounts, dry_run: bool = False) -> None:
        """Take `usage` from the quota, or refuse; a dry run only checks it would fit."""
        for _ in range(CAS_RETRIES):
            quota = await self.registry.find(QUOTA, ns, quota_name)
            if quota is None:
                return
            hard = hard_of(quota)
            if res.kind == "Pod":
                missing = missing_specifications(hard, obj)
                if missing:
                    raise forbidden(res, shown_name(obj), f"failed quota: {quota_name}: {missing}")
            wanted = {k: v for k, v in usage.items() if k in hard}
            used = used_of(quota)
            if _over(used, wanted, hard):
                used = await self._recount(quota, ns)
            over = _over(used, wanted, hard)
            if over:
                if not dry_run:
                    await self._store_used(quota, used)
                raise forbidden(res, shown_name(obj),
                                exceeded_message(quota_name, wanted, used, hard, over))
            if dry_run:
                return
            new_used = {k: used.get(k, Decimal(0)) + wanted.get(k, Decimal(0)) for k in hard}
            try:
                await self._write_status(quota, new_used)
                return
            except Conflict:
                continue
        raise conflict(QUOTA, quota_name, "too many concurrent quota updates; try again")

    async def _store_used(self, quota: Obj, used: Amounts) -> None:
        """Keep a recount we made anyway (best effort: a lost CAS is fine)."""
        if formatted(used) != formatted(used_of(quota)):
            try:
                await self._write_status(quota, used)
            except Conflict:
                pass

    async def _admit_alloc_resize(self, res: Resource, alloc: Obj, old: Obj,
                                  dry_run: bool) -> None:
        """An Alloc resized in place (a framework's standing Alloc taking a new
        ACCEPT's tasks, or giving back idle room) is charged what it grows by, or
        refused as a create would be, and refunded what it shrinks by. An update
        retried after a lost write is charged again; the quota controller's
        recount mends that, as it mends Kubernetes' own quota drift."""
        new_usage, old_usage = object_usage(res, alloc), object_usage(res, old)
        grown = _exceeding(new_usage, old_usage)
        shrunk = _exceeding(old_usage, new_usage)
        if not grown and not shrunk:
            return
        ns = _ns_name(alloc)[0]
        async with self._lock(ns):
            quotas = [q["metadata"]["name"] for q in await self._covering(ns, res, alloc)]
            if grown:
                await self._charge_all(quotas, ns, res, alloc, grown, dry_run)
            for quota_name in quotas if shrunk and not dry_run else ():
                await self._apply(ns, quota_name, shrunk, -1)

    # -- refunds ----------------------------------------------------------------------

    async def on_deleted(self, res: Resource, obj: Obj) -> None:
        """Registry hook: the object is gone from the store, so is its usage."""
        if not res.namespaced:
            return
        usage = object_usage(res, obj)
        ns, name = _ns_name(obj)
        self._forget(ns, f"{res.plural}/{name}")
        uid = uid_of(obj)
        if not usage or self._released.pop(uid, None) is not None:
            return
        await self._refund(ns, res, obj, usage)

    async def _admit_pod_update(self, pod: Obj, old: Obj) -> None:
        finished = status(pod).get("phase") in TERMINAL_PHASES
        if not finished or status(old).get("phase") in TERMINAL_PHASES:
            return
        uid = uid_of(old)
        if uid in self._released:
            return  # refunded by an earlier attempt of this update (a lost CAS)
        self._prune_released()
        self._released[uid] = time.monotonic()
        ns, name = _ns_name(old)
        self._forget(ns, f"{POD.plural}/{name}")
        await self._refund(ns, POD, old, pod_usage(old))

    async def _refund(self, ns: str, res: Resource, obj: Obj, usage: Amounts) -> None:
        async with self._lock(ns):
            for quota in await self._covering(ns, res, obj):
                await self._apply(ns, quota["metadata"]["name"], usage, -1)

    async def _apply(self, ns: str, quota_name: str, usage: Amounts, sign: int) -> None:
        for _ in range(CAS_RETRIES):
            quota = await self.registry.find(QUOTA, ns, quota_name)
            if quota is None:
                return
            hard, used = hard_of(quota), used_of(quota)
            new_used = {k: max(used.get(k, Decimal(0)) + sign * usage.get(k, Decimal(0)),
                               Decimal(0)) for k in hard}
            try:
                await self._write_status(quota, new_used)
                return
            except Conflict:
                continue

    # -- quota objects: status.hard and a recount ---------------------------------

    async def _admit_quota(self, op: str, quota: Obj, old: Obj | None) -> None:
        if op == "UPDATE" and old is not None and quota.get("spec") == old.get("spec"):
            return
        used = await self._recount(quota, _ns_name(quota)[0])
        status = quota.get("status")
        quota["status"] = {**(status if isinstance(status, dict) else {}),
                           "hard": dict(spec(quota).get("hard") or {}),
                           "used": formatted(used)}

    async def _recount(self, quota: Obj, ns: str) -> Amounts:
        hard = hard_of(quota)
        objects: list[tuple[Resource, Obj]] = []
        for res in resources_counted(hard):
            page = await list_objects(self.registry.store, res, ns, Filter(res))
            objects.extend((res, obj) for obj in page.items)
        used = recount(quota, objects)
        listed = {f"{res.plural}/{_ns_name(obj)[1]}" for res, obj in objects}
        for charge in self._charges(ns, str(meta(quota).get("name"))):
            if charge.object_key not in listed:
                _add(used, {k: v for k, v in charge.usage.items() if k in hard})
        return used

    async def _write_status(self, quota: Obj, used: Amounts) -> None:
        status = dict(quota.get("status") or {})
        status["hard"] = dict(spec(quota).get("hard") or {})
        status["used"] = formatted(used)
        rv = str(quota["metadata"]["resourceVersion"])
        await self.registry.write_exact(QUOTA, {**quota, "status": status}, rv)

    async def _quotas(self, ns: str) -> list[Obj]:
        return (await list_objects(self.registry.store, QUOTA, ns, Filter(QUOTA))).items

    # -- bookkeeping --------------------------------------------------------------------

    def _lock(self, ns: str) -> asyncio.Lock:
        return self._locks.setdefault(ns, asyncio.Lock())

    def _remember(self, ns: str, quota_name: str, charge: Charge) -> None:
        self._in_flight.setdefault((ns, quota_name), []).append(charge)

    def _charges(self, ns: str, quota_name: str) -> list[Charge]:
        """Charges made lately (the others have surely landed), oldest dropped."""
        horizon = time.monotonic() - IN_FLIGHT_SECONDS
        charges = [c for c in self._in_flight.get((ns, quota_name), []) if c.at > horizon]
        if charges:
            self._in_flight[(ns, quota_name)] = charges
        else:
            self._in_flight.pop((ns, quota_name), None)
        return charges

    def _forget(self, ns: str, object_key: str) -> None:
        for (charge_ns, quota_name), charges in list(self._in_flight.items()):
            if charge_ns == ns:
                self._in_flight[(ns, quota_name)] = [
                    c for c in charges if c.object_key != object_key]

    def _prune_released(self) -> None:
        horizon = time.monotonic() - RELEASED_MEMORY_SECONDS
        for uid in [u for u, at in self._released.items() if at < horizon]:
            del self._released[uid]


def _over(used: Amounts, wanted: Amounts, hard: Amounts) -> list[str]:
    return sorted(k for k, v in wanted.items()
                  if used.get(k, Decimal(0)) + v > hard.get(k, Decimal(0)))


def _ns_name(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
