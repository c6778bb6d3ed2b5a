"""LimitRanger admission, as kube-apiserver's ``LimitRanger`` plugin does it: a
namespace's LimitRanges default what its pods leave out and bound what they ask.

    Pod CREATE, for each LimitRange of the namespace (all apply, in name order):
      default  every container and init container without a request (limit) for a
               resource the Container item's defaultRequest (default) names gets it;
               the pod is annotated kubernetes.io/limit-ranger: "LimitRanger plugin
               set: cpu, memory request for container app; cpu limit for container app"
               (a limit without a request already requests the limit: defaults.py)
      bound    Container item: each container's min / max / maxLimitRequestRatio;
               Pod item: the same over the pod's sum (sidecars and the init peak,
               without overhead) ─► 403 'pods "x" is forbidden: [minimum cpu usage
               per Container is 100m, but request is 50m, ...]'
      the defaulted pod is validated again (a default limit below a request the pod
      gave is Invalid, as Kubernetes' validation after its mutating admission says)
    Pod UPDATE: nothing (containers' resources cannot change after creation)

With several LimitRanges the annotation names everything any of them set;
Kubernetes' says only what the last one to set something set.

It runs first, so Pod Security, priority and quota see the defaulted pod: quota
charges the requests LimitRanger filled in. LimitRanges are read from the store
on each pod create (one range read of the namespace's prefix, usually empty),
not from a cache: a LimitRange made a moment ago, on any API server, applies to
the next pod, where Kubernetes' informer may still miss it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from corral import podresources
from corral.api import kinds
from corral.api.admission.priority import forbidden
from corral.api.admission.quota import format_amount
from corral.api.errors import invalid
from corral.api.quantity import parse_quantity
from corral.api.registry import Filter, Registry, list_objects
from corral.api.registry.objects import shown_name
from corral.api.resources import BY_KIND, Resource
from corral.api.validation import validate
from corral.objects import Obj, name_of, namespace_of

LIMIT_RANGE = BY_KIND["LimitRange"]
ANNOTATION = "kubernetes.io/limit-ranger"
Amounts = dict[str, Decimal]


class LimitRangerAdmission:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> None:
        if res.kind != "Pod" or op != "CREATE":
            return
        ranges = await self._limit_ranges(namespace_of(obj))
        if not ranges:
            return
        items = [item for lr in ranges for item in _items(lr)]
        if default_pod(obj, items):
            _revalidate(res, obj)
        for lr in ranges:  # the first LimitRange refusing is the one reported
            problems = check_pod(obj, _items(lr))
            if problems:
                raise forbidden(res, shown_name(obj), aggregate(problems))

    async def _limit_ranges(self, namespace: str) -> list[Obj]:
        page = await list_objects(self.registry.store, LIMIT_RANGE, namespace,
                                  Filter(LIMIT_RANGE))
        return page.items


def _items(lr: Obj) -> list[Obj]:
    return list((lr.get("spec") or {}).get("limits") or ())


def _revalidate(res: Resource, pod: Obj) -> None:
    causes = validate(kinds.decode(res.kind, pod))
    if causes:
        raise invalid(res.kind, name_of(pod), causes, res.group)


# ---- defaults --------------------------------------------------------------------

def default_pod(pod: Obj, items: Iterable[Obj]) -> bool:
    """Fill each container's missing requests and limits from the Container items
    (the first item naming a resource wins), annotate what was set; whether any was."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for item in items:
        if item.get("type") == "Container":
            _fill(requests, item.get("defaultRequest") or {})
            _fill(limits, item.get("default") or {})
    spec = pod.get("spec") or {}
    notes: list[str] = []
    for key, shown in (("containers", "container"), ("initContainers", "init container")):
        for container in spec.get(key) or ():
            resources = container.setdefault("resources", {})
            for which, defaults in (("requests", requests), ("limits", limits)):
                set_now = _fill_container(resources, which, defaults)
                if set_now:
                    what = "request" if which == "requests" else "limit"
                    notes.append(f"{', '.join(sorted(set_now))} {what} for {shown} "
                                 f"{container.get('name', '')}")
            if not resources:
                del container["resources"]
    if notes:
        annotations = pod.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
    return bool(notes)


def _fill(into: dict[str, str], defaults: Mapping[str, str]) -> list[str]:
    added = [name for name in defaults if name not in into]
    into.update({name: defaults[name] for name in added})
    return added


def _fill_container(resources: Obj, which: str, defaults: Mapping[str, str]) -> list[str]:
    if not defaults:
        return []
    amounts = dict(resources.get(which) or {})
    added = _fill(amounts, defaults)
    if added:
        resources[which] = amounts
    return added


# ---- bounds ----------------------------------------------------------------------

def check_pod(pod: Obj, items: Iterable[Obj]) -> list[str]:
    """What in ``pod`` one LimitRange's items refuse, in Kubernetes' words."""
    spec = pod.get("spec") or {}
    problems: list[str] = []
    for item in items:
        if item.get("type") == "Container":
            for key in ("containers", "initContainers"):
                for container in spec.get(key) or ():
                    resources = container.get("resources") or {}
                    problems += check_bounds(item, "Container", _amounts(resources, "requests"),
                                             _amounts(resources, "limits"))
        elif item.get("type") == "Pod":
            problems += check_bounds(item, "Pod", _pod_amounts(spec, "requests"),
                                     _pod_amounts(spec, "limits"))
    return problems


def _amounts(resources: Obj, which: str) -> Amounts:
    return {name: parse_quantity(q) for name, q in (resources.get(which) or {}).items()}


def _pod_amounts(spec: Obj, which: str) -> Amounts:
    # Kubernetes bounds what the containers ask, without the runtime's overhead.
    return podresources.pod_amounts(
        spec, lambda c: _amounts(c.get("resources") or {}, which), {})


def check_bounds(item: Obj, limit_type: str, requests: Amounts, limits: Amounts) -> list[str]:
    problems: list[str] = []
    for name, bound in sorted((item.get("min") or {}).items()):
        problems += _below_min(name, limit_type, bound, requests, limits)
    for name, bound in sorted((item.get("max") or {}).items()):
        problems += _above_max(name, limit_type, bound, requests, limits)
    for name, bound in sorted((item.get("maxLimitRequestRatio") or {}).items()):
        problems += _over_ratio(name, limit_type, bound, requests, limits)
    return problems


def _below_min(name: str, limit_type: str, bound: str, requests: Amounts,
               limits: Amounts) -> list[str]:
    head = f"minimum {name} usage per {limit_type} is {bound}"
    least = parse_quantity(bound)
    if name not in requests:
        return [f"{head}.  No request is specified"]
    if requests[name] < least:
        return [f"{head}, but request is {format_amount(name, requests[name])}"]
    if name in limits and limits[name] < least:
        return [f"{head}, but limit is {format_amount(name, limits[name])}"]
    return []


def _above_max(name: str, limit_type: str, bound: str, requests: Amounts,
               limits: Amounts) -> list[str]:
    head = f"maximum {name} usage per {limit_type} is {bound}"
    most = parse_quantity(bound)
    if name not in limits:
        return [f"{head}.  No limit is specified"]
    if limits[name] > most:
        return [f"{head}, but limit is {format_amount(name, limits[name])}"]
    if name in requests and requests[name] > most:
        return [f"{head}, but request is {format_amount(name, requests[name])}"]
    return []


def _over_ratio(name: str, limit_type: str, bound: str, requests: Amounts,
                limits: Amounts) -> list[str]:
    head = f"{name} max limit to request ratio per {limit_type} is {bound}"
    request, limit = requests.get(name, Decimal(0)), limits.get(name, Decimal(0))
    if not request:
        return [f"{head}, but no request is specified or request is 0"]
    if not limit:
        return [f"{head}, but no limit is specified or limit is 0"]
    if limit / request > parse_quantity(bound):
        return [f"{head}, but provided ratio is {float(limit / request):f}"]
    return []


def aggregate(problems: list[str]) -> str:
    """apimachinery's error aggregate: one message alone, several in brackets,
    each said once."""
    unique = list(dict.fromkeys(problems))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
