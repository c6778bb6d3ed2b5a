"""List (paged, filtered, at a consistent revision) and watch.

A continue token is the last key scanned plus the revision the first page was
read at, so every page of one list shows the same snapshot (410 once compacted).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from corral.api.errors import BadRequest, Gone
from corral.api.identity_cache import IdentityCache
from corral.api.registry.objects import load
from corral.api.resources import Resource
from corral.api.selectors import parse_field_selector, parse_label_selector
from corral.objects import Obj, labels_of
from corral.store.base import Event, EventType, KeyValue, Store
from corral.store.errors import Compacted


class Filter:
    """labelSelector + fieldSelector of one request."""

    def __init__(self, res: Resource, label_selector: str = "", field_selector: str = "") -> None:
        try:
            self.labels = parse_label_selector(label_selector) if label_selector else None
        except ValueError as e:
            raise BadRequest(f"unable to parse requirement: {e}") from None
        try:
            self.fields = parse_field_selector(field_selector) if field_selector else None
        except ValueError as e:
            raise BadRequest(f"invalid field selector: {e}") from None
        if self.fields is not None and not self.fields.supported(res.kind):
            raise BadRequest(
                f'"{field_selector}" is not a known field selector: only '
                f'"metadata.name", "metadata.namespace" and kind-specific fields are supported'
            )

    def matches(self, obj: Obj) -> bool:
        if self.labels is not None and not self.labels.matches(labels_of(obj)):
            return False
        return self.fields is None or self.fields.matches(obj)

    @property
    def everything(self) -> bool:
        return self.labels is None and self.fields is None


@dataclass
class Page:
    items: list[Obj]
    revision: int
    continue_token: str = ""
    remaining: int | None = None


def _encode_continue(key: str, revision: int) -> str:
    raw = orjson.dumps({"v": "corral/v1", "rv": revision, "start": key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data: dict[str, Any] = orjson.loads(raw)
        return str(data["start"]), int(data["rv"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise BadRequest(f"continue key is not valid: {token!r}") from None


async def list_objects(
    store: Store, res: Resource, namespace: str | None, flt: Filter, *,
    limit: int = 0, continue_token: str = "",
) -> Page:
    prefix = res.storage_prefix(namespace)
    start_after, revision = _decode_continue(continue_token) if continue_token else (None, 0)
    items: list[Obj] = []
    while True:
        want = max(limit - len(items), 0)
        batch = want if flt.everything or not want else max(want, 500)
        try:
            page = await store.list(prefix, limit=batch, start_after=start_after,
                                    revision=revision)
        except Compacted:
            raise Gone("The provided continue parameter is too old to display a consistent "
                       "list result. You can start a new list without the continue "
                       "parameter.") from None
        revision = page.revision
        for kv in page.items:
            obj = load(kv)
            start_after = kv.key
            if flt.matches(obj):
                items.append(obj)
                if limit and len(items) >= limit:
                    last_key = kv.key
                    more = page.more or kv is not page.items[-1]
                    token = _encode_continue(last_key, revision) if more else ""
                    return Page(items, revision, token)
        if not page.more:
            return Page(items, revision)


_DECODED: IdentityCache[Obj] = IdentityCache()


def load_shared(kv: KeyValue) -> Obj:
    """Decode a store value once for every watcher that receives the same event."""
    return _DECODED.get(kv, None, lambda: load(kv))


def _event_type(ev: Event, was: bool, now: bool) -> str | None:
    if ev.type is EventType.DELETE:
        return "DELETED" if was else None
    if now and not was:
        return "ADDED"
    if was and not now:
        return "DELETED"  # no longer selected: watchers see it leave
    return "MODIFIED" if now else None


async def watch_objects(
    store: Store, res: Resource, namespace: str | None, flt: Filter, resource_version: str,
) -> AsyncIterator[tuple[str, Obj]]:
    """(type, object) pairs. resourceVersion "" or "0" starts with ADDED for what
    exists; N streams every change after N (410 Gone if compacted). Objects of
    live events are shared between watchers: read them, never change them."""
    prefix = res.storage_prefix(namespace)
    if resource_version in ("", "0"):
        page = await list_objects(store, res, namespace, flt)
        for obj in page.items:
            yield "ADDED", obj
        after = page.revision
    else:
        try:
            after = int(resource_version)
        except ValueError:
            raise BadRequest(f"invalid resourceVersion: {resource_version!r}") from None
    try:
        async for ev in store.watch(prefix, after):
            now_obj = load_shared(ev.kv)
            if ev.type is EventType.DELETE:
                was = flt.matches(now_obj)
                now = False
            else:
                was = ev.prev is not None and (
                    flt.everything or flt.matches(load_shared(ev.prev)))
                now = flt.matches(now_obj)
            kind = _event_type(ev, was, now)
            if kind is not None:
                yield kind, now_obj
    except Compacted as e:
        raise Gone(f"too old resource version: {resource_version} ({e.compacted + 1})") from None
