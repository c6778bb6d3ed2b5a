"""An Alloc read as the Pod it stands for when placing and charging it.

An Alloc must be scheduled and charged exactly as a Pod asking for the same
resources would be (the same filters, scores, priority, preemption, quota and
ledger), so rather than teaching each of those a second kind, they read this
pod-shaped view: one container requesting (and limited to) ``spec.resources``,
with the Alloc's placement fields copied as they are.

The view's name is ``ALLOC_PREFIX + name``: Pod names are lowercase DNS
subdomains, so no Pod can ever share a key ("ns/Alloc.x") with an Alloc's view.
"""

from __future__ import annotations

from corral.objects import Obj, meta, spec, status

ALLOC_PREFIX = "Alloc."
_PLACEMENT = ("nodeSelector", "affinity", "tolerations", "priorityClassName", "priority",
              "preemptionPolicy", "schedulerName", "nodeName", "terminationGracePeriodSeconds")


def is_alloc_key(key: str) -> bool:
    """Whether a ``namespace/name`` key names an Alloc's view."""
    return key.partition("/")[2].startswith(ALLOC_PREFIX)


def alloc_name(view_name: str) -> str:
    return view_name[len(ALLOC_PREFIX):]


def pod_view(alloc: Obj) -> Obj:
    """The pod-shaped view of ``alloc`` (see the module docstring)."""
    m, s = meta(alloc), spec(alloc)
    resources = dict(s.get("resources") or {})
    view_meta: Obj = {k: m[k] for k in ("namespace", "uid", "labels", "ownerReferences",
                                   "creationTimestamp", "deletionTimestamp",
                                   "resourceVersion") if k in m}
    view_meta["name"] = ALLOC_PREFIX + str(m.get("name") or "")
    view_spec: Obj = {k: s[k] for k in _PLACEMENT if k in s}
    view_spec["containers"] = [{"name": "executor",
                                "resources": {"requests": resources, "limits": resources}}]
    view_status = {k: v for k, v in status(alloc).items()
                   if k in ("phase", "conditions", "nominatedNodeName")}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": view_meta, "spec": view_spec,
            "status": view_status}
