"""Priority admission, as kube-apiserver's ``Priority`` plugin does it.

    Pod CREATE:  spec.priorityClassName ──► PriorityClass ──► spec.priority,
                 (none named: the globalDefault class, else priority 0)
                                                            spec.preemptionPolicy
                 unknown class            ──► 403 "no PriorityClass with name x was found"
                 a spec.priority / preemptionPolicy that disagrees with the class ──► 403
    Pod UPDATE:  the priority fields cannot change; a PUT that omits them keeps them
    PriorityClass CREATE/UPDATE with globalDefault: only one default may exist
"""

from __future__ import annotations

from corral.api.errors import Forbidden
from corral.api.registry import Filter, Registry, list_objects
from corral.api.registry.core import describe
from corral.api.registry.objects import shown_name
from corral.api.resources import BY_KIND, Resource
from corral.objects import Obj

PRIORITY_CLASS = BY_KIND["PriorityClass"]
DEFAULT_PREEMPTION_POLICY = "PreemptLowerPriority"
NO_DEFAULT_PRIORITY = 0  # Kubernetes' priority when no class is named and none is default


def forbidden(res: Resource, name: str, message: str) -> Forbidden:
    """'pods "web" is forbidden: <message>', as admission errors read in Kubernetes."""
    return Forbidden(f"{describe(res, name)} is forbidden: {message}", kind=res.plural,
                     name=name, group=res.group)


class PriorityAdmission:
    """Resolves pod priorities from PriorityClasses read from the registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> None:
        if res.kind in ("Pod", "Alloc"):  # an Alloc is placed as a pod would be
            if op == "CREATE":
                await self._resolve(res, obj)
            elif old is not None:
                _keep_priority(obj, old)
        elif res.kind == "PriorityClass" and obj.get("globalDefault"):
            await self._only_one_default(res, obj)

    async def _resolve(self, res: Resource, pod: Obj) -> None:
        spec = pod.setdefault("spec", {})
        name = shown_name(pod)
        class_name = spec.get("priorityClassName") or ""
        if class_name:
            pc = await self.registry.find(PRIORITY_CLASS, None, class_name)
            if pc is None:
                raise forbidden(res, name, f"no PriorityClass with name {class_name} was found")
        else:
            pc = await self._global_default()
        priority = int(pc.get("value") or 0) if pc else NO_DEFAULT_PRIORITY
        policy = (pc or {}).get("preemptionPolicy") or DEFAULT_PREEMPTION_POLICY
        _check_agrees(res, name, spec, priority, policy)
        if pc is not None:
            spec["priorityClassName"] = pc["metadata"]["name"]
        spec["priority"] = priority
        spec["preemptionPolicy"] = policy

    async def _global_default(self) -> Obj | None:
        """The globalDefault class; with several (created concurrently), the lowest
        value wins, as in Kubernetes."""
        defaults = [pc for pc in await self._classes() if pc.get("globalDefault")]
        return min(defaults, key=lambda pc: int(pc.get("value") or 0), default=None)

    async def _classes(self) -> list[Obj]:
        page = await list_objects(self.registry.store, PRIORITY_CLASS, None,
                                  Filter(PRIORITY_CLASS))
        return page.items

    async def _only_one_default(self, res: Resource, pc: Obj) -> None:
        name = pc["metadata"]["name"]
        for other in await self._classes():
            other_name = other["metadata"]["name"]
            if other.get("globalDefault") and other_name != name:
                raise forbidden(res, name, f"PriorityClass {other_name} is already marked as "
                                "default. Only one default can exist")


def _check_agrees(res: Resource, name: str, spec: Obj, priority: int, policy: str) -> None:
    given = spec.get("priority")
    if given is not None and int(given) != priority:
        raise forbidden(res, name, f"the integer value of priority ({given}) must not be "
                        f"provided in pod spec; priority admission controller computed "
                        f"{priority} from the given PriorityClass name")
    given_policy = spec.get("preemptionPolicy")
    if given_policy is not None and given_policy != policy:
        raise forbidden(res, name, f"the string value of PreemptionPolicy ({given_policy}) "
                        f"must not be provided in pod spec; priority admission controller "
                        f"computed {policy} from the given PriorityClass name")


def _keep_priority(pod: Obj, old: Obj) -> None:
    # A client that PUTs a pod it built itself may omit the resolved fields; the
    # scheduler and preemption must keep seeing the admitted priority.
    spec, old_spec = pod.setdefault("spec", {}), old.get("spec") or {}
    for key in ("priority", "priorityClassName", "preemptionPolicy"):
        if spec.get(key) is None and old_spec.get(key) is not None:
            spec[key] = old_spec[key]
