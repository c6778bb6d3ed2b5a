"""`corral events [-n NS|-A] [--for KIND/NAME]`: the cluster's Events, oldest
first, as `kubectl events` prints them."""

from __future__ import annotations

import argparse

from corral.api.resources import BY_KIND
from corral.api.tables import to_table
from corral.cli.scale import target_args
from corral.cli.verb import add_client_flags, namespace_of, run_verb
from corral.client.http import Client
from corral.objects import Obj


def _last_seen(event: Obj) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or event.get("firstTimestamp") or "")


async def _events(client: Client, args: argparse.Namespace) -> int:
    namespace = None if args.all_namespaces else namespace_of(args)
    selector = None
    if args.for_object:
        res, name = target_args([args.for_object])
        selector = f"involvedObject.kind={res.kind},involvedObject.name={name}"
    page = await client.list_all("Event", namespace, field_selector=selector)
    events = sorted(page.items, key=_last_seen)
    if not events:
        where = "any namespace" if namespace is None else f"{namespace} namespace"
        print(f"No events found in {where}.")
        return 0
    table = to_table(BY_KIND["Event"], events, include_object="None")
    shown = [i for i, c in enumerate(table["columnDefinitions"]) if c.get("priority", 0) == 0]
    columns = [table["columnDefinitions"][i]["name"].upper() for i in shown]
    rows = [[str(row["cells"][i]) for i in shown] for row in table["rows"]]
    if namespace is None:
        columns = ["NAMESPACE", *columns]
        rows = [[str(e["metadata"].get("namespace", "")), *r] for e, r in zip(events, rows)]
    widths = [max(len(x) for x in col) for col in zip(columns, *rows)]
    for line in [columns, *rows]:
        print("   ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("events", help="list Events, oldest first")
    p.add_argument("--for", dest="for_object", default=None, metavar="KIND/NAME",
                   help="only the Events of this object")
    add_client_flags(p, all_namespaces=True)
    p.set_defaults(run=lambda args: run_verb(args, _events))
