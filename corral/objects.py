"""The object vocabulary every corral package shares.

Kubernetes objects travel through corral as plain JSON dicts (``Obj``): that is
what the store holds, the API serves and the client decodes. This module is the
one place that says how to read them — accessors that never insert into the
object they read — and how Kubernetes spells time (RFC 3339, UTC, ``Z``).

It imports nothing of corral's, so every layer (store, api, client, components)
may use it without an arrow pointing up.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

Obj = dict[str, Any]
View = Mapping[str, Any]  # what the read accessors accept: an Obj or a read-only view of one

_EMPTY: dict[str, Any] = {}


def _section(obj: View, key: str) -> Obj:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def meta(obj: View) -> Obj:
    """``metadata`` for reading; a missing one reads as empty (and is not added)."""
    return _section(obj, "metadata")


def spec(obj: View) -> Obj:
    return _section(obj, "spec")


def status(obj: View) -> Obj:
    return _section(obj, "status")


def ensure_meta(obj: Obj) -> Obj:
    """``metadata`` for writing: added to ``obj`` when missing."""
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def name_of(obj: View) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: View) -> str:
    return str(meta(obj).get("namespace") or "")


def uid_of(obj: View) -> str:
    return str(meta(obj).get("uid") or "")


def labels_of(obj: View) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def annotations_of(obj: View) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def is_deleting(obj: View) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def key(obj: View) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects), as informers key them."""
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


# --- time, as Kubernetes writes it ------------------------------------------------

def rfc3339(when: datetime) -> str:
    """``2024-01-01T00:00:00Z``: metav1.Time, second precision."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(when: datetime) -> str:
    """``2024-01-01T00:00:00.000000Z``: metav1.MicroTime (Lease, Event times)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# An offset (a grace period) may be any int64; a timestamp cannot pass year 9999,
# so offsets are capped at a century (a deadline that far off never arrives).
_MAX_OFFSET = 100 * 365 * 86400


_now_text: tuple[int, str] = (-1, "")  # the second now_rfc3339() last wrote, and how


def now_rfc3339(offset_seconds: float = 0) -> str:
    """Now (plus ``offset_seconds``, capped at a century), as ``rfc3339`` writes it.
    Now itself is formatted once a second: the node agent stamps every state of
    every framework task with it (several per task, hundreds a second)."""
    global _now_text
    if not offset_seconds:
        second = int(time.time())
        if second != _now_text[0]:
            _now_text = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
        return _now_text[1]
    offset = max(-_MAX_OFFSET, min(offset_seconds, _MAX_OFFSET))
    return rfc3339(datetime.now(UTC) + timedelta(seconds=offset))


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (with or without fractional seconds) as an aware
    datetime; None when absent, not a string, or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
