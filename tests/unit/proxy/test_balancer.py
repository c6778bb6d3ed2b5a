"""Balancer choices, with a fake clock for affinity expiry."""

from __future__ import annotations

from collections import Counter

from corral.client.clock import FakeClock
from corral.proxy.balancer import Balancer
from corral.proxy.model import Algorithm, Backend, ClientIPAffinity

A, B, C = Backend("127.0.0.1", 8001), Backend("127.0.0.1", 8002), Backend("127.0.0.1", 8003)


def first_choices(balancer: Balancer, count: int, client: str = "10.0.0.1") -> Counter[int]:
    return Counter(balancer.candidates(client)[0][1] for _ in range(count))


def test_round_robin_takes_turns_and_offers_the_rest_as_fallbacks() -> None:
    balancer = Balancer()
    balancer.set_backends([A, B, C])
    assert first_choices(balancer, 9) == {8001: 3, 8002: 3, 8003: 3}
    assert sorted(balancer.candidates("x")) == sorted([A.address, B.address, C.address])


def test_only_ready_backends_are_candidates() -> None:
    balancer = Balancer()
    balancer.set_backends([A, Backend(B.ip, B.port, ready=False), C, A])
    assert balancer.backends == [A.address, C.address]
    assert first_choices(balancer, 4) == {8001: 2, 8003: 2}


def test_no_backends_no_candidates() -> None:
    balancer = Balancer()
    balancer.set_backends([Backend(A.ip, A.port, ready=False)])
    assert balancer.candidates("x") == []


def test_least_connections_prefers_the_idle_and_shares_ties() -> None:
    balancer = Balancer(Algorithm.LEAST_CONNECTIONS)
    balancer.set_backends([A, B, C])
    balancer.opened(A.address)
    balancer.opened(A.address)
    balancer.opened(B.address)
    assert balancer.candidates("x")[0] == C.address
    balancer.opened(C.address)
    assert balancer.candidates("x")[0] in (B.address, C.address)
    balancer.closed(A.address)
    balancer.closed(A.address)
    assert balancer.candidates("x")[0] == A.address
    assert balancer.open_connections(A.address) == 0


def test_connections_of_a_removed_backend_still_count_when_it_returns() -> None:
    balancer = Balancer(Algorithm.LEAST_CONNECTIONS)
    balancer.set_backends([A, B])
    balancer.opened(A.address)
    balancer.set_backends([B])
    balancer.set_backends([A, B])
    assert balancer.candidates("x")[0] == B.address


def test_client_ip_affinity_sticks_until_idle_for_the_timeout() -> None:
    clock = FakeClock()
    balancer = Balancer(affinity=ClientIPAffinity(timeout_seconds=10), clock=clock)
    balancer.set_backends([A, B, C])
    chosen = balancer.candidates("10.0.0.7")[0]
    balancer.stick("10.0.0.7", chosen)
    for _ in range(5):
        clock.advance(9)  # each use renews the timeout
        assert balancer.candidates("10.0.0.7")[0] == chosen
        balancer.stick("10.0.0.7", chosen)
    clock.advance(10)
    assert first_choices(balancer, 3, "10.0.0.7") == {8001: 1, 8002: 1, 8003: 1}


def test_affinity_falls_back_when_the_sticky_backend_leaves() -> None:
    balancer = Balancer(affinity=ClientIPAffinity())
    balancer.set_backends([A, B])
    balancer.stick("c", A.address)
    balancer.set_backends([B, C])
    assert A.address not in balancer.candidates("c")


def test_affinity_off_remembers_nothing() -> None:
    balancer = Balancer()
    balancer.set_backends([A, B])
    balancer.stick("c", A.address)
    assert first_choices(balancer, 2, "c") == {8001: 1, 8002: 1}
