"""Claim keys on a real SQLite store: atomic across concurrent takers, released
only by their owner, reclaimed when stale or retried by the same Service name.
The wall clock is the one seam faked, so "older than a minute" takes no minute."""

from __future__ import annotations

import asyncio

from corral.api.allocation.claims import Claims, Owner
from corral.api.allocation.ranges import IpRange, PortRange
from corral.store.base import Store


class WallClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Holdings:
    """Which (service name, value) pairs the 'stored Services' use."""

    def __init__(self) -> None:
        self.held: set[tuple[str, str]] = set()

    async def __call__(self, owner: Owner, pool: str, value: str) -> bool:
        return (owner.name, value) in self.held


def a(name: str, uid: str = "") -> Owner:
    return Owner("default", name, uid or f"uid-{name}")


async def test_concurrent_takes_of_one_value_have_one_winner(store: Store) -> None:
    claims = Claims(store, "serviceips", IpRange.parse("127.101.0.0/24"), Holdings())
    won = await asyncio.gather(*(claims.take("127.101.0.7", a(f"s{i}")) for i in range(20)))
    assert won.count(True) == 1


async def test_concurrent_allocations_are_distinct_until_full(store: Store) -> None:
    pool = PortRange.parse("30000-30009")
    claims = Claims(store, "servicenodeports", pool, Holdings())
    got = await asyncio.gather(*(claims.allocate(a(f"s{i}")) for i in range(10)))
    assert sorted(got, key=str) == [str(p) for p in range(30000, 30010)]
    assert await claims.allocate(a("late")) is None


async def test_release_only_by_the_owner_uid(store: Store) -> None:
    claims = Claims(store, "serviceips", IpRange.parse("127.101.0.0/24"), Holdings())
    assert await claims.take("127.101.0.9", a("web", "uid-1"))
    assert not await claims.release("127.101.0.9", a("web", "uid-2"))  # a successor's late hook
    assert await claims.owner_of("127.101.0.9") == a("web", "uid-1")
    assert await claims.release("127.101.0.9", a("web", "uid-1"))
    assert await claims.owner_of("127.101.0.9") is None


async def test_stale_claim_not_held_is_reclaimed_after_a_minute(store: Store) -> None:
    clock, holdings = WallClock(), Holdings()
    claims = Claims(store, "serviceips", IpRange.parse("127.101.0.0/24"), holdings, clock=clock)
    assert await claims.take("127.101.0.5", a("crashed"))  # never written: a crash
    clock.now += 30
    assert not await claims.take("127.101.0.5", a("other"))
    clock.now += 31
    assert await claims.take("127.101.0.5", a("other"))
    assert await claims.owner_of("127.101.0.5") == a("other")


async def test_held_claim_is_never_reclaimed(store: Store) -> None:
    clock, holdings = WallClock(), Holdings()
    claims = Claims(store, "serviceips", IpRange.parse("127.101.0.0/24"), holdings, clock=clock)
    assert await claims.take("127.101.0.6", a("web"))
    holdings.held.add(("web", "127.101.0.6"))
    clock.now += 3600
    assert not await claims.take("127.101.0.6", a("other"))
    # Held by name: a same-named newcomer cannot take it from the stored Service either.
    assert not await claims.take("127.101.0.6", a("web", "uid-new"))


async def test_same_name_retry_takes_over_its_own_unwritten_claim(store: Store) -> None:
    claims = Claims(store, "servicenodeports", PortRange.parse("30000-32767"), Holdings())
    assert await claims.take("30123", a("web", "uid-dry-run"))
    assert await claims.take("30123", a("web", "uid-real"))
    assert await claims.owner_of("30123") == a("web", "uid-real")
