"""A custom object's way into the store: type and object meta checked as for
every kind, then the version's structural schema prunes, defaults and validates
(kube-apiserver's customresource strategy)."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from corral.api.crd.schema import default, prune, validate
from corral.api.errors import BadRequest, Cause, invalid
from corral.api.field_errors import FieldErrors
from corral.api.kinds.codec import causes_of
from corral.api.kinds.meta import ObjectMeta
from corral.api.resources import Resource
from corral.api.validation import validate_meta
from corral.objects import Obj, meta, name_of


def prepare_custom(res: Resource, obj: Obj, *, strict: bool) -> tuple[Obj, list[str]]:
    """The object to store and the unknown fields dropped from it; Invalid (422)
    with every field at fault, or BadRequest for unknown fields when ``strict``."""
    schema: dict[str, Any] = res.custom.schema
    obj = copy.deepcopy(obj)
    dropped = prune(obj, schema, root=True)
    if dropped and strict:
        listed = ", ".join(f'unknown field "{f}"' for f in dropped)
        raise BadRequest(f"{res.kind} in version \"{res.version}\" cannot be handled as a "
                         f"{res.kind}: strict decoding error: {listed}",
                         kind=res.kind, group=res.group)
    default(obj, schema)
    errs = FieldErrors()
    _check_meta(res, obj, errs)
    errs.extend(validate(obj, schema))
    if errs:
        raise invalid(res.kind, name_of(obj), list(errs), res.group)
    return obj, [f'unknown field "{f}"' for f in dropped]


def _check_meta(res: Resource, obj: Obj, errs: FieldErrors) -> None:
    try:
        model = ObjectMeta.model_validate(meta(obj))
    except ValidationError as err:
        errs.extend(Cause(f"metadata.{c.field}", c.message, c.reason)
                    for c in causes_of(ObjectMeta, err))
        return
    validate_meta(model, res.kind, errs)
