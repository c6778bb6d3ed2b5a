"""Claim keys: one store key per value handed out, created only if absent, so two
API servers (or two requests) can never hand out the same value.

    /registry/allocations/<pool>/<value>  →  {"namespace", "name", "uid", "claimedAt"}

A claim names the Service that asked for it. The Service object itself is the
truth about what is in use; a claim only reserves. So a claim may be taken over
when its Service does not hold the value and either

  - the claim is older than ``stale_after`` (a crash between claim and write, a
    dry run, a create that failed after admission), or
  - it names the very Service asking again (a retried create of the same name;
    two creates of one name cannot both be stored).

"Holds" is checked by name, not uid: while any object of that name holds the
value, the claim stands. Releases do check the uid, so a late release for a
deleted Service never frees what its same-named successor claimed.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from corral.store.base import Store
from corral.store.errors import KeyExists, KeyNotFound, RevisionMismatch

CLAIMS_PREFIX = "/registry/allocations/"
STALE_AFTER_SECONDS = 60.0
RANDOM_TRIES = 32  # random probes before listing the claims to find a free value
_TAKE_RACES = 5


class Pool(Protocol):
    @property
    def size(self) -> int: ...

    def contains(self, value: str) -> bool: ...

    def random_values(self, count: int) -> Iterator[str]: ...

    def all_values(self) -> Iterator[str]: ...


@dataclass(frozen=True)
class Owner:
    """The Service a value is claimed for."""

    namespace: str
    name: str
    uid: str

    def same_object_name(self, other: Owner) -> bool:
        return (self.namespace, self.name) == (other.namespace, other.name)


# (owner, pool name, value) → does the stored Service of that name use the value now?
HoldCheck = Callable[[Owner, str, str], Awaitable[bool]]


@dataclass(frozen=True)
class _Record:
    owner: Owner
    claimed_at: float

    def dump(self) -> bytes:
        o = self.owner
        return json.dumps({"namespace": o.namespace, "name": o.name, "uid": o.uid,
                           "claimedAt": self.claimed_at}).encode()

    @classmethod
    def load(cls, raw: bytes) -> _Record:
        data = json.loads(raw)
        return cls(Owner(str(data.get("namespace", "")), str(data.get("name", "")),
                         str(data.get("uid", ""))), float(data.get("claimedAt", 0.0)))


class Claims:
    """The claims of one pool ("serviceips", "servicenodeports")."""

    def __init__(self, store: Store, pool_name: str, pool: Pool, holds: HoldCheck, *,
                 stale_after: float = STALE_AFTER_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.pool_name = pool_name
        self.pool = pool
        self.holds = holds
        self.stale_after = stale_after
        self.clock = clock  # wall clock: claims are shared by every API server
        self.prefix = f"{CLAIMS_PREFIX}{pool_name}/"

    async def take(self, value: str, owner: Owner) -> bool:
        """Claim ``value`` for ``owner``: True when it is now (or already was) theirs."""
        key = self.prefix + value
        record = _Record(owner, self.clock()).dump()
        for _ in range(_TAKE_RACES):
            try:
                await self.store.create(key, record)
                return True
            except KeyExists:
                pass
            kv = await self.store.get(key)
            if kv is None:
                continue  # released meanwhile: try to create again
            current = _Record.load(kv.value)
            if current.owner == owner:
                return True
            if not await self._reclaimable(current, owner, value):
                return False
            try:
                await self.store.update(key, record, kv.mod_revision)
                return True
            except (RevisionMismatch, KeyNotFound):
                continue
        return False

    async def allocate(self, owner: Owner) -> str | None:
        """A free value of the pool claimed for ``owner``; None when the pool is full."""
        for value in self.pool.random_values(RANDOM_TRIES):
            if await self.take(value, owner):
                return value
        claimed = await self.claimed()
        free = [v for v in self.pool.all_values() if v not in claimed]
        for value in random.sample(free, min(len(free), RANDOM_TRIES)):
            if await self.take(value, owner):
                return value
        # Every value has a claim: look for stale ones to take over.
        for value in random.sample(sorted(claimed), min(len(claimed), RANDOM_TRIES)):
            if self.pool.contains(value) and await self.take(value, owner):
                return value
        return None

    async def release(self, value: str, owner: Owner) -> bool:
        """Drop ``owner``'s claim on ``value`` (no-op if someone else holds it now)."""
        key = self.prefix + value
        kv = await self.store.get(key)
        if kv is None or _Record.load(kv.value).owner.uid != owner.uid:
            return False
        try:
            await self.store.delete(key, kv.mod_revision)
        except (RevisionMismatch, KeyNotFound):
            return False
        return True

    async def owner_of(self, value: str) -> Owner | None:
        kv = await self.store.get(self.prefix + value)
        return _Record.load(kv.value).owner if kv is not None else None

    async def claimed(self) -> set[str]:
        listing = await self.store.list(self.prefix)
        return {kv.key[len(self.prefix):] for kv in listing.items}

    async def _reclaimable(self, current: _Record, asking: Owner, value: str) -> bool:
        if await self.holds(current.owner, self.pool_name, value):
            return False
        if current.owner.same_object_name(asking):
            return True
        return self.clock() - current.claimed_at > self.stale_after
