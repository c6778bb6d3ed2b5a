"""The pure rules of task arrays: sizing, handing out ranges, work stealing,
progress from a Job's status and its Allocs."""

from __future__ import annotations

from corral.controllers.array_plan import (
    AllocState,
    TaskSize,
    hand_out,
    pool,
    progress,
    sizing,
    steal,
)
from corral.indexset import IndexSet


def alloc(name: str, ranges: str, *, claimed: str = "", completed: str = "",
          failed: str = "", node: str = "n1", slots: int = 2, failures: int = 0,
          deleting: bool = False, running: int = 0) -> AllocState:
    return AllocState(name, f"uid-{name}", slots, node, deleting, "Running",
                      IndexSet.parse(ranges), IndexSet.parse(claimed), IndexSet.parse(completed),
                      IndexSet.parse(failed), failures, running)


def test_sizing_spreads_over_nodes_and_never_outgrows_the_largest() -> None:
    nodes = [(4000, 8 << 30)] * 4
    assert sizing(32, 2000, nodes, TaskSize(0, 0)).__dict__ == {"allocs": 4, "slots": 8}
    assert sizing(32, 3, nodes, TaskSize(0, 0)).__dict__ == {"allocs": 3, "slots": 1}
    # 1 cpu per task, 4 cpus per node: 32 at once need 8 Allocs of 4.
    assert sizing(32, 2000, nodes, TaskSize(1000, 0)).__dict__ == {"allocs": 8, "slots": 4}
    assert sizing(4, 100, nodes, TaskSize(8000, 0)) is None  # fits no node


def test_progress_counts_live_allocs_over_the_recorded_status() -> None:
    live = [alloc("a", "0-9", completed="0-4", failed="5", failures=3),
            alloc("b", "10-19", completed="10-11", failures=1, running=2)]
    prog = progress({"completedIndexes": "20-29", "failedIndexes": "11",
                     "taskArray": {"removedFailures": 4}}, live)
    assert prog.done.format() == "0-4,10-11,20-29"
    assert prog.failed.format() == "5"  # 11 was retried elsewhere and completed
    assert (prog.failures, prog.running) == (8, 2)


def test_pool_is_what_no_alloc_holds_and_no_one_finished() -> None:
    allocs = [alloc("a", "0-9"), alloc("b", "20-29", deleting=True, claimed="20-24")]
    prog = progress({"completedIndexes": "10-12"}, allocs)
    assert pool(40, prog, allocs).format() == "13-19,30-39"


def test_hand_out_fills_the_least_busy_first() -> None:
    busy, idle = alloc("busy", "0-9", claimed="0-3"), alloc("idle", "10-11", completed="10-11")
    # 30 free + 10 unfinished over two Allocs: a share of 20 each.
    out = hand_out(IndexSet.parse("20-49"), [busy, idle], IndexSet.parse("10-11"))
    assert {k: v.format() for k, v in out.items()} == {"idle": "10-11,20-39",
                                                       "busy": "0-9,40-49"}


def test_steal_takes_half_of_the_largest_unclaimed_stock() -> None:
    idle = alloc("idle", "0-9", claimed="0-9", completed="0-9")
    busy = alloc("busy", "10-49", claimed="10-19", completed="10-15")
    move = steal([idle, busy], IndexSet.parse("0-9,10-15"))
    assert move is not None and (move.victim, move.thief) == ("busy", "idle")
    assert move.victim_ranges.format() == "10-34" and move.thief_ranges.format() == "0-9,35-49"
    # Claimed work never moves; a tiny stock is not worth a move.
    assert steal([idle, alloc("b", "10-13", claimed="10-11")], IndexSet.parse("0-9")) is None


def test_a_pending_alloc_gives_up_all_its_stock() -> None:
    idle = alloc("idle", "0-1", claimed="0-1", completed="0-1")
    pending = alloc("pending", "2-21", node="")
    move = steal([idle, pending], IndexSet.parse("0-1"))
    assert move is not None and move.victim_ranges.format() == ""


def test_an_alloc_whose_executor_was_lost_takes_no_work_and_gives_up_its_stock() -> None:
    """Its agent wrote phase Failed (ExecutorLost) and it runs nothing more: the
    work it holds must move, or the Job waits for it for ever."""
    lost = AllocState.of({"metadata": {"name": "lost", "uid": "u1"},
                          "spec": {"slots": 2, "nodeName": "n1", "ranges": "0-19"},
                          "status": {"phase": "Failed", "reason": "ExecutorLost",
                                     "claimed": "0-3", "completed": "0", "running": 2}})
    assert lost.lost and not lost.idle(IndexSet())
    assert not AllocState.of({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"},
                              "status": {"phase": "Failed"}}).lost  # being removed already
    idle = alloc("idle", "20-21", claimed="20-21", completed="20-21")
    move = steal([lost, idle], IndexSet.parse("0,20-21"))
    assert move is not None and (move.victim, move.thief) == ("lost", "idle")
    assert move.victim_ranges.format() == "0-3"  # all it had not started
    assert steal([idle, lost], IndexSet.parse("0,20-21")) == move
    # It never takes work, nor steals.
    assert hand_out(IndexSet.parse("30-39"), [lost, idle], IndexSet()).keys() == {"idle"}
    starved = AllocState.of({"metadata": {"name": "starved", "uid": "u2"},
                             "spec": {"slots": 1, "nodeName": "n1", "ranges": "40"},
                             "status": {"phase": "Failed", "completed": "40"}})
    assert steal([starved, alloc("busy", "50-89")], IndexSet.parse("40")) is None
