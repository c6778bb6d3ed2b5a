"""Stored objects: bytes in the store ↔ dicts in the API, and metadata helpers.

The store value never carries ``resourceVersion``; it is the key's mod_revision,
set on every read (as Kubernetes' etcd3 storage does), so it can never be stale.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from datetime import UTC, datetime, timedelta
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


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# A grace period may be any int64; a timestamp cannot pass year 9999, so offsets
# are capped at a century (a deadline that far off never arrives either way).
_MAX_OFFSET = 100 * 365 * 86400


def now_rfc3339(offset_seconds: float = 0) -> str:
    offset = max(-_MAX_OFFSET, min(offset_seconds, _MAX_OFFSET))
    return rfc3339(datetime.now(UTC) + timedelta(seconds=offset))


def new_uid() -> str:
    return str(uuid.uuid4())


def generated_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m
