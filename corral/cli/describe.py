"""`corral describe KIND NAME [-n NS]`: an object summary, then its Events.

    Name / Namespace / Labels / Annotations / CreationTimestamp   every kind
    Spec and Status as indented fields, Conditions as a table
    Events: the events whose involvedObject is this object (by uid), oldest first
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from corral.api.resources import BY_KIND, Resource
from corral.cli.apply import LAST_APPLIED
from corral.cli.output import Columns
from corral.cli.verb import UsageError, add_client_flags, namespace_of, resource_arg, run_verb
from corral.client.http import Client
from corral.objects import Obj, parse_time, status

INDENT = "  "


def _map_lines(title: str, values: dict[str, Any] | None) -> list[str]:
    items = sorted((values or {}).items())
    if not items:
        return [f"{title + ':':<20}<none>"]
    first, *rest = [f"{k}={v}" for k, v in items]
    return [f"{title + ':':<20}{first}"] + [f"{'':<20}{line}" for line in rest]


def field_lines(value: Any, depth: int = 1) -> list[str]:
    """Nested fields as kubectl describe shows them: "Key:  value", children indented."""
    pad = INDENT * depth
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines += field_lines(item, depth + 1)
            else:
                lines.append(f"{pad}{key}:  {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                sub = field_lines(item, depth + 1)
                lines.append(f"{pad}- {sub[0].strip()}" if sub else f"{pad}-")
                lines += sub[1:]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return lines


def _scalar(value: Any) -> str:
    if value is None or value == {} or value == []:
        return "<none>"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def conditions_table(status: Obj) -> list[str]:
    conditions = status.get("conditions") or []
    if not conditions:
        return []
    cols = Columns(["Type", "Status", "Reason", "Message"])
    rows = [[str(c.get("type", "")), str(c.get("status", "")), str(c.get("reason", "")),
             str(c.get("message", ""))] for c in conditions]
    return ["Conditions:"] + [INDENT + line for line in cols.render(rows).splitlines()]


def summary_lines(res: Resource, obj: Obj) -> list[str]:
    meta = obj.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    lines = [f"{'Name:':<20}{meta.get('name', '')}"]
    if res.namespaced:
        lines.append(f"{'Namespace:':<20}{meta.get('namespace', '')}")
    lines += _map_lines("Labels", meta.get("labels"))
    lines += _map_lines("Annotations", annotations)
    lines.append(f"{'CreationTimestamp:':<20}{meta.get('creationTimestamp', '')}")
    owners = meta.get("ownerReferences") or []
    if owners:
        lines.append(f"{'Controlled By:':<20}{owners[0].get('kind')}/{owners[0].get('name')}")
    if meta.get("deletionTimestamp"):
        lines.append(f"{'Terminating Since:':<20}{meta['deletionTimestamp']}")
    for section in ("spec", "data", "status"):
        body = obj.get(section)
        if section == "status" and isinstance(body, dict):
            body = {k: v for k, v in body.items() if k != "conditions"}
        if body:
            lines.append(f"{section.capitalize()}:")
            lines += field_lines(body)
    lines += conditions_table(status(obj))
    return lines


def _age(timestamp: str, now: datetime) -> str:
    then = parse_time(timestamp)
    if then is None:
        return "<unknown>"
    seconds = max(int((now - then).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:  # kubectl switches unit at twice the unit: 119s, 2m
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def event_lines(events: list[Obj], now: datetime | None = None) -> list[str]:
    if not events:
        return ["Events:  <none>"]
    now = now or datetime.now(UTC)

    def when(e: Obj) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime")
                   or e.get("metadata", {}).get("creationTimestamp") or "")

    cols = Columns(["Type", "Reason", "Age", "From", "Message"])
    rows = [[str(e.get("type", "")), str(e.get("reason", "")), _age(when(e), now),
             str((e.get("source") or {}).get("component", "") or e.get("reportingComponent", "")),
             str(e.get("message", "")).strip()] for e in sorted(events, key=when)]
    table = cols.render(rows).splitlines()
    underline = cols.line(["-" * len(h) for h in cols.headers])
    return ["Events:"] + [INDENT + line for line in [table[0], underline, *table[1:]]]


async def events_for(client: Client, res: Resource, obj: Obj) -> list[Obj]:
    meta = obj.get("metadata") or {}
    selector = [f"involvedObject.name={meta.get('name', '')}", f"involvedObject.kind={res.kind}"]
    if meta.get("uid"):
        selector.append(f"involvedObject.uid={meta['uid']}")
    ns = meta.get("namespace") or "default"
    if res.namespaced:
        selector.append(f"involvedObject.namespace={ns}")
    page = await client.list_all(BY_KIND["Event"], ns if res.namespaced else None,
                                 field_selector=",".join(selector))
    return page.items


async def describe(client: Client, res: Resource, name: str, namespace: str | None) -> str:
    obj = await client.get(res, name, namespace if res.namespaced else None)
    lines = summary_lines(res, obj)
    lines += event_lines(await events_for(client, res, obj))
    return "\n".join(lines)


async def _run(client: Client, args: argparse.Namespace) -> int:
    res = resource_arg(args.kind)
    names = list(args.names)
    if not names:
        page = await client.list_all(res, namespace_of(args) if res.namespaced else None,
                                     label_selector=args.selector)
        names = [o["metadata"]["name"] for o in page.items]
        if not names:
            raise UsageError(f"no {res.plural} found")
    print("\n\n".join([await describe(client, res, n, namespace_of(args)) for n in names]))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("describe", help="show an object in detail, with its events")
    p.add_argument("kind", help="resource type: pod, deploy, node, ...")
    p.add_argument("names", nargs="*", help="object names (default: all, or -l)")
    p.add_argument("-l", "--selector", default=None, help="label selector")
    add_client_flags(p)
    p.set_defaults(run=lambda args: run_verb(args, _run))
