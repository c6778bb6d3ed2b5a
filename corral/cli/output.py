"""Printing objects: YAML, JSON, kind/name, and kubectl-style aligned columns."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import yaml

from corral.api.resources import BY_KIND, Resource
from corral.cli.verb import qualified_kind
from corral.objects import Obj

COLUMN_GAP = "   "  # kubectl separates columns by three spaces


def with_type_meta(res: Resource, obj: Obj) -> Obj:
    """List items come without kind/apiVersion; kubectl prints them with."""
    return {"apiVersion": res.api_version, "kind": res.kind, **obj}


def as_list(items: list[Obj]) -> Obj:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
            "items": items}


def to_yaml(obj: Obj) -> str:
    return str(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False,
                              allow_unicode=True))


def to_json(obj: Obj) -> str:
    return json.dumps(obj, indent=4, ensure_ascii=False)


def object_name(res: Resource, obj: Obj) -> str:
    """"deployment.apps/web", the -o name form."""
    return f"{qualified_kind(res)}/{obj.get('metadata', {}).get('name', '')}"


def print_object(obj: Obj, fmt: str, out: TextIO = sys.stdout) -> None:
    """Print one object (or List) as yaml, json or name."""
    if fmt == "json":
        out.write(to_json(obj) + "\n")
    elif fmt == "yaml":
        out.write(to_yaml(obj))
    elif fmt == "name":
        items = obj["items"] if obj.get("kind") == "List" else [obj]
        out.writelines(object_name(BY_KIND[item["kind"]], item) + "\n" for item in items)
    else:
        raise ValueError(f"unknown output format {fmt!r}")


def cell_text(value: Any) -> str:
    if value is None or value == "":
        return "<none>"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(cell_text(v) for v in value) or "<none>"
    return str(value)


class Columns:
    """Aligned columns. Widths grow with the rows seen so far, so rows printed
    later (get -w) stay aligned with the header when they fit."""

    def __init__(self, headers: Sequence[str]) -> None:
        self.headers = [h.upper() for h in headers]
        self.widths = [len(h) for h in self.headers]

    def fit(self, rows: Sequence[Sequence[str]]) -> None:
        for row in rows:
            self.widths = [max(w, len(c)) for w, c in zip(self.widths, row, strict=False)]

    def line(self, row: Sequence[str]) -> str:
        last = len(row) - 1
        cells = [c if i == last else c.ljust(self.widths[i]) for i, c in enumerate(row)]
        return COLUMN_GAP.join(cells).rstrip()

    def render(self, rows: Sequence[Sequence[str]], header: bool = True) -> str:
        self.fit(rows)
        lines = [self.line(self.headers)] if header else []
        lines += [self.line(r) for r in rows]
        return "\n".join(lines)
