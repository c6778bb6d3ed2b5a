"""What a standing Alloc's live tasks take, kept as direct launches come (the
pool's fit check of every ACCEPT): the same answer as adding up every task the
Alloc names, whatever happens between two checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from corral.client.clock import FakeClock
from corral.offers.launch import TASK_RESOURCES_ANNOTATION, Plan
from corral.offers.liveneed import LiveNeed, Parsed
from corral.offers.resources import Resources
from corral.offers.tasks import FRAMEWORK_LABEL, TaskBook

Obj = dict[str, Any]


def cpus(value: float) -> list[Obj]:
    return [{"name": "cpus", "type": "SCALAR", "scalar": {"value": value}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]


def alloc(tasks: dict[str, float], states: dict[str, str] | None = None) -> Obj:
    wire = {t: cpus(c) for t, c in tasks.items()}
    return {"metadata": {"name": "x", "namespace": "mesos", "labels": {FRAMEWORK_LABEL: "fw"},
                         "annotations": {TASK_RESOURCES_ANNOTATION: orjson.dumps(wire).decode()}},
            "spec": {"nodeName": "n1", "tasks": [{"id": t, "command": ["true"]} for t in tasks]},
            "status": {"tasks": [{"id": t, "state": s} for t, s in (states or {}).items()]}}


@dataclass
class Launch:
    plan: Plan


def launch(**tasks: float) -> Launch:
    return Launch(Plan(tasks=[{"id": t, "command": ["true"]} for t in tasks],
                       resources={t: cpus(c) for t, c in tasks.items()}))


def test_live_tasks_are_added_up_and_ended_ones_dropped() -> None:
    book, parsed, held = TaskBook(FakeClock()), Parsed(), LiveNeed()
    obj = alloc({"a": 0.1, "b": 0.2, "c": 0.4})
    book.observe(alloc({"a": 0.1, "b": 0.2, "c": 0.4}, {"a": "TASK_RUNNING",
                                                         "b": "TASK_FINISHED"}), {})
    held.sync(obj, [], parsed, book.tasks, "fw")
    assert held.ids == {"a", "b", "c"}  # every task named, ended or not (duplicates)
    # b ended; c is STAGING (live), a RUNNING
    assert held.need(book.tasks, "fw") == Resources(cpus=0.5, mem=64)
    assert held.need(book.tasks, "fw", [Resources(cpus=1), None]) == Resources(cpus=1.5, mem=64)

    # A direct launch, then another: added as they come, the Alloc unchanged.
    first, second = launch(d=0.1), launch(e=0.3, f=0.3)
    held.sync(obj, [first], parsed, book.tasks, "fw")
    held.sync(obj, [first, second], parsed, book.tasks, "fw")
    assert held.ids == {"a", "b", "c", "d", "e", "f"}
    assert held.need(book.tasks, "fw") == Resources(cpus=1.2, mem=160)

    # a ends (the agent's feed): its share goes at the next check.
    book.streamed("fw", "mesos/x", "n1", {"id": "a", "state": "TASK_FINISHED", "seq": 5})
    assert held.need(book.tasks, "fw") == Resources(cpus=1.1, mem=128)

    # The first launch failed (taken back out): counted from scratch again.
    held.sync(obj, [second], parsed, book.tasks, "fw")
    assert held.ids == {"a", "b", "c", "e", "f"}
    assert held.need(book.tasks, "fw") == Resources(cpus=1.0, mem=96)

    # The write recorded them: the new Alloc is what counts (unwritten: none).
    written = alloc({"a": 0.1, "b": 0.2, "c": 0.4, "e": 0.3, "f": 0.3})
    held.sync(written, [], parsed, book.tasks, "fw")
    assert held.ids == {"a", "b", "c", "e", "f"}
    assert held.need(book.tasks, "fw") == Resources(cpus=1.0, mem=96)


def test_it_answers_as_adding_up_every_task_does() -> None:
    """Many checks with launches, ends and writes between them, against the sum over
    everything the Alloc names (a task the book does not know is live)."""
    book, parsed, held = TaskBook(FakeClock()), Parsed(), LiveNeed()
    obj, unwritten, ended = alloc({}), list[Launch](), set[str]()
    for step in range(200):
        if step % 7 == 3:  # a write: the unwritten ones join the spec
            names = {str(t["id"]): 0.1 for t in obj["spec"]["tasks"]}
            names.update({str(t["id"]): 0.1 for u in unwritten for t in u.plan.tasks})
            obj, unwritten = alloc(names), []
        if step % 11 == 5 and unwritten:
            unwritten.pop()  # a launch that failed
        unwritten.append(launch(**{f"t{step}": 0.1}))
        if step % 3 == 0 and step > 5:  # an earlier task ends
            book.streamed("fw", "mesos/x", "n1",
                          {"id": f"t{step - 5}", "state": "TASK_FINISHED", "seq": step})
            ended.add(f"t{step - 5}")
        held.sync(obj, unwritten, parsed, book.tasks, "fw")
        named = [str(t["id"]) for t in obj["spec"]["tasks"]] + [
            str(t["id"]) for u in unwritten for t in u.plan.tasks]
        assert held.ids == set(named)
        live = [t for t in named if t not in ended]
        assert held.need(book.tasks, "fw") == Resources(cpus=0.1 * len(live),
                                                          mem=32 * len(live))


def test_a_new_version_with_the_same_spec_is_not_counted_again() -> None:
    """The agent's status writes and the echo of the pool's own write bring the
    Alloc again with the same spec (same uid and generation, same resources): what
    was counted stands; a new generation is counted afresh."""
    book, parsed, held = TaskBook(FakeClock()), Parsed(), LiveNeed()

    def version(tasks: dict[str, float], generation: int, states: dict[str, str]) -> Obj:
        obj = alloc(tasks, states)
        obj["metadata"].update(uid="u-1", generation=generation)
        return obj

    first = version({"a": 0.1, "b": 0.2}, 1, {})
    held.sync(first, [], parsed, book.tasks, "fw")
    counted = held.live
    again = version({"a": 0.1, "b": 0.2}, 1, {"a": "TASK_RUNNING"})
    held.sync(again, [], parsed, book.tasks, "fw")
    assert held.obj is again and held.live is counted
    assert held.need(book.tasks, "fw") == Resources(cpus=0.3, mem=64)

    grown = version({"a": 0.1, "b": 0.2, "c": 0.4}, 2, {})
    held.sync(grown, [], parsed, book.tasks, "fw")
    assert held.live is not counted and held.ids == {"a", "b", "c"}
    assert held.need(book.tasks, "fw") == Resources(cpus=0.7, mem=96)

    other = version({"a": 0.1, "b": 0.2, "c": 0.4}, 2, {})  # another uid: another Alloc
    other["metadata"]["uid"] = "u-2"
    before = held.live
    held.sync(other, [], parsed, book.tasks, "fw")
    assert held.live is not before
