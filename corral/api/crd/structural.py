"""Is a CRD's openAPIV3Schema structural? (apiextensions' structural schema rules)

A structural schema names a non-empty ``type`` at every level it specifies
(except below x-kubernetes-preserve-unknown-fields or for
x-kubernetes-int-or-string), describes arrays by one ``items`` schema, and uses
none of the JSON-Schema features that make a value's shape undecidable
($ref, dependencies, additionalItems, ...). Only such a schema can drive
pruning and defaulting, so apiextensions.k8s.io/v1 refuses anything else."""

from __future__ import annotations

from typing import Any

from corral.api.field_errors import FieldErrors

TYPES = ("object", "array", "string", "integer", "number", "boolean")
# JSON-Schema keywords a structural schema may not use.
_FORBIDDEN = ("$ref", "$schema", "id", "definitions", "dependencies", "additionalItems",
              "patternProperties")
_LOGIC = ("allOf", "anyOf", "oneOf", "not")
_KNOWN = {
    "type", "format", "title", "description", "default", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
    "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties",
    "required", "items", "properties", "additionalProperties", "nullable", "example",
    "externalDocs", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys", "x-kubernetes-list-type",
    "x-kubernetes-map-type", "x-kubernetes-validations", *_LOGIC, *_FORBIDDEN,
}


def check_structural(schema: Any, path: str, errs: FieldErrors) -> None:
    """Append a cause for every place ``schema`` (at ``path``) is not structural."""
    if not isinstance(schema, dict):
        errs.invalid(path, schema, "must be an object")
        return
    if schema.get("type") not in (None, "object"):
        errs.invalid(f"{path}.type", schema.get("type"), 'must be "object" at the root')
    _node(schema, path, errs, root=True)


def _node(schema: dict[str, Any], path: str, errs: FieldErrors, *, root: bool = False) -> None:
    for key in schema:
        if key in _FORBIDDEN:
            errs.forbidden(f"{path}.{key}", f"{key} is forbidden in a structural schema")
        elif key not in _KNOWN:
            errs.forbidden(f"{path}.{key}", f'unknown schema field "{key}"')
    open_ended = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or bool(
        schema.get("x-kubernetes-int-or-string"))
    kind = schema.get("type")
    if kind in (None, ""):
        if not open_ended:
            errs.required(f"{path}.type", "must not be empty for specified object fields"
                          if not root else "must not be empty at the root")
    elif kind not in TYPES:
        errs.not_supported(f"{path}.type", kind, TYPES)
    props = schema.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            errs.invalid(f"{path}.properties", props, "must be an object")
        else:
            if kind not in (None, "object"):
                errs.forbidden(f"{path}.properties", f'must be empty for type "{kind}"')
            if schema.get("additionalProperties") not in (None, False):
                errs.forbidden(f"{path}.additionalProperties",
                               "additionalProperties and properties are mutual exclusive")
            for name, sub in props.items():
                _child(sub, f"{path}.properties[{name}]", errs)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        _child(extra, f"{path}.additionalProperties", errs)
    items = schema.get("items")
    if kind == "array" and items is None:
        errs.required(f"{path}.items", "must be specified")
    if items is not None:
        if isinstance(items, list):
            errs.forbidden(f"{path}.items", "items must be a schema object and not an array")
        else:
            _child(items, f"{path}.items", errs)
    for key in _LOGIC:
        for i, sub in enumerate(schema.get(key) or []) if key != "not" else ():
            _logic(sub, f"{path}.{key}[{i}]", errs)
    required = schema.get("required")
    if required is not None and not (
            isinstance(required, list) and all(isinstance(r, str) for r in required)):
        errs.invalid(f"{path}.required", required, "must be a list of field names")


def _child(sub: Any, path: str, errs: FieldErrors) -> None:
    if not isinstance(sub, dict):
        errs.invalid(path, sub, "must be an object")
    else:
        _node(sub, path, errs)


def _logic(sub: Any, path: str, errs: FieldErrors) -> None:
    """Inside allOf/anyOf/oneOf a schema may restrict values but not declare
    types, defaults or descriptions (they would make the shape ambiguous)."""
    if not isinstance(sub, dict):
        errs.invalid(path, sub, "must be an object")
        return
    for key in ("type", "default", "description", "nullable", "additionalProperties",
                "x-kubernetes-preserve-unknown-fields"):
        if key in sub:
            errs.forbidden(f"{path}.{key}", "must be empty to be structural")
