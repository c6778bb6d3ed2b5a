"""The table of HorizontalPodAutoscalers, with kubectl's columns and its TARGETS
cell (printers.go formatHPAMetrics): "cpu: 45%/50%", "memory: 120Mi/200Mi",
at most two metrics then "+ N more...", "<unknown>" before the first reading."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from corral.api.tables.columns import AGE, NAME, Cell, Column, Object, Printer, age_of, name_of

HPA_COLUMNS = (
    NAME,
    Column("Reference", "scaleTargetRef points to the target resource to scale."),
    Column("Targets", "metrics contains the specifications for which to use to calculate "
           "the desired replica count."),
    Column("MinPods", "minReplicas is the lower limit for the number of replicas to which "
           "the autoscaler can scale down."),
    Column("MaxPods", "maxReplicas is the upper limit for the number of replicas to which "
           "the autoscaler can scale up."),
    Column("Replicas", "currentReplicas is current number of replicas of pods managed by "
           "this autoscaler, as last seen by the autoscaler."),
    AGE,
)
_SHOWN = 2  # metrics printed before "+ N more..."
UNKNOWN = "<unknown>"


def format_metrics(specs: list[Any], statuses: list[Any]) -> str:
    if not specs:
        return "<none>"
    shown = [_metric(spec, statuses[i] if i < len(statuses) else None)
             for i, spec in enumerate(specs)]
    text = ", ".join(shown[:_SHOWN])
    if len(shown) > _SHOWN:
        text += f" + {len(shown) - _SHOWN} more..."
    return text


def _metric(spec: dict[str, Any], status: dict[str, Any] | None) -> str:
    kind = spec.get("type")
    seen = status or {}
    if kind in ("Resource", "ContainerResource"):
        return _resource_metric(spec, seen)
    field = {"Pods": "pods", "Object": "object", "External": "external"}.get(str(kind))
    if field is None:
        return "<unknown type>"
    source = spec.get(field) or {}
    target = source.get("target") or {}
    wanted = target.get("averageValue") or target.get("value") or UNKNOWN
    current = (seen.get(field) or {}).get("current") or {}
    now = current.get("averageValue") or current.get("value") or UNKNOWN
    if target.get("averageValue") is not None and field != "pods":
        wanted = f"{wanted} (avg)"
    return f"{now}/{wanted}"


def _resource_metric(spec: dict[str, Any], seen: dict[str, Any]) -> str:
    kind = spec.get("type")
    field = "resource" if kind == "Resource" else "containerResource"
    source, current = spec.get(field) or {}, (seen.get(field) or {}).get("current")
    target = source.get("target") or {}
    name = str(source.get("name", ""))
    if kind == "ContainerResource":
        name = f"{name}/{source.get('container', '')}"
    if target.get("averageValue") is not None:
        value = (current or {}).get("averageValue") or UNKNOWN
        return f"{name}: {value}/{target['averageValue']}"
    utilization = (current or {}).get("averageUtilization")
    now = UNKNOWN if utilization is None else f"{utilization}%"
    wanted = target.get("averageUtilization")
    return f"{name}: {now}/{'<auto>' if wanted is None else f'{wanted}%'}"


def hpa_cells(hpa: Object, now: datetime) -> list[Cell]:
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    min_replicas = spec.get("minReplicas")
    return [name_of(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            format_metrics(spec.get("metrics") or [], status.get("currentMetrics") or []),
            "<unset>" if min_replicas is None else str(min_replicas),
            int(spec.get("maxReplicas") or 0), int(status.get("currentReplicas") or 0),
            age_of(hpa, now)]


HPAS = Printer(HPA_COLUMNS, hpa_cells)
