"""Revisions and rollback.

Every ReplicaSet of a Deployment carries ``deployment.kubernetes.io/revision``.
A rollback (`kubectl rollout undo`, `corral rollout undo`) is done by the
client: it copies an old ReplicaSet's template (without pod-template-hash) into
the Deployment. The controller then finds that old ReplicaSet by template,
reuses it, and gives it the next revision; the revisions it had are kept in
``deployment.kubernetes.io/revision-history``.

    history(rses)                      [(revision, rs)] ascending
    rollback_target(rses, to)          the RS an undo goes back to
    undo_patch(deployment, rs)         the json-patch kubectl sends
    with_deployment_annotations(d, rs) the new RS's annotations: the Deployment's copied
    templates_equal(a, b)              ignoring pod-template-hash and empty values
"""

from __future__ import annotations

import copy
from typing import Any

from corral.api.errors import BadRequest
from corral.objects import Obj, meta, spec

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
CHANGE_CAUSE = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# A Deployment's annotations not copied to its new ReplicaSet: kubectl's own
# record of the Deployment, and the ones the controller keeps per ReplicaSet.
_NOT_COPIED = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION,
                         REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                         "deprecated.deployment.rollback.to"})


def revision_of(obj: Obj) -> int:
    annotations = meta(obj).get("annotations") or {}
    try:
        return int(annotations.get(REVISION, "0"))
    except ValueError:
        return 0


def _pruned(value: Any) -> Any:
    """Drop None, {} and [] recursively: templates compare equal the way kubectl's do."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def without_hash(template: Obj) -> Obj:
    template = copy.deepcopy(template or {})
    labels = meta(template).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return template


def normalized_template(template: Obj) -> Obj:
    pruned = _pruned(without_hash(template))
    return pruned if isinstance(pruned, dict) else {}


def templates_equal(a: Obj, b: Obj) -> bool:
    return normalized_template(a) == normalized_template(b)


def max_revision(rses: list[Obj]) -> int:
    return max((revision_of(rs) for rs in rses), default=0)


def reused_annotations(rs: Obj, new_revision: int) -> dict[str, str]:
    """Annotations of an RS that becomes the newest revision (after an undo):
    the revision it had joins revision-history."""
    annotations = dict(meta(rs).get("annotations") or {})
    old = revision_of(rs)
    if old and old < new_revision:
        history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
        annotations[REVISION_HISTORY] = ",".join([*history, str(old)])
    annotations[REVISION] = str(new_revision)
    return annotations


def with_deployment_annotations(deployment: Obj, rs: Obj) -> dict[str, str]:
    """The annotations of the Deployment's new ReplicaSet: its own, with the
    Deployment's copied over them (kubernetes.io/change-cause among them, which
    `rollout history` shows per revision), as Kubernetes' controller does on
    every sync of the new ReplicaSet."""
    annotations = dict(meta(rs).get("annotations") or {})
    for key, value in (meta(deployment).get("annotations") or {}).items():
        if key not in _NOT_COPIED:
            annotations[key] = value
    return annotations


def history(rses: list[Obj]) -> list[tuple[int, Obj]]:
    return sorted(((revision_of(rs), rs) for rs in rses if revision_of(rs) > 0),
                  key=lambda pair: pair[0])


def change_cause(rs: Obj) -> str:
    annotations = meta(rs).get("annotations") or {}
    return str(annotations.get(CHANGE_CAUSE) or "<none>")


def rollback_target(rses: list[Obj], to_revision: int) -> Obj:
    """The RS to roll back to: ``to_revision``, or (0) the one before the newest."""
    revisions = history(rses)
    if to_revision:
        for revision, rs in revisions:
            if revision == to_revision:
                return rs
        raise BadRequest(f"unable to find specified revision {to_revision} in history")
    if len(revisions) < 2:
        raise BadRequest("no rollout history found for deployment")
    return revisions[-2][1]


def undo_patch(deployment: Obj, rs: Obj) -> list[Obj]:
    """The json-patch kubectl sends: the old template (minus pod-template-hash)
    in place of the Deployment's, and its change-cause annotation if any."""
    template = without_hash(spec(rs).get("template") or {})
    ops: list[Obj] = [{"op": "replace", "path": "/spec/template", "value": template}]
    cause = (meta(rs).get("annotations") or {}).get(CHANGE_CAUSE)
    if cause:
        if meta(deployment).get("annotations"):
            path = "/metadata/annotations/" + CHANGE_CAUSE.replace("/", "~1")
            ops.append({"op": "add", "path": path, "value": cause})
        else:
            ops.append({"op": "add", "path": "/metadata/annotations",
                        "value": {CHANGE_CAUSE: cause}})
    return ops
