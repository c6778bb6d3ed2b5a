"""PATCH bodies by content type → the patched object, and server-side apply.

    application/json-patch+json            RFC 6902 operations   (jsonpatch.py)
    application/merge-patch+json           RFC 7386 merge        (merge.py)
    application/strategic-merge-patch+json Kubernetes SMP        (strategic.py)
    application/apply-patch+yaml           server-side apply     (apply_server_side)

Server-side apply without field managers: the applied object is strategically
merged onto the live one, so applied fields win and keyed lists merge item by
item. Fields the applier stopped sending are not removed (that needs
managedFields, which corral does not keep).
"""

from __future__ import annotations

from typing import Any

from corral.api.body import load_json, load_yaml
from corral.api.errors import BadRequest, UnsupportedMediaType
from corral.api.patch.jsonpatch import apply_json_patch
from corral.api.patch.merge import copy_json, merge_patch
from corral.api.patch.strategic import strategic_merge

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

SUPPORTED_PATCH_TYPES: tuple[str, ...] = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH,
                                          STRATEGIC_MERGE_PATCH)


def apply_patch(content_type: str, original: dict[str, Any], body: bytes,
                kind: str, *, custom: bool = False) -> dict[str, Any]:
    """The object ``original`` becomes under the patch ``body``; ``original`` is
    not modified. Raises BadRequest, Invalid (422, a JSON patch that cannot
    apply) or UnsupportedMediaType. A ``custom`` resource has no merge keys,
    so it takes no strategic merge patch (415, as kube-apiserver answers)."""
    media = content_type.split(";")[0].strip().lower()
    accepted = [t for t in SUPPORTED_PATCH_TYPES if not (custom and t == STRATEGIC_MERGE_PATCH)]
    if media not in accepted:
        raise UnsupportedMediaType(
            f'the body of the request was in an unknown format ("{media}") - accepted '
            f"media types include: {', '.join(accepted)}"
        )
    if media == APPLY_PATCH:
        return apply_server_side(original, _as_object(_decode_yaml(body), "an applied object"),
                                 kind)
    document = _decode_json(body)
    if media == JSON_PATCH:
        return _as_object(apply_json_patch(original, document), "the patched document")
    patch = _as_object(document, "a merge patch")
    if media == MERGE_PATCH:
        return _as_object(merge_patch(original, patch), "the patched document")
    return strategic_merge(original, patch, kind)


def apply_server_side(original: dict[str, Any] | None, applied: dict[str, Any],
                      kind: str) -> dict[str, Any]:
    """The object after applying ``applied``: a copy of it when nothing exists yet,
    else ``applied`` merged onto ``original`` by the kind's merge keys."""
    if original is None:
        copied: dict[str, Any] = copy_json(applied)
        return copied
    return strategic_merge(original, applied, kind)


def _decode_json(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest("the patch body is empty")
    return load_json(body, "the patch body")


def _decode_yaml(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest("the apply body is empty")
    if body.lstrip().startswith(b"{"):
        return _decode_json(body)  # kubectl sends JSON; YAML would turn dates into datetimes
    return load_yaml(body)


def _as_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object, got {type(value).__name__}")
    return value
