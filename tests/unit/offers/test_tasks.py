"""The master's task book (status updates in order, re-sent until acknowledged,
lost with their node or Alloc) and the agent's side of a framework's tasks, both
pure and driven here with a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from corral.agent.framework_tasks import FrameworkTasks, sandbox_name
from corral.client.clock import FakeClock
from corral.offers import tasks as tasks_module
from corral.offers.launch import plan_launch, task_users
from corral.offers.resources import Resources
from corral.offers.tasks import FRAMEWORK_LABEL, TaskBook

Obj = dict[str, Any]


def alloc(states: dict[str, str], tasks: tuple[str, ...] = ("a", "b"), kill: str = "") -> Obj:
    return {"metadata": {"name": "x", "namespace": "mesos", "labels": {FRAMEWORK_LABEL: "fw"}},
            "spec": {"nodeName": "n1", "tasks": [
                {"id": t, "command": ["true"], **({"kill": True} if t == kill else {})}
                for t in tasks]},
            "status": {"tasks": [{"id": t, "state": s} for t, s in states.items()]}}


def test_updates_go_in_order_one_at_a_time_until_acknowledged() -> None:
    clock = FakeClock()
    book = TaskBook(clock, retry_seconds=10)
    book.observe(alloc({}), {})
    assert [t.state for t in book.of_framework("fw")] == ["TASK_STAGING"] * 2
    assert book.due("fw") == []  # staging is not news
    book.observe(alloc({"a": "TASK_RUNNING"}), {})
    book.observe(alloc({"a": "TASK_FINISHED"}), {})
    starting = book.due("fw")
    assert [s["state"] for s in starting] == ["TASK_STARTING"]  # as Mesos' command executor
    assert book.acknowledge("fw", "a", starting[0]["uuid"])
    first = book.due("fw")
    assert [s["state"] for s in first] == ["TASK_RUNNING"]
    assert book.due("fw") == []  # not yet due again
    clock.advance(10)
    assert book.due("fw") == first  # re-sent, same uuid
    clock.advance(10)
    assert book.due("fw") == []  # the interval doubled
    assert not book.acknowledge("fw", "a", "wrong")
    assert book.acknowledge("fw", "a", first[0]["uuid"])
    finished = book.due("fw")
    assert [s["state"] for s in finished] == ["TASK_FINISHED"]
    assert not book.settled("mesos/x")  # b still staging, a not acknowledged
    book.acknowledge("fw", "a", finished[0]["uuid"])
    book.observe(alloc({"a": "TASK_FINISHED", "b": "TASK_FAILED"}), {})
    failed = book.due("fw")
    book.acknowledge("fw", "b", failed[0]["uuid"])
    assert book.settled("mesos/x")


def test_fresh_heads_go_out_once_and_retries_stay_the_ticks() -> None:
    clock = FakeClock()
    book = TaskBook(clock, retry_seconds=10)
    book.observe(alloc({"a": "TASK_RUNNING"}), {})
    starting = book.fresh("fw")
    assert [s["state"] for s in starting] == ["TASK_STARTING"]
    assert book.fresh("fw") == [] and book.due("fw") == []  # taken as sent
    assert book.acknowledge("fw", "a", starting[0]["uuid"])
    assert book.acknowledge("fw", "a", "nothing") is False
    running = book.fresh("fw")
    assert [s["state"] for s in running] == ["TASK_RUNNING"]  # the next, at once
    clock.advance(10)
    assert book.fresh("fw") == []  # a retry is not news
    assert book.due("fw") == running
    book.forget_framework("fw")
    book.observe(alloc({"b": "TASK_RUNNING"}, tasks=("b",)), {})
    assert book.due("fw") and book.fresh("fw") == []  # sent by due: not twice


def test_a_pruned_task_a_late_status_still_names_is_not_news(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's status is written seconds apart: after the master has pruned an
    ended, acknowledged task from the spec (and ``completed`` let it go among
    newer ones), a status naming it must not make it a task launched directly."""
    monkeypatch.setattr(tasks_module, "COMPLETED_KEPT", 1)
    clock = FakeClock()
    book = TaskBook(clock)
    book.observe(alloc({"a": "TASK_FINISHED", "b": "TASK_FINISHED"}), {})
    while statuses := book.due("fw"):
        for st in statuses:
            book.acknowledge("fw", st["task_id"]["value"], st["uuid"])
    book.prune("fw", ["a", "b"])
    assert list(book.completed["fw"]) == ["b"]  # a has been let go
    stale = alloc({"a": "TASK_FINISHED", "b": "TASK_FINISHED"}, tasks=())
    assert book.observe(stale, {}) == [] and book.due("fw") == []
    assert book.streamed("fw", "mesos/x", "n1", {"id": "a", "state": "TASK_FINISHED",
                                                 "seq": 9}) is None
    clock.advance(tasks_module.PRUNED_KEPT_SECONDS)
    book.observe(alloc({"c": "TASK_FINISHED"}, tasks=("c",)), {})
    book.acknowledge("fw", "c", book.due("fw")[0]["uuid"])
    book.prune("fw", ["c"])  # remembered pruned ids older than that are let go
    assert [t.id for t in book.observe(stale, {})] == ["a", "b"]  # past the horizon: learnt again


def test_node_loss_and_a_vanished_alloc() -> None:
    book = TaskBook(FakeClock())
    book.observe(alloc({"a": "TASK_RUNNING", "b": "TASK_FINISHED"}), {})
    lost = book.node_lost("n1")
    assert [(t.id, t.state) for t in lost] == [("a", "TASK_LOST")]
    book.partition_aware.add("fw")
    book.forget_framework("fw")
    book.observe(alloc({"a": "TASK_RUNNING"}), {})
    assert [t.state for t in book.node_lost("n1")] == ["TASK_UNREACHABLE", "TASK_UNREACHABLE"]
    gone = book.alloc_gone(alloc({}), node_ready=False)
    assert [t.state for t in gone] == ["TASK_GONE", "TASK_GONE"]
    # In order per task: a's STARTING first, b's UNREACHABLE (never ran before it).
    assert [s["state"] for s in book.due("fw")] == ["TASK_STARTING", "TASK_UNREACHABLE"]


def test_one_status_write_from_handed_over_to_ended_reports_every_step() -> None:
    """The agent writes at most every 200 ms: a /bin/true can go from handed over
    to finished in one write; the framework still hears STARTING, RUNNING,
    FINISHED (with when it started), while a task that never started (its command
    could not run) goes straight to FAILED, as Mesos reports a failed launch."""
    book = TaskBook(FakeClock())
    book.observe({**alloc({}), "status": {"tasks": [
        {"id": "a", "state": "TASK_FINISHED", "started": "2026-01-01T00:00:01Z",
         "time": "2026-01-01T00:00:02Z", "message": "Command exited with status 0"},
        {"id": "b", "state": "TASK_FAILED", "reason": "REASON_COMMAND_EXECUTOR_FAILED",
         "message": "exec: nope"}]}}, {})
    seen: dict[str, list[tuple[str, Any]]] = {"a": [], "b": []}
    while due := book.due("fw"):
        for st in due:
            seen[st["task_id"]["value"]].append((st["state"], st.get("message")))
            book.acknowledge("fw", st["task_id"]["value"], st["uuid"])
    assert seen["a"] == [("TASK_STARTING", None), ("TASK_RUNNING", None),
                         ("TASK_FINISHED", "Command exited with status 0")]
    assert seen["b"] == [("TASK_FAILED", "exec: nope")]
    assert [s["timestamp"] for s in book.tasks[("fw", "a")].statuses][1:] == [
        1767225601.0, 1767225601.0, 1767225602.0]
    # Ended and acknowledged, then dropped from the Alloc's spec: history only.
    book.prune("fw", ["a", "b"])
    assert book.of_framework("fw") == [] and len(book.completed["fw"]) == 2


def test_task_killing_reaches_only_frameworks_that_asked() -> None:
    book = TaskBook(FakeClock())
    book.observe(alloc({"a": "TASK_RUNNING"}, tasks=("a",)), {})
    book.acknowledge("fw", "a", book.due("fw")[0]["uuid"])  # STARTING
    book.acknowledge("fw", "a", book.due("fw")[0]["uuid"])  # RUNNING
    book.observe(alloc({"a": "TASK_KILLING"}, tasks=("a",)), {})
    assert book.due("fw") == []
    book.observe(alloc({"a": "TASK_KILLED"}, tasks=("a",)), {})
    assert [s["state"] for s in book.due("fw")] == ["TASK_KILLED"]


def test_agent_side_launch_kill_and_exit_states() -> None:
    tasks = FrameworkTasks.from_alloc(alloc({}, tasks=("a", "b", "c"), kill="c"))
    launched = tasks.to_launch()
    assert [launch.id for launch in launched] == ["a", "b"]
    assert tasks.state("a") == "TASK_STARTING"  # handed over: RUNNING once it started
    tasks.started("a")
    assert tasks.state("a") == "TASK_RUNNING" and tasks.states["a"]["started"]
    assert tasks.state("c") == "TASK_KILLED"  # killed before it ever ran
    assert tasks.to_launch() == []  # each once
    tasks.update(alloc({}, tasks=("a", "b", "c"), kill="b"))
    assert tasks.to_kill(100.0) == [("b", 15)]
    assert tasks.state("b") == "TASK_KILLING"
    assert tasks.to_kill(101.0) == [] and tasks.to_kill(104.0) == [("b", 9)]
    tasks.exited("b", 137, 9, "Error", "", stopping=False)
    tasks.exited("a", 3, None, "Error", "", stopping=False)
    assert (tasks.state("a"), tasks.state("b")) == ("TASK_FAILED", "TASK_KILLED")
    assert tasks.states["a"]["message"] == "Command exited with status 3"
    assert tasks.states["a"]["started"]  # kept: the master reports RUNNING first
    assert tasks.all_terminal()
    # The master drops ended tasks from the spec (the Alloc runs on): forgotten.
    tasks.update(alloc({}, tasks=("d",)))
    assert set(tasks.states) == set() and [t.id for t in tasks.to_launch()] == ["d"]
    assert sandbox_name("../x/y") == ".._x_y" and sandbox_name("..") == "_.."


def test_launch_plan_fits_tasks_into_the_offer_and_refuses_groups_whole() -> None:
    def info(task_id: str, cpus: float, **extra: Any) -> Obj:
        return {"name": task_id, "task_id": {"value": task_id}, "agent_id": {"value": "n1"},
                "command": {"value": "true"}, **extra,
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}}]}

    ops = [{"type": "LAUNCH", "launch": {"task_infos": [info("a", 1), info("b", 1),
                                                        info("c", 0.5)]}},
           {"type": "LAUNCH_GROUP", "launch_group": {"executor": {"type": "DEFAULT"},
                                                     "task_group": {"tasks": [
                                                         info("g1", 0.25), info("g2", 9)]}}}]
    plan = plan_launch(ops, Resources(cpus=1.5), "n1", "fw", known=set())
    assert [t["id"] for t in plan.tasks] == ["a", "c"]
    assert plan.used == Resources(cpus=1.5)
    assert {r.task_id for r in plan.refused} == {"b", "g1", "g2"}
    assert plan.tasks[0]["command"] == ["/bin/sh", "-c", "true"]
    ports = info("p", 0.1)
    ports["resources"].append({"name": "ports", "type": "RANGES",
                               "ranges": {"range": [{"begin": 10005, "end": 10006}]}})
    plan = plan_launch([{"type": "LAUNCH", "launch": {"task_infos": [ports]}}],
                       Resources(cpus=1, ports=((10000, 10010),)), "n1", "fw", set())
    env = {e["name"]: e["value"] for e in plan.tasks[0]["env"]}
    assert env["PORTS"] == "10005,10006" and env["PORT1"] == "10006"


def test_a_task_runs_as_its_command_user_else_the_frameworks_if_allowed() -> None:
    def info(task_id: str, user: str | None = None) -> Obj:
        command: Obj = {"value": "true", **({"user": user} if user is not None else {})}
        return {"name": task_id, "task_id": {"value": task_id}, "agent_id": {"value": "n1"},
                "command": command,
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]}

    ops = [{"type": "LAUNCH", "launch": {"task_infos": [
        info("own"), info("alice", "alice"), info("root", "root"), info("blank", "")]}}]
    assert task_users(ops, "bob") == {"bob", "alice", "root"}
    plan = plan_launch(ops, Resources(cpus=1), "n1", "fw", set(), "bob", {"alice", "bob"})
    assert {t["id"]: t.get("user") for t in plan.tasks} == {
        "own": "bob", "alice": "alice", "blank": "bob"}
    (refused,) = plan.refused
    assert (refused.task_id, refused.reason, refused.message) == (
        "root", "REASON_TASK_UNAUTHORIZED", "Not authorized to launch as user 'root'")
    # No user anywhere: nothing to authorize, the node's pod user runs it.
    plan = plan_launch(ops[:1], Resources(cpus=1), "n1", "fw", set(), "", set())
    assert plan.tasks[0]["id"] == "own" and "user" not in plan.tasks[0]


def test_a_direct_launch_runs_before_its_spec_and_is_kept_until_named() -> None:
    """The master hands tasks to the agent before it writes them: they run, are
    reported (with a seq that grows), stay until the spec names them, and leave
    with the spec as every task does; an executor's task the spec never named
    (an agent restart in between) is adopted as launched."""
    changes: list[Obj] = []
    tasks = FrameworkTasks.from_alloc(alloc({}, tasks=("a",)))
    tasks.on_change = changes.append
    assert [t.id for t in tasks.to_launch()] == ["a"]
    assert tasks.launch_direct([{"id": "d", "command": ["true"]}, {"id": "a"}], {}) == ["d"]
    assert [t.id for t in tasks.to_launch()] == ["d"]
    tasks.started("d")
    tasks.update(alloc({}, tasks=("a",)))  # a store read from before d was written
    assert "d" in tasks.specs and tasks.state("d") == "TASK_RUNNING"
    assert [c["id"] for c in tasks.status_fields()["tasks"]] == ["a", "d"]
    seqs = [c["seq"] for c in changes if c["id"] == "d"]
    assert seqs == sorted(seqs) and len(set(seqs)) == 2
    tasks.launch_direct([], {"d": 1.0})
    assert tasks.to_kill(10.0) == [("d", 15)]
    tasks.update(alloc({}, tasks=("a", "d")))  # written, without the kill yet
    assert tasks.direct == {} and tasks.specs["d"]["kill"] is True
    tasks.exited("d", 143, 15, "Error", "", stopping=False)
    assert tasks.state("d") == "TASK_KILLED"
    tasks.update(alloc({}, tasks=("a",)))  # ended, acknowledged, pruned: forgotten
    assert "d" not in tasks.states
    tasks.adopt(["e"])
    assert tasks.state("e") == "TASK_RUNNING" and tasks.to_launch() == []
    tasks.exited("e", 0, None, "Completed", "", stopping=False)
    assert tasks.state("e") == "TASK_FINISHED"


def test_the_newest_of_feed_and_store_wins_and_unwritten_tasks_are_learnt() -> None:
    """A state streamed from the agent is not undone by an older store read (seq);
    a task the agent reports that the spec does not name (launched directly by a
    master that died before writing it) is known to the next one, with its state."""
    book = TaskBook(FakeClock())
    book.launched("fw", "mesos/x", "n1", [{"id": "a"}], {"a": []})
    assert book.streamed("fw", "mesos/x", "n1", {"id": "a", "state": "TASK_RUNNING",
                                                  "seq": 5, "started": "2026-01-01T00:00:01Z"})
    book.observe(alloc({"a": "TASK_STARTING"}, tasks=("a",)) | {"status": {"tasks": [
        {"id": "a", "state": "TASK_STARTING", "seq": 4}]}}, {})
    assert book.tasks[("fw", "a")].state == "TASK_RUNNING"
    assert book.streamed("fw", "mesos/x", "n1", {"id": "a", "state": "TASK_RUNNING",
                                                  "seq": 5}) is None  # said already
    fresh = TaskBook(FakeClock())
    fresh.observe({**alloc({}, tasks=()), "status": {"tasks": [
        {"id": "orphan", "state": "TASK_RUNNING", "seq": 7, "started": "2026-01-01T00:00:01Z"}]}},
        {})
    assert fresh.tasks[("fw", "orphan")].state == "TASK_RUNNING"
    assert fresh.tasks[("fw", "orphan")].alloc == "mesos/x"
