"""ControllerRevisions: the recorded pod templates of a DaemonSet or StatefulSet
(Kubernetes' controller history), which rollout status/history/undo read.

    template ─hash─► "<owner>-<hash>" revision ─┬─ absent  ─► create, revision = max + 1
                                                ├─ present, not newest (an undo) ─► bump
                                                └─ newest ─► as is
    older revisions no live pod uses, beyond revisionHistoryLimit ─► deleted

A new revision carries the owner's annotations as they are then, as Kubernetes'
controllers copy them: kubernetes.io/change-cause is what `rollout history` prints.
``data`` holds the strategic-merge patch that restores the template, as
Kubernetes stores it, so ``kubectl rollout undo`` applies it unchanged.
"""

from __future__ import annotations

import copy
import hashlib
import json

from corral.api.errors import AlreadyExists, NotFound
from corral.client.http import Client
from corral.controllers.owners import owner_reference
from corral.objects import Obj, meta, name_of, namespace_of, spec

REVISION_HASH = "controller-revision-hash"


def template_hash(template: Obj) -> str:
    """A short stable hash of a pod template (the revision's identity)."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def revision_data(template: Obj) -> Obj:
    return {"spec": {"template": {**copy.deepcopy(template), "$patch": "replace"}}}


def revision_template(revision: Obj) -> Obj:
    template = dict(spec(revision.get("data") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def revision_name(owner: Obj, template: Obj) -> str:
    return f"{name_of(owner)}-{template_hash(template)}"


def new_revision(owner: Obj, template: Obj, number: int) -> Obj:
    labels = dict(meta(template).get("labels") or {})
    labels[REVISION_HASH] = template_hash(template)
    metadata = {"name": revision_name(owner, template), "namespace": namespace_of(owner),
                "labels": labels, "ownerReferences": [owner_reference(owner)]}
    annotations = meta(owner).get("annotations")
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": metadata,
            "data": revision_data(template), "revision": number}


def newest(revisions: list[Obj]) -> int:
    return max((int(r.get("revision") or 0) for r in revisions), default=0)


async def sync_update_revision(client: Client, owner: Obj, revisions: list[Obj]) -> Obj:
    """The revision of the owner's current template, created or made newest."""
    template = spec(owner).get("template") or {}
    name = revision_name(owner, template)
    found = next((r for r in revisions if name_of(r) == name), None)
    top = newest(revisions)
    if found is None:
        try:
            return await client.create(new_revision(owner, template, top + 1))
        except AlreadyExists:
            return await client.get("ControllerRevision", name, namespace_of(owner))
    if int(found.get("revision") or 0) < top:  # back to an older template: an undo
        fresh = copy.deepcopy(found)
        fresh["revision"] = top + 1
        return await client.update(fresh)
    return found


async def truncate_history(client: Client, owner: Obj, revisions: list[Obj],
                           live: set[str]) -> None:
    """Delete the oldest revisions beyond revisionHistoryLimit that no pod uses
    (``live``: the revision names in use, the current and update ones included)."""
    limit = int(spec(owner).get("revisionHistoryLimit", 10))
    idle = sorted((r for r in revisions if name_of(r) not in live),
                  key=lambda r: int(r.get("revision") or 0))
    for revision in idle[:max(len(idle) - limit, 0)]:
        try:
            await client.delete("ControllerRevision", name_of(revision), namespace_of(owner))
        except NotFound:
            pass
