"""The path every incoming object takes before it is stored:
decode (shape and types) → unknown fields → defaults → validation → encode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.api import kinds
from corral.api.defaults import apply_defaults
from corral.api.errors import BadRequest, invalid
from corral.api.resources import Resource
from corral.api.validation import validate
from corral.objects import name_of


@dataclass
class Prepared:
    obj: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def prepare(
    res: Resource, obj: dict[str, Any], *, old: dict[str, Any] | None, strict: bool
) -> Prepared:
    """Validate and default ``obj``. Unknown fields are rejected under strict field
    validation (as kubectl's default ``--validate=strict`` asks) and otherwise kept
    verbatim with a warning, so no user data is dropped."""
    model = kinds.decode(res.kind, obj)
    extras = kinds.unknown_fields(model)
    if extras and strict:
        listed = ", ".join(f'unknown field "{f}"' for f in extras)
        raise BadRequest(
            f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
            f"strict decoding error: {listed}",
            kind=res.kind, group=res.group,
        )
    warnings = [f'unknown field "{f}"' for f in extras]
    apply_defaults(model)
    old_model = kinds.decode(res.kind, old) if old is not None else None
    causes = validate(model, old_model)
    if causes:
        name = name_of(obj)
        raise invalid(res.kind, name, causes, res.group)
    return Prepared(kinds.encode(model), warnings)
