"""``/master/state`` (and ``/state``): the leading master's view in Mesos' JSON
shape, enough for Mesos tooling to list frameworks, agents ("slaves") and tasks.

Times are seconds since the epoch (floats), as Mesos writes them; resources are
objects of numbers (``{"cpus": 2, "mem": 1024, "disk": 0, "ports": "[31000-31009]"}``).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from corral.objects import Obj, parse_time, status
from corral.offers.frameworks import Registered
from corral.offers.protocol import VERSION

if TYPE_CHECKING:
    from corral.offers.master import MesosMaster


def epoch(value: object) -> float | None:
    when = parse_time(value)
    return when.timestamp() if when is not None else None


def master_pid(url: str) -> str:
    return f"master@{urlsplit(url).netloc}"


def framework_state(fw: Registered, extra: Obj) -> Obj:
    info = fw.info()
    st = status(fw.obj)
    out: Obj = {"id": fw.id, "name": info["name"], "user": info["user"],
                "role": fw.roles[0], "roles": fw.roles,
                "failover_timeout": fw.failover_timeout,
                "capabilities": fw.capabilities, "hostname": info.get("hostname", ""),
                "webui_url": info.get("webui_url", ""),
                "checkpoint": bool(info.get("checkpoint")),
                "active": fw.connected, "connected": fw.connected, "recovered": False,
                "registered_time": epoch(st.get("registeredTime")),
                "reregistered_time": epoch(st.get("reregisteredTime")),
                "unregistered_time": epoch(st.get("unregisteredTime")) or 0,
                "tasks": [], "completed_tasks": [], "unreachable_tasks": [], "offers": [],
                "executors": [], "completed_executors": [],
                "resources": _empty(), "used_resources": _empty(),
                "offered_resources": _empty()}
    out.update(extra)
    return out


def _empty() -> Obj:
    return {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}


def master_state(master: MesosMaster, url: str, started: float) -> Obj:
    """The state document (see the module docstring)."""
    pid = master_pid(url)
    host = urlsplit(url).hostname or ""
    active: list[Obj] = []
    completed: list[Obj] = []
    for fw in master.frameworks.values():
        extra: dict[str, Any] = master.framework_extra(fw)
        (completed if fw.removed else active).append(framework_state(fw, extra))
    agents = master.agents_state()
    return {"version": VERSION, "git_sha": "", "build_date": "", "build_time": 0,
            "build_user": "corral", "start_time": started, "elected_time": started,
            "id": master.master_info.get("id", ""), "pid": pid, "hostname": host or
            socket.gethostname(), "leader": pid, "leader_info": master.master_info,
            "activated_slaves": sum(1 for a in agents if a.get("active")),
            "deactivated_slaves": sum(1 for a in agents if not a.get("active")),
            "unreachable_slaves": 0, "log_dir": "", "flags": {},
            "slaves": agents, "frameworks": active, "completed_frameworks": completed,
            "orphan_tasks": [], "unregistered_frameworks": []}
