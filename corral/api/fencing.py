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
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from corral.api.errors import BadRequest, Forbidden
from corral.api.metrics import API_METRICS
from corral.api.resources import BY_KIND
from corral.store.base import (
    DeleteResults,
    Deletions,
    Guard,
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


class FencingStore(PassThroughStore):
    """The Store the registry writes through: writes of a fenced request carry
    the guard; everything else passes through untouched."""

    # -- writes are fenced -----------------------------------------------------------

    async def create(self, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        return await self._fenced(lambda g: self.inner.create(key, value, guard=g), guard)

    async def update(self, key: str, value: bytes, expected_revision: int, *,
                     guard: Guard | None = None) -> int:
        return await self._fenced(
            lambda g: self.inner.update(key, value, expected_revision, guard=g), guard)

    async def delete(self, key: str, expected_revision: int = 0, *,
                     guard: Guard | None = None) -> int:
        return await self._fenced(
            lambda g: self.inner.delete(key, expected_revision, guard=g), guard)

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
        for _ in range(GUARD_ATTEMPTS):
            try:
                guard = await self._guard(fence)
            except Forbidden:
                self._count(fence, "refused")
                raise
            try:
                revision = await write(guard)
            except GuardFailed:
                continue  # the Lease changed since we read it: look again
            self._count(fence, "accepted")
            return revision
        raise Forbidden(f"leader fence {fence.token()!r}: the Lease keeps changing; "
                        "try again")

    @staticmethod
    def _count(fence: Fence, result: str) -> None:
        API_METRICS.fenced_writes.labels(f"{fence.namespace}/{fence.lease}", fence.holder,
                                         str(fence.term), result).inc()

    async def _guard(self, fence: Fence) -> Guard:
        key = BY_KIND["Lease"].storage_key(fence.namespace, fence.lease)
        kv = await self.inner.get(key)
        spec = (json.loads(kv.value).get("spec") or {}) if kv is not None else {}
        holder = str(spec.get("holderIdentity") or "")
        term = int(spec.get("leaseTransitions") or 0)
        if kv is None or holder != fence.holder or term != fence.term:
            now = f'held by "{holder}" in term {term}' if kv is not None else "gone"
            raise Forbidden(f"not the leader: Lease {fence.namespace}/{fence.lease} is {now}, "
                            f'not by "{fence.holder}" in term {fence.term}; this write of a '
                            "deposed leader is refused")
        return Guard(key, kv.mod_revision)
