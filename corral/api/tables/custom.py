"""Printing a custom resource: NAME, then its version's additionalPrinterColumns
(each a simple JSONPath into the object); a CRD that declares none gets AGE,
as apiextensions defaults it. Columns of type date print as an age ("5m").
CRDs themselves print NAME and CREATED AT, as kube-apiserver prints them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from corral.api.crd.jsonpath import lookup
from corral.api.resources import Resource
from corral.api.tables.age import age
from corral.api.tables.columns import AGE, NAME, Cell, Column, Object, Printer, name_of

_AGE_PATH = ".metadata.creationTimestamp"
_DEFAULT_COLUMNS = ({"name": "Age", "type": "date", "jsonPath": _AGE_PATH},)


def custom_printer(res: Resource) -> Printer:
    declared = res.custom.printer_columns or _DEFAULT_COLUMNS
    columns = tuple(_column(c) for c in declared)

    def cells(obj: Object, now: datetime) -> list[Cell]:
        row: list[Any] = [name_of(obj)]
        row += [_cell(obj, c, now) for c in declared]
        return cast(list[Cell], row)

    return Printer((NAME, *columns), cells)


def _column(declared: dict[str, Any]) -> Column:
    if declared.get("jsonPath") == _AGE_PATH and declared.get("name") == "Age":
        return AGE
    kind = declared.get("type", "string")
    return Column(declared.get("name", ""), declared.get("description", ""),
                  type="string" if kind == "date" else kind,
                  format=declared.get("format", ""), priority=int(declared.get("priority", 0)))


def _cell(obj: Object, declared: dict[str, Any], now: datetime) -> Any:
    value = lookup(obj, str(declared.get("jsonPath", "")))
    if value is None:
        return None  # kubectl prints <none>
    if declared.get("type") == "date":
        return age(value, now) if isinstance(value, str) else None
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


def _crd_cells(crd: Object, now: datetime) -> list[Cell]:
    return [name_of(crd), str(crd.get("metadata", {}).get("creationTimestamp", ""))]


CRDS = Printer((NAME, Column("Created At", "Time the CustomResourceDefinition was created.",
                            format="date-time")), _crd_cells)
