"""Tables of cluster-wide bookkeeping: namespaces, leases, priority classes,
resource quotas, limit ranges."""

from __future__ import annotations

from datetime import datetime

from corral.api.tables.columns import AGE, NAME, Cell, Column, Object, Printer, age_of, name_of
from corral.objects import spec, status

NAMESPACE_COLUMNS = (NAME, Column("Status", "The status of the namespace"), AGE)


def namespace_cells(ns: Object, now: datetime) -> list[Cell]:
    return [name_of(ns), status(ns).get("phase", ""), age_of(ns, now)]


LEASE_COLUMNS = (
    NAME,
    Column("Holder", "holderIdentity contains the identity of the holder of a current lease."),
    AGE,
)


def lease_cells(lease: Object, now: datetime) -> list[Cell]:
    holder = spec(lease).get("holderIdentity") or ""
    return [name_of(lease), holder, age_of(lease, now)]


PRIORITYCLASS_COLUMNS = (
    NAME,
    Column("Value", "The priority of pods of this class.", "integer"),
    Column("Global-Default", "Whether this is the priority of pods without a class.",
           "boolean"),
    AGE,
    Column("PreemptionPolicy", "The policy for preempting pods of lower priority."),
)


def priorityclass_cells(pc: Object, now: datetime) -> list[Cell]:
    return [name_of(pc), int(pc.get("value", 0)), bool(pc.get("globalDefault", False)),
            age_of(pc, now), pc.get("preemptionPolicy") or "PreemptLowerPriority"]


RESOURCEQUOTA_COLUMNS = (
    NAME,
    AGE,
    Column("Request", "Request represents a minimum amount of cpu/memory that a container "
           "may consume."),
    Column("Limit", "Limits control the maximum amount of cpu/memory that a container may "
           "use independent of contention on the node."),
)


def resourcequota_cells(quota: Object, now: datetime) -> list[Cell]:
    """REQUEST and LIMIT as "used/hard" per resource, e.g. "pods: 2/10"; the
    limits.* resources go to LIMIT, all others to REQUEST."""
    status = quota.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        text = f"{resource}: {used.get(resource, '0')}/{hard[resource]}"
        (limits if resource.startswith("limits.") else requests).append(text)
    return [name_of(quota), age_of(quota, now), ", ".join(requests), ", ".join(limits)]


LIMITRANGE_COLUMNS = (
    NAME,
    Column("Created At", "CreationTimestamp is a timestamp representing the server time when "
           "this object was created."),
)


def limitrange_cells(lr: Object, now: datetime) -> list[Cell]:
    # kube-apiserver prints the creation time itself here (RFC 3339, UTC), not an age.
    return [name_of(lr), str((lr.get("metadata") or {}).get("creationTimestamp") or "")]


NAMESPACES = Printer(NAMESPACE_COLUMNS, namespace_cells)
LEASES = Printer(LEASE_COLUMNS, lease_cells)
PRIORITYCLASSES = Printer(PRIORITYCLASS_COLUMNS, priorityclass_cells)
RESOURCEQUOTAS = Printer(RESOURCEQUOTA_COLUMNS, resourcequota_cells)
LIMITRANGES = Printer(LIMITRANGE_COLUMNS, limitrange_cells)
