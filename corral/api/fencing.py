"""Fencing: a deposed leader's writes are refused.

A leader-elected component (scheduler, controllers) sends every write with

    Corral-Leader-Fence: <namespace>/<lease name> <holder identity> <term>

(the term is the Lease's leaseTransitions when it took the Lease). The API
server then writes only while that Lease still names that holder in that term,
and checks it atomically with the write:

    read the Lease (kv at revision R) ── holder and term match? ── no ─▶ 403
         │ yes
         ▼
    the write, guarded by "the Lease key is still at R" (one store transaction)
         └─ guard failed (the Lease changed: usually its own renewal) ─▶ read again

So a leader stopped (SIGSTOP, a long GC, a partition) past its Lease, whose
Lease a standby has since taken, writes nothing when it wakes up: not even the
writes it had in flight. A Lease that expired but that nobody took is still
its holder's: no one else leads, so nothing is split.

The Lease as this server last wrote or read it (holder, term, revision) stands
in for the read while it is current: the write's guard is that revision, so a
Lease changed since (another master took or renewed it) fails the guard and
is read again. A leader writing many times between two renewals (the Mesos
master's Allocs) saved a store read per write.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from corral.api.errors import BadRequest, Forbidden
from corral.api.metrics import API_METRICS
from corral.api.resources import BY_KIND
from corral.store.base import (
    DeleteResults,
    Deletions,
    Guard,
    Store,
)
from corral.store.errors import GuardFailed, StoreUnavailable
from corral.store.passthrough import PassThroughStore

FENCE_HEADER = "corral-leader-fence"
GUARD_ATTEMPTS = 20  # renewals racing one write; each retry re-reads the Lease


@dataclass(frozen=True)
class Fence:
    namespace: str
    lease: str
    holder: str
    term: int

    @classmethod
    def parse(cls, header: str) -> Fence:
        parts = header.split()
        ns, _, lease = parts[0].partition("/") if parts else ("", "", "")
        if len(parts) != 3 or not ns or not lease or not parts[2].isdigit():
            raise BadRequest(f"{FENCE_HEADER} must be '<namespace>/<lease> <holder> <term>', "
                             f"got {header!r}")
        return cls(ns, lease, parts[1], int(parts[2]))

    def token(self) -> str:
        return f"{self.namespace}/{self.lease} {self.holder} {self.term}"


# The fence of the request being served (set by the app for each request).
CURRENT: contextvars.ContextVar[Fence | None] = contextvars.ContextVar("fence", default=None)


_LEASES = BY_KIND["Lease"].storage_prefix(None)


@dataclass(frozen=True)
class _Held:
    """A Lease as stored at ``revision``."""

    revision: int
    holder: str
    term: int


class FencingStore(PassThroughStore):
    """The Store the registry writes through: writes of a fenced request carry
    the guard; everything else passes through untouched."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self._leases: dict[str, _Held] = {}  # by key, as last written or read here

    # -- writes are fenced -----------------------------------------------------------

    async def create(self, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        revision = await self._fenced(lambda g: self.inner.create(key, value, guard=g), guard)
        self._wrote(key, value, revision)
        return revision

    async def update(self, key: str, value: bytes, expected_revision: int, *,
                     guard: Guard | None = None) -> int:
        revision = await self._fenced(
            lambda g: self.inner.update(key, value, expected_revision, guard=g), guard)
        self._wrote(key, value, revision)
        return revision

    async def delete(self, key: str, expected_revision: int = 0, *,
                     guard: Guard | None = None) -> int:
        self._leases.pop(key, None)
        return await self._fenced(
            lambda g: self.inner.delete(key, expected_revision, guard=g), guard)

    def _wrote(self, key: str, value: bytes, revision: int) -> None:
        if key.startswith(_LEASES):
            self._leases[key] = _held(value, revision)

    async def delete_many(self, deletions: Deletions, *,
                          guard: Guard | None = None) -> DeleteResults:
        """Fenced as the single writes are: the deletions that met a moved guard
        go through the fence again; a refused fence refuses them all."""
        fence = CURRENT.get()
        if fence is None or guard is not None:
            return await self.inner.delete_many(deletions, guard=guard)
        results: DeleteResults = [StoreUnavailable("not attempted")] * len(deletions)
        todo = list(range(len(deletions)))
        for _ in range(GUARD_ATTEMPTS):
            try:
                guard = await self._guard(fence)
            except Forbidden:
                self._count(fence, "refused")
                raise
            done = await self.inner.delete_many([deletions[i] for i in todo], guard=guard)
            for i, result in zip(todo, done):
                results[i] = result
            todo = [i for i, result in zip(todo, done) if isinstance(result, GuardFailed)]
            if not todo:
                self._count(fence, "accepted")
                return results
        raise Forbidden(f"leader fence {fence.token()!r}: the Lease keeps changing; "
                        "try again")

    async def _fenced(self, write: Callable[[Guard | None], Awaitable[int]],
                      guard: Guard | None) -> int:
        fence = CURRENT.get()
        if fence is None or guard is not None:
            return await write(guard)
        fresh = False  # the first try may take the Lease as last seen here
        for _ in range(GUARD_ATTEMPTS):
            try:
                guard = await self._guard(fence, fresh)
            except Forbidden:
                self._count(fence, "refused")
                raise
            try:
                revision = await write(guard)
            except GuardFailed:
                fresh = True
                continue  # the Lease changed since we read it: look again
            self._count(fence, "accepted")
            return revision
        raise Forbidden(f"leader fence {fence.token()!r}: the Lease keeps changing; "
                        "try again")

    @staticmethod
    def _count(fence: Fence, result: str) -> None:
        API_METRICS.fenced_writes.labels(f"{fence.namespace}/{fence.lease}", fence.holder,
                                         str(fence.term), result).inc()

    async def _guard(self, fence: Fence, fresh: bool = True) -> Guard:
        """The guard of a write under ``fence``: the Lease as last seen here
        (unless ``fresh``: a write failed its guard), else as read now. A
        refusal is always decided on the Lease as read now."""
        key = BY_KIND["Lease"].storage_key(fence.namespace, fence.lease)
        seen = None if fresh else self._leases.get(key)
        if seen is None or seen.holder != fence.holder or seen.term != fence.term:
            kv = await self.inner.get(key)
            if kv is None:
                self._leases.pop(key, None)
            else:
                seen = self._leases[key] = _held(kv.value, kv.mod_revision)
            if kv is None or seen is None or seen.holder != fence.holder \
                    or seen.term != fence.term:
                now = f'held by "{seen.holder}" in term {seen.term}' \
                    if kv is not None and seen is not None else "gone"
                raise Forbidden(f"not the leader: Lease {fence.namespace}/{fence.lease} is "
                                f'{now}, not by "{fence.holder}" in term {fence.term}; this '
                                "write of a deposed leader is refused")
        return Guard(key, seen.revision)


def _held(value: bytes, revision: int) -> _Held:
    try:
        spec = orjson.loads(value).get("spec") or {}
        return _Held(revision, str(spec.get("holderIdentity") or ""),
                     int(spec.get("leaseTransitions") or 0))
    except (ValueError, TypeError, AttributeError):
        return _Held(revision, "", -1)  # not a Lease as written: never a fence's
