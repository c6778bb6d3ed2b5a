"""RFC 7386 JSON merge patch: maps merge recursively, ``null`` deletes a key,
anything else (lists included) replaces."""

from __future__ import annotations

import copy
from typing import Any

import orjson


def merge_patch(target: Any, patch: Any) -> Any:
    """The result of applying ``patch`` to ``target``; neither is modified. The
    target is copied once (not once per level the patch reaches into); the result
    holds the patch's own values, so a caller that keeps ``patch`` copies it."""
    if not isinstance(patch, dict):
        return patch
    return _merge_into(copy_json(target) if isinstance(target, dict) else {}, patch)


def _merge_into(result: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply ``patch`` to ``result``, a copy this merge owns."""
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            result[key] = _merge_into(current if isinstance(current, dict) else {}, value)
        else:
            result[key] = value
    return result


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON document (what load_json gives: dicts, lists, strings,
    numbers, booleans, null) through orjson, several times faster than
    copy.deepcopy; anything orjson cannot write is copied by copy.deepcopy."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits, a non-str key
        return copy.deepcopy(value)
