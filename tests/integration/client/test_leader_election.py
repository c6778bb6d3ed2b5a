"""Leader election between candidates on a real master, timed by a fake clock:
one leader at a time, a crashed leader's lease is taken only after it expires,
a stopped leader hands over at once, and a leader that cannot renew steps down."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from corral.api.errors import Forbidden
from corral.client.clock import FakeClock
from corral.client.http import Client
from corral.client.leaderelection import LeaderElector, LeaseTiming, run_elected
from tests.cluster import Master
from tests.poll import eventually

NS = "default"
RETRY = 2.0


def _elector(client: Client, lease: str, identity: str, clock: FakeClock,
             log: list[str], **kw: object) -> LeaderElector:
    async def started() -> None:
        log.append(f"{identity} started")
        await asyncio.Event().wait()  # lead until cancelled

    return LeaderElector(client, NS, lease, identity, lease_duration=15, renew_deadline=10,
                         retry_period=RETRY, clock=clock, on_started_leading=started,
                         on_stopped_leading=lambda: log.append(f"{identity} stopped"),
                         **kw)  # type: ignore[arg-type]


async def _settle(clock: FakeClock, waiting: int) -> None:
    """Let the electors finish their HTTP round trips until ``waiting`` of them idle in
    their retry-period sleep (an attempt in flight has a timeout timer on the clock)."""
    await eventually(lambda: clock.waiting(RETRY) >= waiting, what=f"{waiting} electors idle")


async def test_crashed_leader_is_replaced_only_after_lease_expires(client: Client) -> None:
    clock, log = FakeClock(), []
    a = _elector(client, "le-crash", "a", clock, log, release_on_cancel=False)
    a.start()
    await eventually(lambda: a.is_leader, what="a leads")
    b = _elector(client, "le-crash", "b", clock, log)
    b.start()
    await _settle(clock, 2)
    await a.stop()  # a "crashes": no release, no more renewals
    assert log == ["a started", "a stopped"]
    for _ in range(7):  # 14 s: the lease (15 s from b's first sight of it) still holds
        clock.advance(2)
        await _settle(clock, 1)
        assert not b.is_leader
    clock.advance(2)
    await eventually(lambda: b.is_leader, what="b takes over after expiry")
    lease = await client.get("Lease", "le-crash", NS)
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    await b.stop()


async def test_stopped_leader_releases_and_standby_takes_over_next_retry(client: Client) -> None:
    clock, log = FakeClock(), []
    a = _elector(client, "le-release", "a", clock, log)
    a.start()
    await eventually(lambda: a.is_leader, what="a leads")
    b = _elector(client, "le-release", "b", clock, log)
    b.start()
    await _settle(clock, 2)
    await a.stop()
    lease = await client.get("Lease", "le-release", NS)
    assert lease["spec"]["holderIdentity"] == ""
    clock.advance(2)
    await eventually(lambda: b.is_leader, what="b leads after one retry period")
    assert log == ["a started", "a stopped", "b started"]
    await b.stop()


async def test_leader_renews_and_keeps_the_lease(client: Client) -> None:
    clock, log = FakeClock(), []
    a = _elector(client, "le-renew", "a", clock, log)
    a.start()
    await eventually(lambda: a.is_leader, what="a leads")
    first = (await client.get("Lease", "le-renew", NS))["spec"]["renewTime"]
    for _ in range(20):  # 40 s, well past the lease duration
        await _settle(clock, 1)
        clock.advance(2)
    await _settle(clock, 1)
    spec = (await client.get("Lease", "le-renew", NS))["spec"]
    assert a.is_leader and spec["holderIdentity"] == "a" and spec["renewTime"] > first
    await a.stop()


async def test_leader_renews_on_top_of_a_lease_someone_else_touched(client: Client) -> None:
    """Renewals write on top of the leader's own last write without reading first;
    when another writer changed the Lease meanwhile (here a label), that write is
    refused and the leader reads it and renews on what is there, still leading."""
    clock, log = FakeClock(), []
    a = _elector(client, "le-touched", "a", clock, log)
    a.start()
    await eventually(lambda: a.is_leader, what="a leads")
    await _settle(clock, 1)
    lease = await client.get("Lease", "le-touched", NS)
    lease["metadata"].setdefault("labels", {})["touched"] = "yes"
    touched = await client.update(lease)
    clock.advance(2)
    await _settle(clock, 1)
    renewed = await client.get("Lease", "le-touched", NS)
    assert int(renewed["metadata"]["resourceVersion"]) > int(
        touched["metadata"]["resourceVersion"])
    assert renewed["metadata"]["labels"] == {"touched": "yes"}
    assert renewed["spec"]["holderIdentity"] == "a"
    assert renewed["spec"]["renewTime"] > touched["spec"]["renewTime"]
    assert a.is_leader and log == ["a started"]
    await a.stop()


async def test_a_paused_leader_knows_its_term_may_have_lapsed_before_renewing(
        client: Client) -> None:
    """A pause (the process stopped, a long GC) longer than the renew deadline: the
    leader still leads until its next renewal answers, but it can tell at once, by
    its own clock, that a standby may hold the Lease by now (what it commands
    directly waits for that). Its renewal, nobody having taken the Lease, holds
    the term again."""
    clock, log = FakeClock(), []
    a = _elector(client, "le-paused", "a", clock, log)
    a.start()
    await eventually(lambda: a.is_leader, what="a leads")
    await _settle(clock, 1)
    assert a.holds_lease()
    clock.advance(9)  # within the renew deadline (10 s) of the last renewal
    assert a.holds_lease()
    clock.advance(2)  # past it, before the elector has run again
    assert a.is_leader and not a.holds_lease()
    await eventually(a.holds_lease, what="renewed: the term holds again")
    assert log == ["a started"]
    await a.stop()
    assert not a.holds_lease()


async def test_leader_that_cannot_renew_steps_down(master: Master) -> None:
    clock, log = FakeClock(), []
    async with Client(master.url, token=master.token, ca_pem=master.ca_pem, attempts=1) as c:
        a = _elector(c, "le-lost", "a", clock, log)
        a.start()
        await eventually(lambda: a.is_leader, what="a leads")
        await _settle(clock, 1)
        # Someone else takes the lease by force: every renewal now fails the CAS check.
        lease = await c.get("Lease", "le-lost", NS)
        lease["spec"]["holderIdentity"] = "intruder"
        await c.update(lease)
        while a.is_leader and clock.monotonic() < 60:
            clock.advance(2)
            await eventually(lambda: clock.waiting(RETRY) >= 1 or not a.is_leader, what="a retries")
        # Renewals fail from the first retry at 2 s; the deadline is 10 s after it. The
        # last attempt (at 10 s) has a timeout timer of exactly one retry period, which
        # the loop above cannot tell from the retry sleep, so time may step once past 12.
        assert not a.is_leader and 12 <= clock.monotonic() <= 14
        await eventually(lambda: len(log) == 2, what="on_stopped_leading")
        assert log == ["a started", "a stopped"]
        await a.stop()


async def test_run_elected_leads_stands_by_after_loss_and_leads_again(client: Client) -> None:
    """The runner every component uses: work runs while the Lease is held, is
    cancelled when it is lost, starts afresh on the next term, and ``stop`` gives
    the Lease up. Its writes are fenced: once the Lease is another's, the API
    refuses what the deposed term writes, and the next term writes again."""
    clock, terms, stop = FakeClock(), [], asyncio.Event()
    writers: list[Client] = []

    def config_map(name: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "default"}}

    async def work(fenced: Client) -> None:
        writers.append(fenced)
        terms.append("started")
        try:
            await asyncio.Event().wait()
        finally:
            terms.append("ended")

    timing = LeaseTiming(lease_duration=15, renew_deadline=10, retry_period=RETRY)
    runner = asyncio.create_task(run_elected(client, stop, "le-runner", "a", work, timing,
                                             clock))
    await eventually(lambda: terms == ["started"], what="first term")
    await writers[0].create(config_map("le-runner-term-1"))
    lease = await client.get("Lease", "le-runner", "kube-system")
    lease["spec"]["holderIdentity"] = "intruder"  # taken by force, then never renewed
    await client.update(lease)
    with pytest.raises(Forbidden, match="not the leader"):
        await writers[0].create(config_map("le-runner-deposed"))
    while terms != ["started", "ended"] and clock.monotonic() < 60:
        clock.advance(2)
        await eventually(lambda: clock.waiting(RETRY) >= 1 or len(terms) > 1, what="a retries")
    assert terms == ["started", "ended"]
    while len(terms) < 3 and clock.monotonic() < 120:  # the intruder's lease expires
        clock.advance(2)
        await eventually(lambda: clock.waiting(RETRY) >= 1 or len(terms) > 2, what="a campaigns")
    assert terms == ["started", "ended", "started"]
    await writers[1].create(config_map("le-runner-term-3"))
    with pytest.raises(Forbidden, match="not the leader"):  # an old term stays fenced
        await writers[0].delete("ConfigMap", "le-runner-term-1", "default")
    stop.set()
    await asyncio.wait_for(runner, 20)
    assert terms[-1] == "ended"
    assert (await client.get("Lease", "le-runner", "kube-system"))["spec"]["holderIdentity"] == ""
