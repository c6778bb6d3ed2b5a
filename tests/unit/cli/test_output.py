"""Printing: aligned columns, cells, describe's field lines and ages."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from corral.api.resources import BY_KIND
from corral.cli.describe import _age, event_lines, field_lines
from corral.cli.output import Columns, cell_text, object_name, print_object


def test_columns_align_like_kubectl() -> None:
    cols = Columns(["Name", "Ready", "Age"])
    text = cols.render([["web-1", "1/1", "5m"], ["a-much-longer-name", "0/1", "10s"]])
    assert text.splitlines() == [
        "NAME                 READY   AGE",
        "web-1                1/1     5m",
        "a-much-longer-name   0/1     10s",
    ]


def test_later_rows_keep_earlier_widths() -> None:
    cols = Columns(["Name", "Age"])
    cols.render([["long-name-here", "1s"]])
    assert cols.render([["x", "2s"]], header=False) == "x                2s"


def test_cells() -> None:
    assert [cell_text(v) for v in (None, "", True, 3, ["a", "b"])] == \
        ["<none>", "<none>", "true", "3", "a,b"]


def test_object_names() -> None:
    assert object_name(BY_KIND["Deployment"], {"metadata": {"name": "web"}}) == \
        "deployment.apps/web"
    out = io.StringIO()
    print_object({"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "p"}}]},
                 "name", out)
    assert out.getvalue() == "pod/p\n"


def test_field_lines_nest() -> None:
    assert field_lines({"replicas": 2, "selector": {"app": "web"}, "ports": [{"port": 80}]}) == [
        "  replicas:  2", "  selector:", "    app:  web", "  ports:", "    - port:  80"]


def test_age_units() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert _age("2024-01-01T11:59:00Z", now) == "60s"
    assert _age("2024-01-01T11:55:00Z", now) == "5m"
    assert _age("2024-01-01T09:00:00Z", now) == "3h"
    assert _age("nonsense", now) == "<unknown>"


def test_no_events() -> None:
    assert event_lines([]) == ["Events:  <none>"]
