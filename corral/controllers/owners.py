"""Controller references, as Kubernetes' ControllerRefManager: which objects a
controller owns, which orphans it adopts, which it releases.

    classify(candidates, owner, selector)
      controlled by owner, selector matches     → owned
      controlled by owner, selector no longer   → release (strip our reference)
      no controller, selector matches           → adopt (unless owner is deleting)
      controlled by someone else                → not ours

Adoption and release are merge patches carrying the object's resourceVersion
and uid, so they fail (Conflict) rather than clobber a concurrent change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.api.errors import Conflict, NotFound
from corral.api.selectors import LabelSelector, from_label_selector_object
from corral.client.http import Client
from corral.objects import Obj, is_deleting, meta, spec, uid_of


def controller_ref(obj: Obj) -> Obj | None:
    return next((r for r in meta(obj).get("ownerReferences") or [] if r.get("controller")),
                None)


def owner_reference(owner: Obj) -> Obj:
    """The controller reference an owner puts on what it creates."""
    m = meta(owner)
    return {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"),
            "name": m.get("name"), "uid": m.get("uid"), "controller": True,
            "blockOwnerDeletion": True}


def selector_of(owner: Obj) -> LabelSelector | None:
    """The owner's spec.selector; None for a missing or empty one (which selects
    nothing for a controller, rather than everything)."""
    raw = spec(owner).get("selector")
    if owner.get("kind") == "ReplicationController" and isinstance(raw, dict):
        raw = {"matchLabels": raw}  # a ReplicationController selects by a label map
    if not raw or not (raw.get("matchLabels") or raw.get("matchExpressions")):
        return None
    return from_label_selector_object(raw)


@dataclass
class Claim:
    owned: list[Obj] = field(default_factory=list)
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)


def classify(candidates: list[Obj], owner: Obj, selector: LabelSelector | None) -> Claim:
    claim = Claim()
    owner_uid = uid_of(owner)
    for obj in candidates:
        matches = selector is not None and selector.matches(meta(obj).get("labels") or {})
        ref = controller_ref(obj)
        if ref is not None and ref.get("uid") == owner_uid:
            if matches:
                claim.owned.append(obj)
            elif not is_deleting(obj):
                claim.release.append(obj)
        elif ref is None and matches and not is_deleting(obj) and not is_deleting(owner):
            claim.adopt.append(obj)
    return claim


async def adopt(client: Client, obj: Obj, owner: Obj) -> Obj | None:
    """Make ``owner`` the controller of ``obj``; None if it vanished, or stopped
    being an orphan we select. A write that lost a race (a status update, say)
    is retried once on a fresh read, so an adoption is not lost to noise."""
    for attempt in range(2):
        refs = [*(meta(obj).get("ownerReferences") or []), owner_reference(owner)]
        adopted = await _patch_refs(client, obj, refs)
        if adopted is not None or attempt:
            return adopted
        try:
            obj = await client.get(str(obj.get("kind") or "Pod"), str(meta(obj).get("name")),
                                   meta(obj).get("namespace"))
        except NotFound:
            return None
        selector = selector_of(owner)
        if controller_ref(obj) is not None or selector is None or not selector.matches(
                meta(obj).get("labels") or {}):
            return None
    return None


async def release(client: Client, obj: Obj, owner_uid: str) -> Obj | None:
    refs = [r for r in meta(obj).get("ownerReferences") or [] if r.get("uid") != owner_uid]
    return await _patch_refs(client, obj, refs)


async def _patch_refs(client: Client, obj: Obj, refs: list[Obj]) -> Obj | None:
    m = meta(obj)
    patch = {"metadata": {"ownerReferences": refs or None, "uid": m.get("uid"),
                          "resourceVersion": m.get("resourceVersion")}}
    try:
        return await client.patch(str(obj.get("kind")), str(m.get("name")), patch,
                                  m.get("namespace"))
    except (Conflict, NotFound):
        return None


async def claim(client: Client, candidates: list[Obj], owner: Obj) -> list[Obj]:
    """Owned objects after adopting matching orphans and releasing the owned
    ones that no longer match."""
    result = classify(candidates, owner, selector_of(owner))
    owned = list(result.owned)
    if result.adopt and await _owner_still_current(client, owner):
        for obj in result.adopt:
            adopted = await adopt(client, obj, owner)
            if adopted is not None:
                owned.append(adopted)
    for obj in result.release:
        await release(client, obj, uid_of(owner))
    return owned


async def _owner_still_current(client: Client, owner: Obj) -> bool:
    """Re-read the owner before adopting: a cached owner may already be deleted
    (or replaced by a namesake), and adopting into it would orphan the object."""
    m = meta(owner)
    try:
        fresh = await client.get(str(owner.get("kind")), str(m.get("name")), m.get("namespace"))
    except NotFound:
        return False
    return uid_of(fresh) == uid_of(owner) and not is_deleting(fresh)
