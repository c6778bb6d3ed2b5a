"""ACCEPT's operations read into what corral runs: TaskInfos checked as Mesos
checks them, fitted into the offers, and the Alloc that will hold them.

    operations ──► plan_launch(offered) ──► Plan: tasks to run (LaunchedTask entries,
                                             their Mesos resources), and the
                                             refused ones (TASK_ERROR, why)
    Plan ──► alloc_body(...) ──► an Alloc bound to the offer's node, owned by the
             Framework, resources = what the tasks take, slots = one per task

Whom a task runs as is Mesos': CommandInfo.user, else FrameworkInfo.user; a
user the framework's principal may not run tasks as (RBAC, offercycle.py asks)
is TASK_ERROR REASON_TASK_UNAUTHORIZED; none at all is the node's pod user.

A LAUNCH_GROUP goes all or nothing: one bad task refuses the group. Only
CommandInfo tasks run (corral's executor starts commands); a custom executor,
a Docker container or URIs to fetch are refused with a TASK_ERROR that says so,
rather than being ignored.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Container
from dataclasses import dataclass, field

import orjson

from corral.api.framework_validation import MAX_TASKS_PER_ALLOC
from corral.objects import Obj
from corral.offers.resources import ResourceError, Resources
from corral.offers.tasks import FRAMEWORK_LABEL, ROLE_ANNOTATION, ROLE_LABEL

ALLOC_NAMESPACE = "mesos"  # where frameworks' Allocs live (`kubectl get allocs -n mesos`)
RESOURCES_ANNOTATION = "corral.dev/mesos-resources"  # the Alloc's Mesos resources, JSON
TASK_RESOURCES_ANNOTATION = "corral.dev/mesos-task-resources"  # task id → resources
# Held by the leading master until it has recorded how the Alloc's tasks ended:
# the agent's last status (TASK_KILLED, ...) is kept, not lost with the object.
TASKS_FINALIZER = "corral.dev/mesos-tasks"
KILL_GRACE_SECONDS = 3.0  # Mesos' default kill grace for command tasks
BAD_ID = re.compile(r"[\x00-\x1f\x7f/\\\s]")


@dataclass
class Refused:
    task_id: str
    message: str
    agent_id: str = ""
    reason: str = "REASON_TASK_INVALID"


@dataclass
class Plan:
    tasks: list[Obj] = field(default_factory=list)  # spec.tasks entries
    resources: dict[str, list[Obj]] = field(default_factory=dict)  # task id → Mesos list
    sizes: dict[str, Resources] = field(default_factory=dict)  # task id → those, parsed
    used: Resources = field(default_factory=Resources)
    refused: list[Refused] = field(default_factory=list)


def task_ids(operations: list[Obj]) -> list[tuple[str, str]]:
    """(task id, agent id) of every task the operations would launch (for updates
    about all of them when the offers themselves are invalid)."""
    out = []
    for op in operations:
        for info in _infos(op):
            task_id = (info.get("task_id") or {}).get("value") if isinstance(info, dict) else None
            agent = (info.get("agent_id") or {}).get("value") if isinstance(info, dict) else None
            out.append((str(task_id or ""), str(agent or "")))
    return out


def _infos(op: Obj) -> list[Obj]:
    if op.get("type") == "LAUNCH":
        return list((op.get("launch") or {}).get("task_infos") or [])
    if op.get("type") == "LAUNCH_GROUP":
        return list(((op.get("launch_group") or {}).get("task_group") or {}).get("tasks") or [])
    return []


def task_user(info: object, framework_user: str) -> str:
    """Whom a TaskInfo runs as: CommandInfo.user, else FrameworkInfo.user ("" for
    the node's pod user)."""
    command = info.get("command") if isinstance(info, dict) else None
    user = command.get("user") if isinstance(command, dict) else None
    return user if isinstance(user, str) and user else framework_user


def task_users(operations: list[Obj], framework_user: str) -> set[str]:
    """The users the operations' tasks would run as (to be authorized)."""
    return {u for op in operations for info in _infos(op)
            if (u := task_user(info, framework_user))}


def plan_launch(operations: list[Obj], offered: Resources, node: str, framework_id: str,
                known: Container[str], framework_user: str = "",
                allowed_users: frozenset[str] | set[str] = frozenset()) -> Plan:
    """Fit the operations' tasks into ``offered`` on ``node``, in order; a task
    whose user is not in ``allowed_users`` is refused."""
    plan = Plan()
    left = offered
    taken = _Taken(known)
    for op in operations:
        kind = op.get("type")
        if kind not in ("LAUNCH", "LAUNCH_GROUP"):
            continue  # RESERVE, CREATE, ...: corral has no reservations or volumes
        group = f"g-{uuid.uuid4().hex[:8]}" if kind == "LAUNCH_GROUP" else None
        problem = _group_problem(op) if group else ""
        batch: list[tuple[Obj, Resources, list[Obj]]] = []
        refused: list[Refused] = []
        for info in _infos(op):
            task_id = _task_id(info)
            user = task_user(info, framework_user)
            if user and user not in allowed_users and not problem:
                # Mesos' words when its run_tasks ACL says no.
                refused.append(Refused(task_id, f"Not authorized to launch as user '{user}'",
                                       node, "REASON_TASK_UNAUTHORIZED"))
                continue
            error = problem or _task_problem(info, node, task_id, taken)
            res: Resources | None = None
            if not error:
                res, error = _resources(info, left)
            if error or res is None:
                refused.append(Refused(task_id, error, node))
                continue
            taken.add(task_id)
            left = left - res
            batch.append((_launched(info, task_id, framework_id, res, group, user), res,
                          list(info.get("resources") or [])))
        if group and refused:  # all or nothing: the others are refused too
            why = refused[0].message
            refused += [Refused(t["id"], f"Task group refused: {why}", node, refused[0].reason)
                        for t, _, _ in batch]
            for _, res, _ in batch:
                left = left + res
            batch = []
        plan.refused += refused
        for task, res, wire in batch:
            plan.tasks.append(task)
            plan.resources[task["id"]] = wire
            plan.sizes[task["id"]] = res
            plan.used = plan.used + res
    if len(plan.tasks) > MAX_TASKS_PER_ALLOC:
        plan.refused += [Refused(t["id"], f"More than {MAX_TASKS_PER_ALLOC} tasks in one "
                                          "ACCEPT", node) for t in plan.tasks]
        plan.tasks, plan.resources, plan.sizes, plan.used = [], {}, {}, Resources()
    return plan


def _task_id(info: object) -> str:
    if isinstance(info, dict) and isinstance(info.get("task_id"), dict):
        return str(info["task_id"].get("value") or "")
    return ""


def _group_problem(op: Obj) -> str:
    executor = (op.get("launch_group") or {}).get("executor")
    if not isinstance(executor, dict):
        return "LAUNCH_GROUP needs 'executor' (an ExecutorInfo of type DEFAULT)"
    if executor.get("type", "DEFAULT") != "DEFAULT":
        return "corral runs task groups with its default executor only (type DEFAULT)"
    return ""


class _Taken:
    """Task ids in use: the framework's (``known``, asked, not copied: it may hold
    every task of a long burst) and this ACCEPT's own."""

    def __init__(self, known: Container[str]) -> None:
        self.known, self.new = known, set[str]()

    def __contains__(self, task_id: str) -> bool:
        return task_id in self.new or task_id in self.known

    def add(self, task_id: str) -> None:
        self.new.add(task_id)


def _task_problem(info: object, node: str, task_id: str, taken: _Taken) -> str:
    if not isinstance(info, dict):
        return "A TaskInfo must be an object"
    if not task_id:
        return "Task ID must be a non-empty 'task_id.value'"
    if BAD_ID.search(task_id) or task_id in (".", ".."):
        return "Task ID must not contain '/', '\\\\', whitespace or control characters"
    if task_id in taken:
        return f"Task has duplicate ID: {task_id}"
    if not isinstance(info.get("name"), str):
        return "Task needs a 'name'"
    agent = (info.get("agent_id") or {}).get("value") if isinstance(
        info.get("agent_id"), dict) else None
    if agent != node:
        return f"Task uses agent {agent!r}, but its offers are for agent {node!r}"
    if info.get("executor") is not None:
        return "Custom executors are not supported: give the task a 'command'"
    container = info.get("container")
    if isinstance(container, dict) and container.get("type", "MESOS") != "MESOS":
        return "corral runs processes: only containers of type MESOS without an image"
    command = info.get("command")
    if not isinstance(command, dict):
        return "Task needs a 'command' (CommandInfo)"
    if command.get("uris"):
        return "corral does not fetch 'command.uris': put what the task needs on the node"
    if not _argv(command):
        return "Task's command has no 'value' to run"
    return ""


def _resources(info: Obj, left: Resources) -> tuple[Resources | None, str]:
    try:
        res = _read_resources(info.get("resources") or [])
    except ResourceError as err:
        return None, f"Task uses invalid resources: {err}"
    if res.is_empty():
        return None, "Task uses no resources"
    if not res.fits(left):
        return None, (f"Task uses more resources {_show(res)} than available "
                      f"{_show(left)}")
    return res, ""


# A task's resources as read before, by their JSON: a framework's tasks mostly ask
# for the same (a burst: every one), and ACCEPT reads each task's.
_READ: dict[bytes, Resources] = {}
_READ_KEPT = 256


def _read_resources(items: object) -> Resources:
    try:
        key = orjson.dumps(items)
    except TypeError:  # (what orjson cannot encode is read every time)
        return Resources.from_mesos(items, "resources")
    res = _READ.get(key)
    if res is None:
        res = Resources.from_mesos(items, "resources")  # a ResourceError is not kept
        if len(_READ) >= _READ_KEPT:
            _READ.clear()
        _READ[key] = res
    return res


def _show(res: Resources) -> str:
    parts = [f"{name}:{getattr(res, name):g}" for name in ("cpus", "mem", "disk")
             if getattr(res, name)]
    if res.ports:
        parts.append("ports:[" + ",".join(f"{b}-{e}" for b, e in res.ports) + "]")
    return "; ".join(parts) or "nothing"


def _argv(command: Obj) -> list[str]:
    """CommandInfo as an argv: shell (the default) runs ``value`` with /bin/sh -c;
    otherwise ``value`` is the program and ``arguments`` its argv."""
    value = command.get("value")
    if not isinstance(value, str) or not value:
        return []
    if command.get("shell", True):
        return ["/bin/sh", "-c", value]
    args = [str(a) for a in command.get("arguments") or []]
    return [value, *args[1:]]


def _launched(info: Obj, task_id: str, framework_id: str, res: Resources,
              group: str | None, user: str) -> Obj:
    command = info["command"]
    env = {str(v.get("name")): str(v.get("value") or "")
           for v in (command.get("environment") or {}).get("variables") or []
           if isinstance(v, dict) and v.get("name")}
    env["MESOS_FRAMEWORK_ID"] = framework_id
    ports = [str(p) for begin, end in res.ports for p in range(begin, end + 1)]
    if ports:
        env["PORTS"] = ",".join(ports)
        env.update({f"PORT{i}": p for i, p in enumerate(ports)})
    grace = ((info.get("kill_policy") or {}).get("grace_period") or {}).get("nanoseconds")
    task: Obj = {"id": task_id, "name": str(info.get("name") or ""),
                 "command": _argv(command),
                 "env": [{"name": k, "value": v} for k, v in env.items()],
                 "resources": requests_of(res),
                 "killGraceSeconds": float(grace) / 1e9 if isinstance(grace, int)
                 else KILL_GRACE_SECONDS}
    if group:
        task["group"] = group
    if user:
        task["user"] = user  # authorized by the master; the agent runs it as this user
    return task


def requests_of(res: Resources) -> dict[str, str]:
    """As Alloc quantities, leaving out what is zero (no cgroup limit of 0); a
    copy of the answer kept for the value (every task of a burst is one size)."""
    return dict(_requests_of(res))


@functools.lru_cache(maxsize=256)
def _requests_of(res: Resources) -> dict[str, str]:
    out = res.requests()
    if not res.cpus:
        out.pop("cpu", None)
    if not res.mem:
        out.pop("memory", None)
    return out


def alloc_body(name: str, framework: Obj, role: str, node: str, plan: Plan) -> Obj:
    """The Alloc that runs ``plan``'s tasks on ``node``, owned by the Framework."""
    fw_meta = framework["metadata"]
    return {
        "apiVersion": "corral.dev/v1", "kind": "Alloc",
        "metadata": {
            "name": name, "namespace": ALLOC_NAMESPACE,
            "labels": {FRAMEWORK_LABEL: fw_meta["name"], ROLE_LABEL: _label_value(role)},
            "annotations": {
                ROLE_ANNOTATION: role,
                RESOURCES_ANNOTATION: orjson.dumps(plan.used.to_mesos()).decode(),
                TASK_RESOURCES_ANNOTATION: orjson.dumps(plan.resources).decode()},
            "finalizers": [TASKS_FINALIZER],
            "ownerReferences": [{"apiVersion": "corral.dev/v1", "kind": "Framework",
                                 "name": fw_meta["name"], "uid": fw_meta["uid"],
                                 "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"nodeName": node, "resources": requests_of(plan.used),
                 "slots": max(1, len(plan.tasks)), "tasks": plan.tasks,
                 "terminationGracePeriodSeconds": 10},
    }


def alloc_name(framework_id: str) -> str:
    prefix = framework_id[:40].rstrip(".-") or "fw"
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _label_value(role: str) -> str:
    """A role as a label value ('*' and '/' are not allowed there; Mesos' default
    role "*" is the empty value)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", role)[:63].strip("._-")


def alloc_resources(alloc: Obj) -> Resources:
    """What a framework Alloc holds, in Mesos units (from its annotation)."""
    text = ((alloc.get("metadata") or {}).get("annotations") or {}).get(RESOURCES_ANNOTATION)
    return _held(text if isinstance(text, str) else "[]")


def alloc_task_resources(alloc: Obj) -> dict[str, list[Obj]]:
    """Task id → its Mesos resources (from the Alloc's annotation). Shared between
    callers: read it, never change it."""
    text = ((alloc.get("metadata") or {}).get("annotations") or {}).get(
        TASK_RESOURCES_ANNOTATION)
    return _task_resources(text if isinstance(text, str) else "{}")


# The annotations are parsed once per text: every launch sizes its Alloc from them
# (a JSON document of every task it holds), and every write and watch event of
# the Alloc brings the same text again until a write changes it.
@functools.lru_cache(maxsize=64)
def _held(text: str) -> Resources:
    try:
        return Resources.from_mesos(orjson.loads(text or "[]"))
    except (ValueError, ResourceError):
        return Resources()


@functools.lru_cache(maxsize=64)
def _task_resources(text: str) -> dict[str, list[Obj]]:
    try:
        data = orjson.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
