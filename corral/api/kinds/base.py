"""The base every model shares: Kubernetes' camelCase wire names, unknown fields
kept (not dropped) so the API can warn about or reject them, and strict types so
"replicas": "3" is an error as it is in Kubernetes rather than silently coerced."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel


class KubeModel(BaseModel):
    """Any object or sub-object of the Kubernetes API."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", strict=True,
    )


def _quantity_from_number(value: Any) -> Any:
    # Manifests often say `cpu: 1` or `memory: 1024`; Kubernetes accepts the
    # number and stores it as a string. Parse errors are reported by validation.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


Quantity = Annotated[str, BeforeValidator(_quantity_from_number)]
"""A resource quantity as written ("500m", "1Gi"); see corral.api.quantity."""

INT32_MAX = 2**31 - 1
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
"""Kubernetes' int32 fields (replicas, ports, counts): wider is Invalid, never wrapped."""

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
"""Kubernetes' int64 fields (generation, grace and deadline seconds)."""

IntOrString = Int32 | str
"""A port number or port name; or a count or percentage ("25%")."""

Time = str
"""An RFC 3339 timestamp ("2024-01-02T03:04:05Z"), kept as written."""

MicroTime = str
"""An RFC 3339 timestamp with microseconds ("2024-01-02T03:04:05.000001Z")."""

Opaque = dict[str, Any]
"""A sub-object corral stores and hands back but does not interpret."""


class TypedObject(KubeModel):
    """Anything with apiVersion and kind on the wire."""

    # The apiVersions a body of this kind may carry; empty means any.
    API_VERSIONS: ClassVar[tuple[str, ...]] = ()

    api_version: str | None = None
    kind: str | None = None

