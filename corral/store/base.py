"""The Store protocol: etcd's model of a revisioned key-value store with watch.

Every write bumps one global revision and returns it. A key's value carries the
revision that created it and the revision that last modified it; the API layer
uses ``mod_revision`` as the object's ``resourceVersion``.

Watch semantics follow Kubernetes: ``watch(prefix, after_revision=N)`` yields
every change with revision > N, in revision order, then live changes. A
revision below the compacted revision raises ``Compacted`` (HTTP 410); at the
compacted revision itself history is still complete, as in etcd.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from corral.store.errors import StoreError


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    PUT = "PUT"  # created or updated; ``prev`` is None for a create
    DELETE = "DELETE"  # removed; ``kv`` holds the last value, mod_revision = the delete's revision


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    kv: KeyValue
    prev: KeyValue | None  # the value before this change (None on create)

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type is EventType.PUT and self.prev is None


@dataclass(frozen=True, slots=True)
class Guard:
    """A write's extra precondition: ``key`` is still at ``mod_revision``. The
    API fences a deposed leader with it (the leader Lease's revision)."""
    key: str
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Deletion:
    """One delete of a ``delete_many``: ``key``, CAS on ``expected_revision`` when > 0."""
    key: str
    expected_revision: int = 0


# Names of their own: inside a Store class, ``list`` is the method.
Deletions = list[Deletion]
DeleteResults = list[int | StoreError]  # per deletion: its revision, or its error


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the store revision the list was read at
    more: bool  # True when ``limit`` cut the list short; continue after items[-1].key


class Store(Protocol):
    """A revisioned KV store. Implementations: sqlite.SqliteStore, etcd.EtcdStore."""

    async def get(self, key: str) -> KeyValue | None: ...

    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        start_after: str | None = None,
        revision: int = 0,
    ) -> ListResult:
        """Keys under ``prefix`` in key order. ``limit`` 0 means all; ``start_after``
        continues a paged list; ``revision`` > 0 reads as of that revision (raises
        Compacted if it has been compacted away)."""
        ...

    async def create(self, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        """Create ``key``; raises KeyExists if present. Returns the new revision.
        Every write raises GuardFailed, writing nothing, when ``guard`` no longer
        holds (checked atomically with the write)."""
        ...

    async def update(self, key: str, value: bytes, expected_revision: int, *,
                     guard: Guard | None = None) -> int:
        """Compare-and-swap: raises KeyNotFound if absent, RevisionMismatch if the
        key's mod_revision is not ``expected_revision``. Returns the new revision."""
        ...

    async def delete(self, key: str, expected_revision: int = 0, *,
                     guard: Guard | None = None) -> int:
        """Delete ``key`` (CAS when expected_revision > 0). Raises KeyNotFound /
        RevisionMismatch. Returns the delete's revision."""
        ...

    async def delete_many(self, deletions: Deletions, *,
                          guard: Guard | None = None) -> DeleteResults:
        """Delete many keys in as few transactions as the backend allows (a
        garbage collector's or a deletecollection's burst). Each deletion
        succeeds or fails on its own, as its own ``delete`` would: the result
        in its slot is the delete's revision or the error (KeyNotFound,
        RevisionMismatch, GuardFailed, StoreUnavailable); nothing is raised for
        one key. Every deleted key gets its own DELETE event; keys deleted in
        one transaction may share a revision (etcd gives a txn one)."""
        ...

    def watch(self, prefix: str, after_revision: int = 0) -> AsyncIterator[Event]:
        """Changes under ``prefix`` with revision > after_revision (0 = from now).
        Raises Compacted when after_revision is below the compacted revision, and
        WatcherTooSlow when the watcher fell so far behind that it was dropped (the
        caller re-watches from the last revision it saw, or re-lists)."""
        ...

    async def current_revision(self) -> int: ...

    async def compacted_revision(self) -> int: ...

    async def compact(self, revision: int) -> None:
        """Forget history at and below ``revision`` (current values are kept)."""
        ...

    async def status(self) -> dict[str, Any]:
        """What the store is and how it is: ``backend``, ``revision``, and for etcd
        each member's endpoint, health and whether it leads (for `corral status`)."""
        ...

    async def close(self) -> None: ...
