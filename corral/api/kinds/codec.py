"""Dicts to models and back, and the errors a bad body gives.

A pydantic error location is a tuple of field aliases, list indexes, map keys
and union-member tags; Kubernetes names the same place
"spec.containers[0].resources.requests[memory]". ``wire_path`` walks the model's
types alongside the location to tell a field from a map key and to drop the tags.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from collections.abc import Collection
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from corral.api.errors import BadRequest, Cause, invalid
from corral.api.kinds.base import TypedObject
from corral.api.resources import BY_KIND


def decode(kind: str, data: dict[str, Any]) -> TypedObject:
    """Check that ``data`` is a ``kind`` object and build its model. A body of
    another kind or apiVersion is a BadRequest; wrong shapes or types are Invalid
    with one cause per field."""
    from corral.api.kinds.catalog import MODELS  # the models, on first use (__init__.py)

    model = MODELS.get(kind)
    if model is None:
        raise BadRequest(f"no such kind {kind!r}")
    if not isinstance(data, dict):
        raise BadRequest(f"a {kind} must be a JSON object, not {type(data).__name__}")
    _check_type_meta(kind, model, data)
    try:
        obj = model.model_validate(data)
    except ValidationError as err:
        raise invalid(kind, _name_of(data), causes_of(model, err), _group(kind)) from None
    obj.kind = obj.kind or kind
    obj.api_version = obj.api_version or _default_api_version(model)
    return obj


def encode(obj: BaseModel) -> dict[str, Any]:
    """The wire form: camelCase names, no null values (empty lists, maps, 0 and
    false are kept as set), unknown fields kept as they came."""
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)


def unknown_fields(obj: BaseModel, prefix: str = "", skip: Collection[str] = ()) -> list[str]:
    """Wire paths of every field no model declares, at any depth
    ("spec.replica", "spec.template.spec.containers[0].imagePolicy"); not
    inside the fields named in ``skip`` (parts known to have none)."""
    found = [_join(prefix, key) for key in (obj.model_extra or {})]
    for name, wire in _nested(type(obj)):
        if name in skip:
            continue
        value = getattr(obj, name)
        if value is not None:
            found += _unknown_in(value, _join(prefix, wire))
    return found


def drop_unknown_fields(obj: BaseModel) -> None:
    """Forget every field no model declares, at any depth, so ``encode`` leaves
    them out (kube-apiserver's decoder drops them the same way)."""
    if obj.__pydantic_extra__:
        obj.__pydantic_extra__.clear()
    for name, _ in _nested(type(obj)):
        _drop_in(getattr(obj, name))


@functools.cache
def _nested(model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, wire name) of ``model``'s fields whose type can hold a model:
    only there can a field no model declares hide (a string, a list of strings
    or an opaque map cannot). Walking the others cost every write of an Alloc a
    call per field of each of its tasks."""
    return tuple((name, field.alias or name) for name, field in model.model_fields.items()
                 if _holds_model(field.annotation))


def _holds_model(tp: Any) -> bool:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return True
    return any(_holds_model(arg) for arg in typing.get_args(tp))


def _drop_in(value: Any) -> None:
    if isinstance(value, BaseModel):
        drop_unknown_fields(value)
    elif isinstance(value, list):
        for item in value:
            _drop_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            _drop_in(item)


def _unknown_in(value: Any, path: str) -> list[str]:
    if isinstance(value, BaseModel):
        return unknown_fields(value, path)
    if isinstance(value, list):
        return [f for i, item in enumerate(value) for f in _unknown_in(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [f for k, item in value.items() for f in _unknown_in(item, f"{path}[{k}]")]
    return []


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_type_meta(kind: str, model: type[TypedObject], data: dict[str, Any]) -> None:
    body_kind = data.get("kind")
    if body_kind not in (None, "", kind):
        raise BadRequest(f"the kind in the body ({body_kind!r}) does not match the kind "
                         f"of the request ({kind!r})", kind=kind, group=_group(kind))
    version = data.get("apiVersion")
    if version not in (None, "") and model.API_VERSIONS and version not in model.API_VERSIONS:
        raise BadRequest(f"the apiVersion in the body ({version!r}) does not match the "
                         f"version of the request ({model.API_VERSIONS[0]!r})",
                         kind=kind, group=_group(kind))


def _default_api_version(model: type[TypedObject]) -> str | None:
    return model.API_VERSIONS[0] if model.API_VERSIONS else None


def _group(kind: str) -> str:
    resource = BY_KIND.get(kind)
    return resource.group if resource else ""


def _name_of(data: dict[str, Any]) -> str:
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


# ---- pydantic errors → Kubernetes causes -------------------------------------

_EXPECTED = {
    "int_type": "must be an integer", "int_parsing": "must be an integer",
    "int_from_float": "must be an integer", "string_type": "must be a string",
    "bool_type": "must be a boolean", "bool_parsing": "must be a boolean",
    "float_type": "must be a number", "dict_type": "must be an object",
    "model_type": "must be an object", "model_attributes_type": "must be an object",
    "list_type": "must be an array",
}


def causes_of(model: type[BaseModel], err: ValidationError) -> list[Cause]:
    """One cause per field; a value that fits no member of a union (a port that
    is neither integer nor string) gives one cause naming every member."""
    merged: dict[str, tuple[str, Any, list[str]]] = {}
    for e in err.errors():
        path = wire_path(model, e["loc"])
        expected = _expected(e["type"], e.get("ctx") or {}, e["msg"])
        if e["type"] == "missing":
            merged.setdefault(path, ("FieldValueRequired", None, []))
            continue
        messages = merged.setdefault(path, ("FieldValueInvalid", e["input"], []))[2]
        if expected not in messages:
            messages.append(expected)
    return [_cause(path, *entry) for path, entry in merged.items()]


def _expected(kind: str, ctx: dict[str, Any], message: str) -> str:
    if kind == "less_than_equal":  # an int wider than its Kubernetes field (int32, int64)
        return f"must be less than or equal to {ctx['le']}"
    if kind == "greater_than_equal":
        return f"must be greater than or equal to {ctx['ge']}"
    return _EXPECTED.get(kind, message)


def _cause(path: str, reason: str, value: Any, expected: list[str]) -> Cause:
    if reason == "FieldValueRequired":
        return Cause(path, "Required value", reason)
    wanted = " or ".join(e.removeprefix("must be ") for e in expected)
    return Cause(path, f"Invalid value: {_show(value)}: must be {wanted}", reason)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + '..."'


def wire_path(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    path = ""
    current: Any = model
    for step in loc:
        current = _strip_none(current)
        if _is_union(current):
            member = _union_member(current, step)
            if member is not None:  # a union tag ("int", "str"): not part of the path
                current = member
                continue
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            path, current = _field_step(current, step, path)
        elif origin is list and isinstance(step, int):
            path, current = f"{path}[{step}]", typing.get_args(current)[0]
        elif origin is dict:
            path, current = f"{path}[{step}]", typing.get_args(current)[1]
        else:  # past what the types describe (inside an opaque value)
            path = f"{path}[{step}]" if isinstance(step, int) else _join(path, step)
            current = Any
    return path


def _field_step(model: type[BaseModel], step: int | str, path: str) -> tuple[str, Any]:
    for name, field in model.model_fields.items():
        if step in (field.alias, name):
            return _join(path, field.alias or name), field.annotation
    return _join(path, str(step)), Any


def _strip_none(tp: Any) -> Any:
    if _is_union(tp):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return members[0]
        return Union[tuple(members)]  # noqa: UP007 - built from a runtime tuple
    annotated = typing.get_origin(tp) is typing.Annotated
    return typing.get_args(tp)[0] if annotated else tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _union_member(tp: Any, step: int | str) -> Any:
    for member in typing.get_args(tp):
        name = getattr(member, "__name__", None) or str(typing.get_origin(member))
        if typing.get_origin(member) is typing.Annotated:  # pydantic tags Int32 so
            name = f"constrained-{typing.get_args(member)[0].__name__}"
        if step == name or (isinstance(step, str) and step.startswith(f"{name}[")):
            return member
    return None
