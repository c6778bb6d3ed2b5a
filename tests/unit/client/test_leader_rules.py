"""Leader-election rules (pure) and the fake clock they are timed with."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from corral.client.clock import FakeClock
from corral.client.leaderelection import (
    MASTER_LEASE_SECONDS,
    LeaseTiming,
    held_by_other,
    next_spec,
)
from corral.objects import rfc3339_micro

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_free_or_own_lease_is_not_held_by_other() -> None:
    assert not held_by_other({}, "me", 0.0, 0.0, 15)
    assert not held_by_other({"holderIdentity": ""}, "me", 0.0, 0.0, 15)
    assert not held_by_other({"holderIdentity": "me", "leaseDurationSeconds": 15}, "me", 0, 1, 15)


def test_other_holder_expires_after_its_duration_on_our_clock() -> None:
    spec = {"holderIdentity": "other", "leaseDurationSeconds": 10}
    assert held_by_other(spec, "me", observed_at=100.0, now=109.9, lease_duration=15)
    assert not held_by_other(spec, "me", observed_at=100.0, now=110.0, lease_duration=15)


def test_acquire_from_other_bumps_transitions_and_acquire_time() -> None:
    old = {"holderIdentity": "other", "acquireTime": "x", "leaseTransitions": 3}
    spec = next_spec(old, "me", T0, 15)
    assert spec == {"holderIdentity": "me", "leaseDurationSeconds": 15,
                    "acquireTime": rfc3339_micro(T0), "renewTime": rfc3339_micro(T0),
                    "leaseTransitions": 4}


def test_renew_keeps_acquire_time_and_transitions() -> None:
    old = {"holderIdentity": "me", "acquireTime": "then", "leaseTransitions": 2}
    spec = next_spec(old, "me", T0, 15)
    assert (spec["acquireTime"], spec["leaseTransitions"]) == ("then", 2)
    assert spec["renewTime"] == "2024-05-01T12:00:00.000000Z"


def test_first_holder_has_zero_transitions() -> None:
    assert next_spec(None, "me", T0, 15)["leaseTransitions"] == 0


async def test_fake_clock_wakes_sleepers_in_order_only_when_advanced() -> None:
    clock = FakeClock(T0)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 5)), asyncio.create_task(sleeper("early", 1))]
    await asyncio.sleep(0)
    assert clock.sleepers == 2 and woke == []
    clock.advance(1)
    await asyncio.sleep(0)
    assert woke == ["early"]
    clock.advance(4)
    await asyncio.gather(*tasks)
    assert woke == ["early", "late"]
    assert clock.monotonic() == 5 and (clock.now() - T0).total_seconds() == 5


def test_in_process_leases_are_short_only_where_a_standby_can_take_over() -> None:
    from corral.cli.master import leader_lease_seconds

    assert leader_lease_seconds("etcd://127.0.0.1:2379", None) == MASTER_LEASE_SECONDS == 3
    # SQLite (given or the default): one master alone, client-go's 15 s.
    assert leader_lease_seconds("", None) == leader_lease_seconds("sqlite:///x.db", None) == 15
    assert leader_lease_seconds("sqlite:///x.db", 2.0) == 2.0  # the flag wins
    timing = LeaseTiming.of_lease(15)
    assert (timing.renew_deadline, timing.retry_period) == (11.25, 1.875)
