"""The path every incoming object takes before it is stored:
decode (shape and types) → unknown fields → defaults → validation → encode.

An update's old object is given as stored, and as its model when the registry
still holds the one it was validated as (models.py); a part of the new object
equal to the old one's is taken as the old model's part, not validated again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from corral.api import kinds
from corral.api.crd.objects import prepare_custom
from corral.api.defaults import apply_defaults
from corral.api.errors import BadRequest, invalid
from corral.api.kinds.base import TypedObject
from corral.api.kinds.meta import KubeObject
from corral.api.patch.merge import copy_json
from corral.api.resources import Resource
from corral.api.validation import validate
from corral.objects import name_of

# Kubernetes' fieldValidation modes: what happens to fields no schema declares.
#   Strict  refuse the request (400, every unknown field named)
#   Warn    drop them, answer with a Warning header per field (the server default)
#   Ignore  drop them silently
FieldValidation = Literal["Strict", "Warn", "Ignore"]

# Top-level parts an update often leaves as they were (the status a write of the
# main resource keeps, the spec a status write keeps).
_SECTIONS = ("spec", "status")


@dataclass
class Prepared:
    obj: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    model: TypedObject | None = None  # what ``obj`` encodes (None: a custom resource)

    def set_generation(self, generation: int) -> None:
        meta = self.obj.setdefault("metadata", {})
        meta["generation"] = generation
        if isinstance(self.model, KubeObject):
            self.model.metadata.generation = generation


def prepare(
    res: Resource, obj: dict[str, Any], *, old: dict[str, Any] | None,
    validation: FieldValidation = "Warn", old_model: TypedObject | None = None,
) -> Prepared:
    """Validate and default ``obj``. Unknown fields are refused, dropped with a
    warning, or dropped, by ``validation`` (kube-apiserver's fieldValidation).
    ``old_model``: ``old`` as validated before (decoded from ``old`` if None)."""
    if res.custom is not None:
        stored, warnings = prepare_custom(res, obj, strict=validation == "Strict")
        return Prepared(stored, warnings if validation == "Warn" else [])
    # A model this server validated has no unknown field left; one decoded from
    # the store now might (stored by another version): its parts are looked at.
    checked = old_model is not None
    if old is not None and old_model is None:
        old_model = kinds.decode(res.kind, old)
    data, reused = _reusing(obj, old, old_model)
    model = kinds.decode(res.kind, data)
    extras = kinds.unknown_fields(model, skip=reused if checked else ())
    if extras and validation == "Strict":
        listed = ", ".join(f'unknown field "{f}"' for f in extras)
        raise BadRequest(
            f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
            f"strict decoding error: {listed}",
            kind=res.kind, group=res.group,
        )
    warnings = [f'unknown field "{f}"' for f in extras] if validation == "Warn" else []
    if extras:
        kinds.drop_unknown_fields(model)
    apply_defaults(model)
    causes = validate(model, old_model if old is not None else None)
    if causes:
        name = name_of(obj)
        raise invalid(res.kind, name, causes, res.group)
    encoded = _graft(model, obj, reused) if checked and reused else kinds.encode(model)
    return Prepared(encoded, warnings, model)


def _graft(model: TypedObject, obj: dict[str, Any], reused: list[str]) -> dict[str, Any]:
    """``model`` encoded, its reused sections copied from ``obj`` rather than
    encoded again: they equal the old object's, which this server stored as the
    encoding of the very same (shared) parts."""
    dumped = model.model_dump(mode="json", by_alias=True, exclude_none=True,
                              exclude=set(reused))
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        wire = info.alias or name
        if name in reused:
            out[wire] = copy_json(obj[wire])
        elif wire in dumped:
            out[wire] = dumped.pop(wire)
    out.update(dumped)
    return out


def _reusing(obj: dict[str, Any], old: dict[str, Any] | None, old_model: TypedObject | None
             ) -> tuple[dict[str, Any], list[str]]:
    """``obj`` with each section equal to the old object's given as the old
    model's (already validated, no unknown fields: pydantic takes a model
    instance as it is), and the names of those sections."""
    if old is None or old_model is None:
        return obj, []
    data, reused = obj, []
    for section in _SECTIONS:
        part, was = obj.get(section), old.get(section)
        if not isinstance(part, dict) or not part or not (part is was or part == was):
            continue
        value = getattr(old_model, section, None)
        if isinstance(value, BaseModel):
            if data is obj:
                data = dict(obj)
            data[section] = value
            reused.append(section)
    return data, reused
