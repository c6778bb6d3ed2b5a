"""Stored objects: bytes in the store ↔ dicts in the API, new uids and names.

The store value never carries ``resourceVersion``; it is the key's mod_revision,
set on every read (as Kubernetes' etcd3 storage does), so it can never be stale.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from contextvars import ContextVar
from typing import Any

import orjson

from corral.store.base import KeyValue

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet


def load(kv: KeyValue) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def dump(obj: dict[str, Any]) -> bytes:
    meta = obj.get("metadata") or {}
    if "resourceVersion" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return orjson.dumps(obj)


def deep_copy(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)


def new_uid() -> str:
    return str(uuid.uuid4())


# The name this request's create made from a generateName. Kubernetes runs
# admission before it makes the name, so its refusals say 'pods "web-" is
# forbidden': a controller's retries then repeat one message (one aggregated
# Event) instead of a new one per attempt.
_GENERATED: ContextVar[str] = ContextVar("generated_name", default="")


def generated_name(prefix: str) -> str:
    name = prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
    _GENERATED.set(name)
    return name


def shown_name(obj: dict[str, Any]) -> str:
    """The name errors about an object being created give: its generateName when
    this request generated the name, else the name."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    if name and name == _GENERATED.get():
        return str(meta.get("generateName") or name)
    return name
