"""pods/eviction: a delete that respects PodDisruptionBudgets, as kube-apiserver's
eviction REST does.

    pod deleting, or Pending/Succeeded/Failed ─► delete (nothing left to protect)
    PDBs selecting the pod:  none ─► delete
                             more than one ─► 429 (the eviction API cannot weigh two)
                             one, pod not Ready and the budget already met (or the
                               policy is AlwaysAllow) ─► delete, budget untouched
                             one ─► status not yet observed, or no disruption
                               allowed ─► 429 TooManyRequests naming the budget
                                     ─► else disruptionsAllowed - 1 and the pod in
                                        disruptedPods, written by compare-and-swap,
                                        then delete

The disruption controller recomputes the budget from the pods as they change and
drops a disruptedPods entry once the pod is gone or two minutes have passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corral.api.errors import Cause, Conflict, Forbidden, TooManyRequests
from corral.api.registry.core import Registry, retry_attempts
from corral.api.registry.delete import DeleteOptions, delete
from corral.api.registry.read import Filter, list_objects
from corral.api.resources import BY_KIND
from corral.api.selectors import from_label_selector_object
from corral.objects import Obj, ensure_meta, now_rfc3339, spec, status

POD = BY_KIND["Pod"]
PDB = BY_KIND["PodDisruptionBudget"]
MAX_DISRUPTED_PODS = 2000  # kube-apiserver's bound on status.disruptedPods
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


@dataclass(frozen=True)
class Verdict:
    """What the budget says about evicting one pod: ``charge`` is the budget to
    decrement (None: delete without touching any budget)."""

    charge: Obj | None


def pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (status(pod)).get("conditions") or [])


def selects(pdb: Obj, pod: Obj) -> bool:
    try:
        selector = from_label_selector_object(spec(pdb).get("selector"))
    except ValueError:
        return False
    return selector.matches(ensure_meta(pod).get("labels") or {})


def judge(pod: Obj, pdbs: list[Obj]) -> Verdict:
    """The pure rule: which budget (if any) this eviction must be charged to, or
    the error that refuses it."""
    phase = (pod.get("status") or {}).get("phase")
    if ensure_meta(pod).get("deletionTimestamp") or phase in ("Pending", "Succeeded", "Failed"):
        return Verdict(None)
    matching = [p for p in pdbs if selects(p, pod)]
    if not matching:
        return Verdict(None)
    if len(matching) > 1:
        raise TooManyRequests("This pod has more than one PodDisruptionBudget, which the "
                              "eviction subresource does not support.", kind="Pod",
                              name=ensure_meta(pod).get("name", ""))
    pdb = matching[0]
    status = pdb.get("status") or {}
    if not pod_ready(pod):
        policy = spec(pdb).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        desired = int(status.get("desiredHealthy", 0))
        if policy == "AlwaysAllow" or (
                int(status.get("currentHealthy", 0)) >= desired > 0):
            return Verdict(None)
    _check_budget(pdb, pod)
    return Verdict(pdb)


def _check_budget(pdb: Obj, pod: Obj) -> None:
    m, status = ensure_meta(pdb), pdb.get("status") or {}
    name = m.get("name", "")
    if int(status.get("observedGeneration") or 0) < int(m.get("generation") or 0):
        raise _violation(pod, f"The disruption budget {name} is still being processed by "
                         "the server.")
    allowed = int(status.get("disruptionsAllowed", 0))
    if allowed < 0:
        raise Forbidden("pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise Forbidden("DisruptedPods map too big - too many evictions not confirmed by "
                        "PDB controller")
    if allowed == 0:
        raise _violation(pod, f"The disruption budget {name} needs "
                         f"{int(status.get('desiredHealthy', 0))} healthy pods and has "
                         f"{int(status.get('currentHealthy', 0))} currently")


def _violation(pod: Obj, detail: str) -> TooManyRequests:
    return TooManyRequests(VIOLATION, kind="Pod", name=ensure_meta(pod).get("name", ""),
                           causes=[Cause("", detail, "DisruptionBudget")])


def charged(pdb: Obj, pod_name: str) -> Obj:
    """The budget after one disruption: a copy, one fewer allowed, the pod noted."""
    status = dict(pdb.get("status") or {})
    status["disruptionsAllowed"] = int(status.get("disruptionsAllowed", 0)) - 1
    status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: now_rfc3339()}
    if status["disruptionsAllowed"] == 0:
        status["conditions"] = [
            c for c in status.get("conditions") or [] if c.get("type") != "DisruptionAllowed"
        ] + [{"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
              "message": "", "observedGeneration": status.get("observedGeneration"),
              "lastTransitionTime": now_rfc3339()}]
    return {**pdb, "status": status}


async def evict(reg: Registry, namespace: str, name: str, eviction: dict[str, Any]) -> None:
    options = eviction.get("deleteOptions") if isinstance(eviction, dict) else None
    opts = DeleteOptions.from_body(options, {})
    for _ in retry_attempts():
        pod = await reg.get(POD, namespace, name)
        verdict = judge(pod, await _budgets(reg, namespace))
        if verdict.charge is not None and not opts.dry_run:
            try:
                await reg.write_exact(PDB, charged(verdict.charge, name),
                                      ensure_meta(verdict.charge)["resourceVersion"])
            except Conflict:
                continue  # the controller or another eviction moved the budget: re-judge
        await delete(reg, POD, namespace, name, opts)
        return
    raise TooManyRequests(VIOLATION, kind="Pod", name=name)


async def _budgets(reg: Registry, namespace: str) -> list[Obj]:
    return (await list_objects(reg.store, PDB, namespace, Filter(PDB))).items

