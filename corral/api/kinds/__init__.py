"""Pydantic models of every kind the API serves, and the functions the registry
calls on them. Contract (implemented in this package):

    decode(kind, data: dict) -> KubeObject      # raises api.errors.Invalid with field causes
    encode(obj) -> dict                          # JSON-ready, by alias, no None values
    unknown_fields(obj) -> list[str]             # dotted paths of fields no model knows
    MODELS: dict[str, type[TypedObject]]         # by kind, e.g. MODELS["Pod"]

A model itself is imported from its module (``from corral.api.kinds.core import
Pod``); MODELS in catalog.py is the one list of them.

Modules: base (shared config and scalar types), meta (ObjectMeta, selectors,
conditions), container, affinity, pod, core (Namespace, ConfigMap, Secret,
ServiceAccount, ResourceQuota, LimitRange, Event, and Pod's envelope), node, service
(Service, Endpoints), discovery (EndpointSlice), apps (Deployment, ReplicaSet, DaemonSet,
StatefulSet, ControllerRevision), batch (Job, CronJob), autoscaling (HorizontalPodAutoscaler),
policy (PodDisruptionBudget), coordination (Lease), scheduling (PriorityClass),
rbac, replication (ReplicationController), certificates
(CertificateSigningRequest), apiextensions (CustomResourceDefinition), alloc and
framework (corral.dev/v1), subresources (Binding, Scale, Eviction, DeleteOptions,
Status), catalog (MODELS), codec (decode, encode, unknown_fields).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.api.kinds.catalog import MODELS
    from corral.api.kinds.codec import decode, drop_unknown_fields, encode, unknown_fields

__all__ = ["MODELS", "decode", "drop_unknown_fields", "encode", "unknown_fields"]

# Imported on first use, not with the package: building every model costs ~0.5 s of
# CPU, and an agent, a controller or a CLI verb needs a few models (or none, only
# encode): every process that imports one module of the package paid for all of them.
_LAZY = {"MODELS": "catalog", "decode": "codec", "drop_unknown_fields": "codec",
         "encode": "codec", "unknown_fields": "codec"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value  # found as an attribute from now on: one import per name
    return value
