"""`corral get KIND[,KIND] [NAME...] [-n NS|-A] [-l SEL] [-o wide|yaml|json|name] [-w]`.

Tables come from the server (Accept: as=Table), as kubectl asks for them: the
server chooses the columns and formats the cells; this module only aligns
them, adds NAMESPACE with -A, and hides priority>0 columns unless -o wide.
With -w the list is printed, then each watch event as one more row.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from corral.api.resources import RESOURCES, Resource
from corral.cli.output import Columns, as_list, cell_text, print_object, with_type_meta
from corral.cli.verb import UsageError, add_client_flags, qualified_kind, resource_arg, run_verb
from corral.client.http import Client, ServerUnreachable, resource_path
from corral.client.watch import stream_events
from corral.objects import Obj, meta

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
FORMATS = ("wide", "yaml", "json", "name")


@dataclass
class Request:
    """What one `get` asks for, after the command line is read."""
    resources: list[Resource]
    names: list[str]
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    label_selector: str | None
    output: str  # "", or one of FORMATS

    @property
    def many_kinds(self) -> bool:
        return len(self.resources) > 1


def parse_kinds(text: str) -> list[Resource]:
    if text == "all":
        return [r for r in RESOURCES if "all" in r.categories]
    return [resource_arg(part) for part in text.split(",") if part]


def build_request(args: argparse.Namespace) -> Request:
    resources = parse_kinds(args.kind)
    if args.names and len(resources) > 1:
        raise UsageError("names can be given with one resource type only")
    namespace = None if args.all_namespaces else (args.namespace or "default")
    return Request(resources, list(args.names), namespace, args.selector, args.output or "")


# -- tables ------------------------------------------------------------------

async def fetch_table(client: Client, res: Resource, req: Request, name: str | None = None,
                      ) -> Obj:
    ns = req.namespace if res.namespaced else None
    params: dict[str, Any] = {"labelSelector": req.label_selector}
    if name is None:
        params["limit"] = 500
    response = await client.raw("GET", resource_path(res, ns, name), params=params,
                                headers={"Accept": TABLE_ACCEPT})
    table: Obj = response.json()
    return table


class TablePrinter:
    """Turns server Tables into aligned text; remembers columns for watch rows."""

    def __init__(self, res: Resource, req: Request, definitions: list[Obj]) -> None:
        self.res = res
        self.req = req
        wide = req.output == "wide"
        self.visible = [i for i, d in enumerate(definitions)
                        if wide or int(d.get("priority", 0) or 0) == 0]
        headers = [definitions[i]["name"] for i in self.visible]
        self.show_namespace = req.namespace is None and res.namespaced
        self.columns = Columns((["NAMESPACE"] if self.show_namespace else []) + headers)
        self.header_printed = False

    def cells(self, row: Obj) -> list[str]:
        raw = row.get("cells") or []
        cells = [cell_text(raw[i]) if i < len(raw) else "" for i in self.visible]
        if self.req.many_kinds and cells:
            cells[0] = f"{qualified_kind(self.res)}/{cells[0]}"
        if self.show_namespace:
            meta = (row.get("object") or {}).get("metadata") or {}
            cells.insert(0, str(meta.get("namespace", "")))
        return cells

    def render(self, rows: list[Obj]) -> str:
        """Rows as text, with the header the first time only."""
        text = self.columns.render([self.cells(r) for r in rows], header=not self.header_printed)
        self.header_printed = True
        return text


def _no_resources(req: Request) -> str:
    if req.namespace is None:
        return "No resources found"
    return f"No resources found in {req.namespace} namespace."


async def print_tables(client: Client, req: Request) -> list[tuple[TablePrinter, str]]:
    """Print a table per kind; returns each printer with its list resourceVersion."""
    printed: list[tuple[TablePrinter, str]] = []
    any_rows = False
    for res in req.resources:
        tables = ([await fetch_table(client, res, req, n) for n in req.names] if req.names
                  else [await fetch_table(client, res, req)])
        rows = [row for t in tables for row in t.get("rows") or []]
        definitions: list[Obj] = next((t["columnDefinitions"] for t in tables
                            if t.get("columnDefinitions")), [])
        printer = TablePrinter(res, req, definitions)
        rv = str(meta(tables[0]).get("resourceVersion", ""))
        printed.append((printer, rv))
        if rows:
            if any_rows:
                print()
            print(printer.render(rows), flush=True)
            any_rows = True
    if not any_rows and not req.names:
        print(_no_resources(req), file=sys.stderr)
    return printed


# -- yaml / json / name --------------------------------------------------------

async def fetch_objects(client: Client, req: Request) -> list[Obj]:
    objs: list[Obj] = []
    for res in req.resources:
        ns = req.namespace if res.namespaced else None
        if req.names:
            objs += [with_type_meta(res, await client.get(res, n, ns)) for n in req.names]
        else:
            page = await client.list_all(res, ns, label_selector=req.label_selector)
            objs += [with_type_meta(res, o) for o in page.items]
    return objs


async def print_objects(client: Client, req: Request) -> None:
    objs = await fetch_objects(client, req)
    if len(req.names) == 1 and len(objs) == 1:
        print_object(objs[0], req.output)
    elif req.output == "name":
        print_object(as_list(objs), "name")
    elif objs or req.output != "name":
        print_object(as_list(objs), req.output)


# -- watch ---------------------------------------------------------------------

async def watch_rows(client: Client, req: Request, printer: TablePrinter, rv: str) -> None:
    res = printer.res
    ns = req.namespace if res.namespaced else None
    field = f"metadata.name={req.names[0]}" if len(req.names) == 1 else None
    params = {"watch": "1", "resourceVersion": rv, "labelSelector": req.label_selector,
              "fieldSelector": field}
    events = stream_events(client, resource_path(res, ns), params, None, ServerUnreachable,
                           headers={"Accept": TABLE_ACCEPT})
    async for event in events:
        definitions = event.object.get("columnDefinitions")
        if definitions and not printer.visible:  # the list had none to offer
            printer = TablePrinter(res, req, definitions)
        rows = event.object.get("rows") or []
        if event.type != "BOOKMARK" and rows:
            print(printer.render(rows), flush=True)


async def _run(client: Client, args: argparse.Namespace) -> int:
    req = build_request(args)
    if req.output in ("yaml", "json", "name"):
        if args.watch:
            raise UsageError("-w is supported with table output (default or -o wide) only")
        await print_objects(client, req)
        return 0
    printed = await print_tables(client, req)
    if args.watch:
        if len(printed) != 1:
            raise UsageError("watch is only supported on a single resource type")
        printer, rv = printed[0]
        await watch_rows(client, req, printer, rv)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("get", help="list objects as a table, or print them as yaml/json")
    p.add_argument("kind", help="resource type(s): pods, deploy, svc,no, all, ...")
    p.add_argument("names", nargs="*", help="object names (default: all)")
    p.add_argument("-l", "--selector", default=None, help="label selector, e.g. app=web")
    p.add_argument("-o", "--output", choices=FORMATS, default=None)
    p.add_argument("-w", "--watch", action="store_true", help="then stream changes")
    add_client_flags(p, all_namespaces=True)
    p.set_defaults(run=lambda args: run_verb(args, _run))

