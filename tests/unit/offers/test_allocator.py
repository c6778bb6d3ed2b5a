"""The hierarchical DRF allocator, driven by hand with a fake clock."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from corral.client.clock import FakeClock
from corral.offers.allocator import (
    DEFAULT_REFUSE_SECONDS,
    MAX_REFUSE_SECONDS,
    Allocator,
    InvalidOffers,
    Offer,
    refuse_duration,
)
from corral.offers.resources import Resources

NODE = Resources(cpus=4, mem=4096, disk=1000, ports=((31000, 31099),))


def allocator(nodes: int = 1, node: Resources = NODE,
              offer_timeout: float = 60.0) -> tuple[Allocator, FakeClock]:
    clock = FakeClock()
    alloc = Allocator(clock, offer_timeout=offer_timeout, id_prefix="m1")
    alloc.update_capacity({f"n{i}": node for i in range(1, nodes + 1)})
    return alloc, clock


def launch(alloc: Allocator, offer: Offer, task: Resources) -> None:
    """What the endpoint does on ACCEPT + LAUNCH of one task: take the offer, hold
    what the task uses, give the rest back."""
    taken = alloc.take(offer.framework_id, [offer.id])
    alloc.track_used(offer.framework_id, offer.role, offer.node, task)
    alloc.give_back(taken, {offer.node: task})


def fill(alloc: Allocator, tasks: dict[str, Resources], rounds: int = 1000) -> Counter[str]:
    """Offer rounds in which each framework launches one task per offer, until no
    framework can launch anything: DRF's progressive filling."""
    launched: Counter[str] = Counter()
    for _ in range(rounds):
        offers = alloc.allocate()
        progress = False
        for offer in offers:
            if tasks[offer.framework_id].fits(offer.resources):
                launch(alloc, offer, tasks[offer.framework_id])
                launched[offer.framework_id] += 1
                progress = True
            else:  # what a framework does with an offer too small for its tasks
                alloc.decline(offer.framework_id, [offer.id], refuse_seconds=1000)
        if not progress and not offers:
            return launched
    raise AssertionError(f"still launching after {rounds} rounds: {launched}")


def test_a_framework_is_offered_each_node_whole() -> None:
    alloc, _ = allocator(nodes=3)
    alloc.add_framework("f1", ["web"])
    offers = alloc.allocate()
    assert sorted(o.node for o in offers) == ["n1", "n2", "n3"]
    assert {o.resources for o in offers} == {NODE}
    assert {o.framework_id for o in offers} == {"f1"}
    assert {o.role for o in offers} == {"web"}
    assert len({o.id for o in offers}) == 3
    assert all(o.id.startswith("m1-O") for o in offers)
    assert alloc.allocate() == []  # everything is on offer already
    assert alloc.offers("f1") == offers
    assert alloc.offers("other") == []


def test_no_frameworks_or_nothing_worth_offering_makes_no_offers() -> None:
    alloc, _ = allocator(node=Resources(cpus=0.005, mem=31, disk=100, ports=((1, 9),)))
    assert alloc.allocate() == []
    alloc.add_framework("f1", ["*"])
    assert alloc.allocate() == []  # below Mesos' minimum: cpus 0.01 or mem 32
    alloc.update_capacity({"n1": Resources(mem=32)})
    assert [o.resources for o in alloc.allocate()] == [Resources(mem=32)]


def test_default_role_when_none_given() -> None:
    alloc, _ = allocator()
    alloc.add_framework("f1", [])
    assert [o.role for o in alloc.allocate()] == ["*"]


def test_drf_paper_example_two_users_equalise_dominant_shares() -> None:
    # The DRF paper's example: 9 CPUs and 18 GB; A's tasks <1 CPU, 4 GB>, B's
    # <3 CPUs, 1 GB>. DRF gives A three tasks and B two, both at share 2/3.
    alloc, _ = allocator(node=Resources(cpus=9, mem=18 * 1024))
    alloc.add_framework("A", ["r"])
    alloc.add_framework("B", ["r"])
    launched = fill(alloc, {"A": Resources(cpus=1, mem=4096), "B": Resources(cpus=3, mem=1024)})
    assert launched == {"A": 3, "B": 2}
    shares = alloc.shares()
    assert shares["A"] == pytest.approx(2 / 3, abs=0.001)
    assert shares["B"] == pytest.approx(2 / 3, abs=0.001)


def test_the_framework_with_the_lowest_dominant_share_is_offered_first() -> None:
    alloc, _ = allocator(nodes=2)
    alloc.add_framework("a", ["r"])
    alloc.add_framework("b", ["r"])
    alloc.track_used("a", "r", "n1", Resources(cpus=1))  # a: 1/8 of the cpus
    alloc.track_used("b", "r", "n1", Resources(mem=2048))  # b: 2/8 of the mem
    offers = alloc.allocate()
    # n1 goes to a (share 0.125 < 0.25); then a holds n1's rest: n2 goes to b.
    assert [(o.node, o.framework_id) for o in offers] == [("n1", "a"), ("n2", "b")]
    assert offers[0].resources == Resources(cpus=3, mem=2048, disk=1000,
                                            ports=((31000, 31099),))


def test_role_weights_divide_the_cluster_three_to_one() -> None:
    alloc, _ = allocator(nodes=8, node=Resources(cpus=4, mem=4096))
    alloc.set_weight("heavy", 3)
    alloc.add_framework("light-fw", ["light"])
    alloc.add_framework("heavy-fw", ["heavy"])
    task = Resources(cpus=0.5, mem=256)
    launched = fill(alloc, {"light-fw": task, "heavy-fw": task})
    assert sum(launched.values()) == 64
    assert launched["heavy-fw"] == 48 and launched["light-fw"] == 16
    roles = alloc.role_shares()
    assert roles["heavy"] == pytest.approx(3 * roles["light"])
    assert alloc.weight("heavy") == 3 and alloc.weight("light") == 1


def test_frameworks_inside_a_weighted_role_share_it_equally() -> None:
    alloc, _ = allocator(nodes=8, node=Resources(cpus=4, mem=4096))
    alloc.set_weight("heavy", 3)
    for name, role in (("l", "light"), ("h1", "heavy"), ("h2", "heavy")):
        alloc.add_framework(name, [role])
    task = Resources(cpus=0.5, mem=256)
    launched = fill(alloc, {"l": task, "h1": task, "h2": task})
    assert launched == {"l": 16, "h1": 24, "h2": 24}


def test_weights_must_be_positive_numbers() -> None:
    alloc, _ = allocator()
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match="positive"):
            alloc.set_weight("r", bad)


def test_decline_filters_the_node_for_refuse_seconds() -> None:
    alloc, clock = allocator(nodes=1)
    alloc.add_framework("a", ["r"])
    alloc.add_framework("b", ["r"])
    first = alloc.allocate()
    assert [o.framework_id for o in first] == ["a"]  # tie: by name
    alloc.decline("a", [first[0].id], refuse_seconds=30)
    second = alloc.allocate()
    assert [o.framework_id for o in second] == ["b"]  # a refused the node
    alloc.decline("b", [second[0].id], refuse_seconds=10)
    assert alloc.allocate() == []  # both filtered
    clock.advance(10)
    assert [o.framework_id for o in alloc.allocate()] == ["b"]  # b's filter ended
    alloc.decline("b", [alloc.offers()[0].id], refuse_seconds=100)
    clock.advance(19.9)
    assert alloc.allocate() == []
    clock.advance(0.1)
    assert [o.framework_id for o in alloc.allocate()] == ["a"]


def test_a_filter_lapses_when_the_node_has_more_than_was_declined() -> None:
    alloc, _ = allocator(node=Resources(cpus=1, mem=1024))
    alloc.add_framework("a", ["r"])
    offer = alloc.allocate()[0]
    alloc.decline("a", [offer.id], refuse_seconds=1000)
    alloc.update_capacity({"n1": Resources(cpus=0.5, mem=512)})  # less: still filtered
    assert alloc.allocate() == []
    alloc.update_capacity({"n1": Resources(cpus=2, mem=1024)})  # more cpus than declined
    assert [o.resources.cpus for o in alloc.allocate()] == [2]


def test_refuse_seconds_zero_means_no_filter_and_bad_values_mean_the_default() -> None:
    alloc, clock = allocator()
    alloc.add_framework("a", ["r"])
    alloc.decline("a", [alloc.allocate()[0].id], refuse_seconds=0)
    offer = alloc.allocate()[0]
    alloc.decline("a", [offer.id], refuse_seconds=-3)
    assert alloc.allocate() == []
    clock.advance(DEFAULT_REFUSE_SECONDS)
    assert len(alloc.allocate()) == 1
    assert refuse_duration(math.nan) == DEFAULT_REFUSE_SECONDS
    assert refuse_duration(math.inf) == MAX_REFUSE_SECONDS
    assert refuse_duration(1e12) == MAX_REFUSE_SECONDS
    assert refuse_duration(2.5) == 2.5


def test_declining_unknown_or_anothers_offers_is_ignored() -> None:
    alloc, _ = allocator()
    alloc.add_framework("a", ["r"])
    alloc.add_framework("b", ["r"])
    offer = alloc.allocate()[0]
    alloc.decline("b", [offer.id, "no-such-offer"], refuse_seconds=100)
    assert alloc.offers() == [offer]


def test_revive_clears_filters_and_suppression() -> None:
    alloc, _ = allocator()
    alloc.add_framework("a", ["r"])
    alloc.decline("a", [alloc.allocate()[0].id], refuse_seconds=1000)
    assert alloc.allocate() == []
    alloc.revive("a")
    offer = alloc.allocate()[0]
    alloc.decline("a", [offer.id], refuse_seconds=1000)
    alloc.suppress("a")
    alloc.revive("a", ["other-role"])  # not its role: changes nothing
    assert alloc.allocate() == []
    alloc.revive("a", ["r"])
    assert len(alloc.allocate()) == 1
    alloc.revive("ghost")  # unknown frameworks are ignored
    alloc.suppress("ghost")


def test_suppress_stops_offers_per_role_and_keeps_outstanding_ones() -> None:
    alloc, _ = allocator(nodes=2)
    alloc.add_framework("a", ["r1", "r2"], suppressed_roles=["r2", "not-mine"])
    offers = alloc.allocate()
    assert {o.role for o in offers} == {"r1"}
    alloc.suppress("a", ["r1"])
    assert alloc.offers() == offers  # still valid
    for offer in offers:
        alloc.decline("a", [offer.id], refuse_seconds=0)
    assert alloc.allocate() == []
    alloc.revive("a", ["r2"])
    assert {o.role for o in alloc.allocate()} == {"r2"}


def test_a_multi_role_framework_is_sorted_per_role() -> None:
    alloc, _ = allocator(nodes=2)
    alloc.add_framework("multi", ["a", "b"])
    alloc.track_used("multi", "a", "n1", Resources(cpus=1))
    offers = alloc.allocate()
    assert [o.role for o in offers] == ["b", "a"]  # b's share is lower, then a's is
    assert alloc.shares()["multi"] == pytest.approx((1 + 3 + 4) / 8)
    assert alloc.role_shares() == {"a": pytest.approx(5 / 8), "b": pytest.approx(4 / 8)}


def test_take_moves_offers_out_and_give_back_frees_the_unused_part() -> None:
    alloc, _ = allocator()
    alloc.add_framework("a", ["r"])
    offer = alloc.allocate()[0]
    assert alloc.take("a", [offer.id]) == [offer]
    assert alloc.offers() == []
    assert alloc.allocate() == []  # taken: not offered again before give_back
    task = Resources(cpus=1, mem=1024, ports=((31000, 31000),))
    alloc.track_used("a", "r", "n1", task)
    alloc.give_back([offer], {"n1": task})
    again = alloc.allocate()[0]
    assert again.resources == NODE - task
    assert alloc.shares() == {"a": pytest.approx(1.0)}  # the task plus the new offer
    alloc.decline("a", [again.id], refuse_seconds=0)
    assert alloc.shares() == {"a": pytest.approx(0.25)}


def test_give_back_with_refuse_seconds_filters_the_unused_part() -> None:
    alloc, clock = allocator()
    alloc.add_framework("a", ["r"])
    offer = alloc.allocate()[0]
    taken = alloc.take("a", [offer.id])
    task = Resources(cpus=1, mem=512)
    alloc.track_used("a", "r", "n1", task)
    alloc.give_back(taken, {"n1": task}, refuse_seconds=5)
    assert alloc.allocate() == []
    clock.advance(5)
    assert [o.resources for o in alloc.allocate()] == [NODE - task]
    alloc.give_back(taken, {})  # already given back: ignored


def test_launch_failure_gives_everything_back() -> None:
    alloc, _ = allocator()
    alloc.add_framework("a", ["r"])
    offer = alloc.allocate()[0]
    alloc.give_back(alloc.take("a", [offer.id]), {})
    assert [o.resources for o in alloc.allocate()] == [NODE]


@pytest.mark.parametrize(("ids", "message", "voided"), [
    ([], "no offer ids", set()),
    (["m1-O1", "m1-O1"], "more than once", {"m1-O1"}),
    (["m1-O1", "nope"], "Offer nope is no longer valid", {"m1-O1"}),
    (["m1-O1", "m1-O2"], "Offer m1-O2 is not for framework a", {"m1-O1"}),
    (["m1-O1", "m1-O3"], "one single agent", {"m1-O1", "m1-O3"}),
])
def test_take_refuses_invalid_offers_and_voids_the_callers_own(
        ids: list[str], message: str, voided: set[str]) -> None:
    alloc, _ = allocator(nodes=3)
    alloc.add_framework("a", ["r"])
    alloc.add_framework("b", ["s"])
    alloc.set_weight("r", 2)
    offers = alloc.allocate()
    # n1: a tie at share 0, "r" first; n2: r at 1/3 / 2 > s at 0; n3: r at 1/6 < s at 1/3.
    assert [(o.id, o.node, o.framework_id) for o in offers] == [
        ("m1-O1", "n1", "a"), ("m1-O2", "n2", "b"), ("m1-O3", "n3", "a")]
    with pytest.raises(InvalidOffers, match=message) as caught:
        alloc.take("a", ids)
    assert {o.id for o in caught.value.voided} == voided
    assert {o.id for o in alloc.offers()} == {"m1-O1", "m1-O2", "m1-O3"} - voided
    if voided:
        with pytest.raises(InvalidOffers, match="no longer valid"):
            alloc.take("a", sorted(voided)[:1])


def test_update_capacity_rescinds_offers_of_nodes_gone_or_shrunk() -> None:
    alloc, _ = allocator(nodes=3)
    alloc.add_framework("a", ["r"])
    alloc.add_framework("b", ["r"])
    first = alloc.allocate()
    assert [o.node for o in first] == ["n1", "n2", "n3"]
    # n1's offer is taken and part of it launched; b is offered n1's rest.
    taken = alloc.take(first[0].framework_id, [first[0].id])
    task = Resources(cpus=1, mem=1024)
    alloc.track_used(taken[0].framework_id, "r", "n1", task)
    alloc.give_back(taken, {"n1": task})
    rest = alloc.allocate()
    assert [o.node for o in rest] == ["n1"]
    # n1 loses a cpu to a pod: the newest offer there no longer fits, n2 is gone,
    # n3 is unchanged.
    smaller = Resources(cpus=3, mem=4096, disk=1000, ports=((31000, 31099),))
    rescinded = alloc.update_capacity({"n1": smaller, "n3": NODE})
    assert {o.id for o in rescinded} == {rest[0].id, first[1].id}
    assert alloc.offers() == [first[2]]
    assert alloc.update_capacity({"n1": smaller, "n3": NODE}) == []
    # A pod takes a port that n3's offer holds: rescinded too.
    rescinded = alloc.update_capacity({"n1": smaller,
                                       "n3": NODE - Resources(ports=((31050, 31050),))})
    assert rescinded == [first[2]]


def test_shrinking_keeps_the_oldest_offers_that_still_fit() -> None:
    alloc, _ = allocator(node=Resources(cpus=4, mem=4096))
    alloc.add_framework("a", ["r"])
    alloc.add_framework("b", ["r"])
    offer = alloc.allocate()[0]
    taken = alloc.take(offer.framework_id, [offer.id])
    alloc.give_back(taken, {"n1": Resources(cpus=2, mem=2048)})  # nothing tracked yet
    alloc.update_capacity({"n1": Resources(cpus=4, mem=4096)})
    # Two offers on one node: first a's whole node's worth came back; make two.
    alloc.track_used("a", "r", "n1", Resources(cpus=2, mem=2048))
    older = alloc.allocate()[0]  # b: cpus 2
    assert older.framework_id == "b" and older.resources.cpus == 2
    alloc.release_used("a", "r", "n1", Resources(cpus=1, mem=1024))
    newer = alloc.allocate()[0]
    assert newer.resources == Resources(cpus=1, mem=1024)
    rescinded = alloc.update_capacity({"n1": Resources(cpus=3.5, mem=4096)})
    assert rescinded == [newer]
    assert alloc.offers() == [older]


def test_tasks_hold_resources_until_released_even_after_their_framework_left() -> None:
    alloc, _ = allocator()
    alloc.add_framework("a", ["r"])
    alloc.add_framework("b", ["r"])
    alloc.track_used("a", "r", "n1", Resources(cpus=3, mem=1024, ports=((31000, 31009),)))
    offer = alloc.allocate()[0]
    assert offer.framework_id == "b"
    assert offer.resources == Resources(cpus=1, mem=3072, disk=1000, ports=((31010, 31099),))
    assert alloc.remove_framework("b") == [offer]
    assert alloc.remove_framework("b") == []
    assert alloc.frameworks() == ["a"]
    assert alloc.remove_framework("a") == []
    alloc.add_framework("c", ["r"])
    assert alloc.allocate()[0].resources == offer.resources  # a's tasks still hold theirs
    alloc.decline("c", [o.id for o in alloc.offers()], refuse_seconds=0)
    alloc.release_used("a", "r", "n1", Resources(cpus=3, mem=1024, ports=((31000, 31009),)))
    assert alloc.allocate()[0].resources == NODE
    alloc.release_used("a", "r", "n1", Resources(cpus=1))  # more than held: harmless


def test_offers_expire_after_offer_timeout() -> None:
    alloc, clock = allocator(nodes=1, offer_timeout=10)
    alloc.add_framework("a", ["r"])
    [first] = alloc.allocate()
    alloc.update_capacity({"n1": NODE, "n2": NODE, "n3": NODE})
    clock.advance(5)
    later = alloc.allocate()
    assert len(later) == 2
    clock.advance(4.9)
    assert alloc.expired() == []
    clock.advance(0.1)
    assert alloc.expired() == [first]
    assert len(alloc.offers()) == 2
    clock.advance(5)
    assert sorted(o.id for o in alloc.expired()) == sorted(o.id for o in later)
    assert alloc.offers() == []
    assert len(alloc.allocate()) == 3  # expired offers are free again


def test_re_adding_a_framework_changes_its_roles_and_keeps_filters_of_kept_roles() -> None:
    alloc, _ = allocator(nodes=1)
    alloc.add_framework("a", ["r", "s"])
    for offer in alloc.allocate():
        alloc.decline("a", [offer.id], refuse_seconds=100)
    for offer in alloc.allocate():
        alloc.decline("a", [offer.id], refuse_seconds=100)
    assert alloc.allocate() == []  # both roles filtered on n1
    alloc.add_framework("a", ["r", "t"])
    assert [o.role for o in alloc.allocate()] == ["t"]


def test_shares_use_explicit_totals_when_given() -> None:
    alloc, _ = allocator()
    alloc.add_framework("a", ["r"])
    alloc.update_capacity({"n1": Resources(cpus=2, mem=1024)},
                          totals={"n1": Resources(cpus=8, mem=8192)})
    alloc.track_used("a", "r", "n1", Resources(cpus=1))
    assert alloc.shares() == {"a": 0.125}
    assert alloc.role_shares() == {"r": 0.125}
    offer = alloc.allocate()[0]
    assert offer.resources == Resources(cpus=1, mem=1024)
    assert alloc.shares() == {"a": 0.25}


def test_offer_ids_never_repeat_across_allocators() -> None:
    clock = FakeClock()
    one, two = Allocator(clock), Allocator(clock)
    for alloc in (one, two):
        alloc.update_capacity({"n1": NODE})
        alloc.add_framework("a", ["r"])
    assert one.allocate()[0].id != two.allocate()[0].id


def test_nodes_are_visited_from_a_rotating_start() -> None:
    alloc, _ = allocator(nodes=3)
    alloc.add_framework("a", ["r"])
    alloc.add_framework("b", ["r"])
    firsts = []
    for _ in range(3):
        offers = alloc.allocate()
        firsts.append((offers[0].node, offers[0].framework_id))
        for offer in offers:
            alloc.decline(offer.framework_id, [offer.id], refuse_seconds=0)
    # Each round a starts from another node: no node always goes to the same framework.
    assert [node for node, _ in firsts] == ["n1", "n2", "n3"]
    assert {fw for _, fw in firsts} == {"a"}
