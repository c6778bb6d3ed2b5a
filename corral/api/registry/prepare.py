"""The path every incoming object takes before it is stored:
decode (shape and types) → unknown fields → defaults → validation → encode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from corral.api import kinds
from corral.api.crd.objects import prepare_custom
from corral.api.defaults import apply_defaults
from corral.api.errors import BadRequest, invalid
from corral.api.resources import Resource
from corral.api.validation import validate
from corral.objects import name_of

# Kubernetes' fieldValidation modes: what happens to fields no schema declares.
#   Strict  refuse the request (400, every unknown field named)
#   Warn    drop them, answer with a Warning header per field (the server default)
#   Ignore  drop them silently
FieldValidation = Literal["Strict", "Warn", "Ignore"]


@dataclass
class Prepared:
    obj: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def prepare(
    res: Resource, obj: dict[str, Any], *, old: dict[str, Any] | None,
    validation: FieldValidation = "Warn",
) -> Prepared:
    """Validate and default ``obj``. Unknown fields are refused, dropped with a
    warning, or dropped, by ``validation`` (kube-apiserver's fieldValidation)."""
    if res.custom is not None:
        stored, warnings = prepare_custom(res, obj, strict=validation == "Strict")
        return Prepared(stored, warnings if validation == "Warn" else [])
    model = kinds.decode(res.kind, obj)
    extras = kinds.unknown_fields(model)
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
    old_model = kinds.decode(res.kind, old) if old is not None else None
    causes = validate(model, old_model)
    if causes:
        name = name_of(obj)
        raise invalid(res.kind, name, causes, res.group)
    return Prepared(kinds.encode(model), warnings)
