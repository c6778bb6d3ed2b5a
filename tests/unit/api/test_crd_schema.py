"""The structural-schema rules and a custom object's prune → default → validate,
on the cases the kubectl tests do not reach (arrays, nesting, int-or-string,
nullable, additionalProperties)."""

from __future__ import annotations

from typing import Any

from corral.api.crd.schema import default, prune, validate
from corral.api.crd.structural import check_structural
from corral.api.field_errors import FieldErrors

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "ports": {"type": "array", "maxItems": 2, "items": {"type": "object", "required": ["port"],
              "properties": {"port": {"type": "integer", "maximum": 65535},
                             "protocol": {"type": "string", "default": "TCP"}}}},
    "target": {"x-kubernetes-int-or-string": True},
    "note": {"type": "string", "nullable": True},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
}}}}


def _fields(obj: dict[str, Any]) -> dict[str, str]:
    return {c.field: c.message for c in validate(obj, SCHEMA)}


def test_defaults_reach_every_array_item_and_pruning_names_what_it_dropped() -> None:
    obj = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
           "spec": {"ports": [{"port": 80, "extra": 1}, {"port": 81}], "labels": {"a": "b"}},
           "other": True}
    assert prune(obj, SCHEMA, root=True) == ["spec.ports[0].extra", "other"]
    default(obj, SCHEMA)
    assert obj["spec"]["ports"] == [{"port": 80, "protocol": "TCP"},
                                    {"port": 81, "protocol": "TCP"}]
    assert obj["metadata"] == {"name": "a"} and _fields(obj) == {}


def test_errors_are_placed_at_the_item_and_map_key() -> None:
    obj = {"spec": {"ports": [{"port": 70000}, {}, {"port": 1}], "target": 1.5,
                    "note": None, "labels": {"a": 3}}}
    fields = _fields(obj)
    assert fields["spec.ports"].startswith("Too many: 3")
    assert fields["spec.ports[0].port"].endswith("should be less than or equal to 65535")
    assert fields["spec.ports[1].port"] == "Required value"
    assert "must be of type" in fields["spec.target"]
    assert "must be of type string" in fields["spec.labels.a"]
    assert "spec.note" not in fields  # nullable


def test_non_structural_schemas_are_named_place_by_place() -> None:
    errs = FieldErrors()
    check_structural({"type": "object", "properties": {
        "a": {"type": "array"},
        "b": {"type": "object", "properties": {"c": {"type": "string"}},
              "additionalProperties": {"type": "string"}},
        "d": {"anyOf": [{"type": "string"}]},
        "e": {"x-kubernetes-preserve-unknown-fields": True},
        "f": {"type": "strnig"},
    }}, "s", errs)
    assert {c.field for c in errs} == {"s.properties[a].items",
                                       "s.properties[b].additionalProperties",
                                       "s.properties[d].type", "s.properties[d].anyOf[0].type",
                                       "s.properties[f].type"}
