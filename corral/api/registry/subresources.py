"""pods/binding (and allocs/binding) and the scale subresource of Deployment/ReplicaSet
and of custom resources that declare one (at their CRD's JSONPaths)."""

from __future__ import annotations

from typing import Any

from corral.api.crd.jsonpath import assign, lookup
from corral.api.errors import BadRequest, Cause, Conflict, invalid
from corral.api.patch import apply_patch
from corral.api.registry.core import MODIFIED, Registry, Result, conflict, retry_attempts
from corral.api.resources import BY_KIND, Resource
from corral.api.selectors import from_label_selector_object
from corral.objects import Obj, ensure_meta, meta, now_rfc3339, spec, status

POD = BY_KIND["Pod"]


async def bind(reg: Registry, namespace: str, name: str, binding: dict[str, Any],
               res: Resource = POD) -> Obj:
    """Assign a pod (or an Alloc) to a node, once: a second binding of a bound pod
    is a Conflict, which is what keeps two racing schedulers from both placing it."""
    target = binding.get("target") if isinstance(binding, dict) else None
    node = target.get("name") if isinstance(target, dict) else None
    if not node or not isinstance(node, str):
        raise invalid("Binding", name, [Cause("target.name", "Required value",
                                              "FieldValueRequired")])
    if (target or {}).get("kind", "Node") != "Node":
        raise invalid("Binding", name, [Cause("target.kind", 'Unsupported value: must be "Node"',
                                              "FieldValueNotSupported")])
    want_uid = meta(binding).get("uid")
    for _ in retry_attempts():
        pod = await reg.get(res, namespace, name)
        current = spec(pod).get("nodeName")
        if current:
            raise conflict(res, name,
                           f"{res.singular} {name} is already assigned to node \"{current}\"")
        if ensure_meta(pod).get("deletionTimestamp"):
            raise conflict(res, name, f"{res.singular} {name} is being deleted, cannot be "
                           "assigned to a host")
        if want_uid and want_uid != ensure_meta(pod).get("uid"):
            raise conflict(res, name,
                           f"the UID in the binding does not match the {res.singular}'s")
        pod.setdefault("spec", {})["nodeName"] = node
        status = pod.setdefault("status", {})
        scheduled = "PodScheduled" if res is POD else "Scheduled"  # an Alloc's condition
        conditions = [c for c in status.get("conditions") or []
                      if c.get("type") != scheduled]
        conditions.append({"type": scheduled, "status": "True",
                           "lastTransitionTime": now_rfc3339(), "lastProbeTime": None})
        status["conditions"] = conditions
        status.pop("nominatedNodeName", None)
        try:
            return await reg.write_exact(res, pod, ensure_meta(pod)["resourceVersion"])
        except Conflict:
            pass  # a status write (e.g. Unschedulable) landed between: re-check, retry
    raise conflict(res, name, MODIFIED)


def scale_of(res: Resource, obj: Obj) -> Obj:
    m = ensure_meta(obj)
    if res.custom is not None and res.custom.scale is not None:
        # a custom resource's replicas and selector are where its CRD says
        paths = res.custom.scale
        wanted, current = lookup(obj, paths.spec_replicas_path), lookup(
            obj, paths.status_replicas_path)
        label = lookup(obj, paths.label_selector_path) if paths.label_selector_path else ""
    else:
        selector = spec(obj).get("selector")
        if res.kind == "ReplicationController" and selector:
            selector = {"matchLabels": selector}  # a plain label map
        wanted, current = spec(obj).get("replicas"), status(obj).get("replicas")
        label = from_label_selector_object(selector).to_string() if selector else ""
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                       "creationTimestamp") if k in m},
        "spec": {"replicas": int(wanted or 0)},
        "status": {"replicas": int(current or 0), "selector": str(label or "")},
    }


async def update_scale(reg: Registry, res: Resource, namespace: str, name: str,
                       scale: Obj, *, dry_run: bool = False) -> Result:
    replicas = spec(scale).get("replicas") if isinstance(scale, dict) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise invalid("Scale", name, [Cause("spec.replicas", f"Invalid value: {replicas!r}: "
                                            "must be an integer")], "autoscaling")
    if replicas < 0:
        raise invalid("Scale", name, [Cause("spec.replicas", f"Invalid value: {replicas}: "
                                            "must be greater than or equal to 0")],
                      "autoscaling")
    want_rv = meta(scale).get("resourceVersion")
    for _ in retry_attempts():
        obj = await reg.get(res, namespace, name)
        if want_rv and want_rv != ensure_meta(obj)["resourceVersion"]:
            raise conflict(res, name, MODIFIED)
        if res.custom is not None and res.custom.scale is not None:
            assign(obj, res.custom.scale.spec_replicas_path, replicas)
        else:
            obj.setdefault("spec", {})["replicas"] = replicas
        try:
            return await reg.update(res, namespace, name, obj, dry_run=dry_run)
        except Conflict:
            if want_rv:
                raise  # the caller asked for that version: its conflict to resolve
            # a controller wrote the object meanwhile (e.g. its status): re-read, retry
    raise conflict(res, name, MODIFIED)


async def patch_scale(reg: Registry, res: Resource, namespace: str, name: str,
                      content_type: str, body: bytes, *, dry_run: bool = False) -> Result:
    if content_type.startswith("application/apply-patch"):
        raise BadRequest("server-side apply is not supported on the scale subresource")
    current = scale_of(res, await reg.get(res, namespace, name))
    # Only a resourceVersion the patch itself carries is a precondition.
    current["metadata"].pop("resourceVersion", None)
    patched = apply_patch(content_type, current, body, "Scale")
    return await update_scale(reg, res, namespace, name, patched, dry_run=dry_run)
