"""A Store that hands every call to the Store it wraps.

The API server's store wrappers (fencing, encryption at rest) change a few
calls each; they subclass this and override only those, so a call added to the
Store protocol reaches the backend through every wrapper unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from corral.store.base import DeleteResults, Deletions, Event, Guard, KeyValue, ListResult, Store


class PassThroughStore:
    def __init__(self, inner: Store) -> None:
        self.inner = inner

    # -- reads -----------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        return await self.inner.get(key)

    async def list(self, prefix: str, *, limit: int = 0, start_after: str | None = None,
                   revision: int = 0) -> ListResult:
        return await self.inner.list(prefix, limit=limit, start_after=start_after,
                                     revision=revision)

    def watch(self, prefix: str, after_revision: int = 0) -> AsyncIterator[Event]:
        return self.inner.watch(prefix, after_revision)

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def compacted_revision(self) -> int:
        return await self.inner.compacted_revision()

    @property
    def revision(self) -> int:
        return int(getattr(self.inner, "revision", 0))

    # -- writes ----------------------------------------------------------------------

    async def create(self, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        return await self.inner.create(key, value, guard=guard)

    async def update(self, key: str, value: bytes, expected_revision: int, *,
                     guard: Guard | None = None) -> int:
        return await self.inner.update(key, value, expected_revision, guard=guard)

    async def delete(self, key: str, expected_revision: int = 0, *,
                     guard: Guard | None = None) -> int:
        return await self.inner.delete(key, expected_revision, guard=guard)

    async def delete_many(self, deletions: Deletions, *,
                          guard: Guard | None = None) -> DeleteResults:
        return await self.inner.delete_many(deletions, guard=guard)

    # -- the store itself --------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    async def status(self) -> dict[str, Any]:
        return await self.inner.status()

    async def close(self) -> None:
        await self.inner.close()
