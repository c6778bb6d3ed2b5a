"""A custom object against its version's structural schema, in kube-apiserver's
order: prune unknown fields → apply defaults → validate (type, required, enum,
bounds, lengths, pattern, items), each error worded and placed as Kubernetes
words it ("spec.replicas: Invalid value: 0: spec.replicas in body should be
greater than or equal to 1")."""

from __future__ import annotations

import copy
import re
from typing import Any

from corral.api.errors import Cause
from corral.api.field_errors import FieldErrors, show

# Always kept at the root, whatever the schema says (type meta and object meta).
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


def prune(value: Any, schema: dict[str, Any], path: str = "", *,
          root: bool = False) -> list[str]:
    """Drop, in place, every field the schema does not declare, unless the schema
    preserves unknown fields there. Returns the dropped fields' paths."""
    if isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return []
        return [f for i, item in enumerate(value) for f in prune(item, items, f"{path}[{i}]")]
    if not isinstance(value, dict):
        return []
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    keep_all = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or extra not in (
        None, False)
    dropped: list[str] = []
    for key in list(value):
        if key in props:
            dropped += prune(value[key], props[key], _join(path, key))
        elif isinstance(extra, dict):
            dropped += prune(value[key], extra, _join(path, key))
        elif not keep_all and not (root and key in _ROOT_FIELDS):
            del value[key]
            dropped.append(_join(path, key))
    return dropped


def default(value: Any, schema: dict[str, Any]) -> None:
    """Fill in, in place, the ``default`` of every declared field that is absent
    from an object that is present (as apiextensions' structural defaulting)."""
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                default(item, items)
        return
    if not isinstance(value, dict):
        return
    for key, sub in (schema.get("properties") or {}).items():
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            default(value[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in value:
            default(value[key], extra)


def validate(value: Any, schema: dict[str, Any], path: str = "") -> list[Cause]:
    errs = FieldErrors()
    _check(value, schema, path, errs, root=not path)
    return list(errs)


def _check(value: Any, schema: dict[str, Any], path: str, errs: FieldErrors,
           root: bool = False) -> None:
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            errs.invalid(path, None, f'{path} in body must be of type {schema["type"]}: "null"')
        return
    if not _type_ok(value, schema, path, errs):
        return
    _check_enum(value, schema, path, errs)
    if isinstance(value, str):
        _check_string(value, schema, path, errs)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, path, errs)
    elif isinstance(value, list):
        _check_array(value, schema, path, errs)
    elif isinstance(value, dict):
        _check_object(value, schema, path, errs, root)


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_ok(value: Any, schema: dict[str, Any], path: str, errs: FieldErrors) -> bool:
    want, got = schema.get("type"), _type_of(value)
    if schema.get("x-kubernetes-int-or-string"):
        if got in ("integer", "string"):
            return True
        want = "integer,string"
    elif not want or want == got or (want == "number" and got == "integer"):
        return True
    if want == "integer" and isinstance(value, float) and value.is_integer():
        return True
    errs.append(Cause(path, f"Invalid value: {show(got)}: {path} in body must be of type "
                            f"{want}: {show(got)}", "FieldValueTypeInvalid"))
    return False


def _check_enum(value: Any, schema: dict[str, Any], path: str, errs: FieldErrors) -> None:
    allowed = schema.get("enum")
    if isinstance(allowed, list) and value not in allowed:
        errs.not_supported(path, value, tuple(allowed))


def _check_string(value: str, schema: dict[str, Any], path: str, errs: FieldErrors) -> None:
    low, high, pattern = schema.get("minLength"), schema.get("maxLength"), schema.get("pattern")
    if isinstance(low, int) and len(value) < low:
        errs.invalid(path, value, f"{path} in body should be at least {low} chars long")
    if isinstance(high, int) and len(value) > high:
        errs.append(Cause(path, f"Too long: may not be more than {high} bytes",
                          "FieldValueTooLong"))
    if isinstance(pattern, str) and re.search(pattern, value) is None:
        errs.invalid(path, value, f"{path} in body should match '{pattern}'")


def _check_number(value: float, schema: dict[str, Any], path: str, errs: FieldErrors) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(low, (int, float)):
        if schema.get("exclusiveMinimum") and value <= low:
            errs.invalid(path, value, f"{path} in body should be greater than {low}")
        elif value < low:
            errs.invalid(path, value, f"{path} in body should be greater than or equal to {low}")
    if isinstance(high, (int, float)):
        if schema.get("exclusiveMaximum") and value >= high:
            errs.invalid(path, value, f"{path} in body should be less than {high}")
        elif value > high:
            errs.invalid(path, value, f"{path} in body should be less than or equal to {high}")


def _check_array(value: list[Any], schema: dict[str, Any], path: str, errs: FieldErrors) -> None:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if isinstance(low, int) and len(value) < low:
        errs.invalid(path, len(value), f"{path} in body should have at least {low} items")
    if isinstance(high, int) and len(value) > high:
        errs.append(Cause(path, f"Too many: {len(value)}: must have at most {high} items",
                          "FieldValueTooMany"))
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _check(item, items, f"{path}[{i}]", errs)


def _check_object(value: dict[str, Any], schema: dict[str, Any], path: str,
                  errs: FieldErrors, root: bool) -> None:
    for name in schema.get("required") or []:
        if name not in value:
            errs.required(_join(path, name))
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if root and key in _ROOT_FIELDS:
            continue  # type and object meta are checked as for every kind
        if key in props:
            _check(item, props[key], _join(path, key), errs)
        elif isinstance(extra, dict):
            _check(item, extra, _join(path, key), errs)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
