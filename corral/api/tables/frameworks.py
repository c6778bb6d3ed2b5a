"""The table of Mesos Frameworks: who they are, their roles, their DRF share and
what they hold."""

from __future__ import annotations

from datetime import datetime

from corral.api.tables.columns import AGE, NAME, Cell, Column, Object, Printer, age_of, name_of

FRAMEWORK_COLUMNS = (
    NAME,
    Column("Framework", "The framework's name (FrameworkInfo.name)."),
    Column("Roles", "The roles it subscribed with."),
    Column("Status", "Subscribed, Disconnected (within its failover timeout) or Removed."),
    Column("Share", "Its dominant share of the cluster (DRF)."),
    Column("Tasks", "Tasks not yet terminal.", "integer"),
    Column("Allocs", "Allocs its accepted offers hold.", "integer"),
    AGE,
    Column("User", "The user its tasks are for.", priority=1),
    Column("Failover", "Its failover timeout.", priority=1),
)


def framework_cells(fw: Object, now: datetime) -> list[Cell]:
    spec, status = fw.get("spec") or {}, fw.get("status") or {}
    share = status.get("dominantShare")
    timeout = spec.get("failoverTimeout")
    return [name_of(fw), spec.get("name") or "", ",".join(spec.get("roles") or ["*"]),
            status.get("phase") or "Pending",
            f"{float(share):.3f}" if isinstance(share, (int, float)) else "<none>",
            int(status.get("tasks") or 0), int(status.get("allocs") or 0), age_of(fw, now),
            spec.get("user") or "", f"{float(timeout):g}s" if timeout is not None else "0s"]


FRAMEWORKS = Printer(FRAMEWORK_COLUMNS, framework_cells)
