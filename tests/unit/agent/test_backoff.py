"""CrashLoopBackOff with a fake clock: doubling, cap, reset after a long run."""

from __future__ import annotations

from corral.agent.runtime.backoff import CrashLoopBackOff


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_delays_double_from_10s_to_a_5min_cap() -> None:
    backoff = CrashLoopBackOff(FakeClock())
    delays = [backoff.record_exit("pod/c", ran_for=1) for _ in range(8)]
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]


def test_waiting_until_the_delay_has_passed() -> None:
    clock = FakeClock()
    backoff = CrashLoopBackOff(clock)
    assert not backoff.in_backoff("pod/c")  # never crashed: start at once
    backoff.record_exit("pod/c", ran_for=1)
    backoff.record_exit("pod/c", ran_for=1)
    clock.now += 15
    assert backoff.in_backoff("pod/c") and backoff.remaining("pod/c") == 5
    clock.now += 5
    assert not backoff.in_backoff("pod/c")


def test_ten_minutes_of_running_resets_the_count() -> None:
    backoff = CrashLoopBackOff(FakeClock())
    for _ in range(5):
        backoff.record_exit("pod/c", ran_for=30)
    assert backoff.current_delay("pod/c") == 160
    assert backoff.record_exit("pod/c", ran_for=599) == 300
    assert backoff.record_exit("pod/c", ran_for=600) == 10


def test_keys_are_independent_and_forgettable() -> None:
    backoff = CrashLoopBackOff(FakeClock())
    backoff.record_exit("a/c", ran_for=0)
    backoff.record_exit("a/c", ran_for=0)
    assert backoff.record_exit("b/c", ran_for=0) == 10
    backoff.forget("a/c")
    assert backoff.remaining("a/c") == 0 and backoff.record_exit("a/c", ran_for=0) == 10
