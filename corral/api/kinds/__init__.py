"""Pydantic models of every kind the API serves, and the functions the registry
calls on them. Contract (implemented in this package):

    decode(kind, data: dict) -> KubeObject      # raises api.errors.Invalid with field causes
    encode(obj) -> dict                          # JSON-ready, by alias, no None values
    unknown_fields(obj) -> list[str]             # dotted paths of fields no model knows
    MODELS: dict[str, type[KubeObject]]          # by kind, e.g. MODELS["Pod"]

Modules: base (shared config and scalar types), meta (ObjectMeta, selectors,
conditions), container, affinity, pod, core (Namespace, Pod, ConfigMap, Secret,
ResourceQuota, Event), node, service (Service, Endpoints), apps (Deployment,
ReplicaSet), batch (Job), coordination (Lease), scheduling (PriorityClass),
subresources (Binding, Scale, Eviction, DeleteOptions, Status), catalog (MODELS),
codec (decode, encode, unknown_fields).
"""

from __future__ import annotations

from corral.api.kinds.apps import Deployment, ReplicaSet
from corral.api.kinds.base import KubeModel, TypedObject
from corral.api.kinds.batch import Job
from corral.api.kinds.catalog import MODELS
from corral.api.kinds.codec import decode, drop_unknown_fields, encode, unknown_fields
from corral.api.kinds.coordination import Lease
from corral.api.kinds.core import (
    ConfigMap,
    Event,
    Namespace,
    Pod,
    ResourceQuota,
    Secret,
    ServiceAccount,
)
from corral.api.kinds.meta import KubeObject, ObjectMeta
from corral.api.kinds.node import Node
from corral.api.kinds.scheduling import PriorityClass
from corral.api.kinds.service import Endpoints, Service
from corral.api.kinds.subresources import Binding, DeleteOptions, Eviction, Scale, Status

__all__ = [
    "MODELS", "Binding", "ConfigMap", "DeleteOptions", "Deployment", "Endpoints", "Event",
    "Eviction", "Job", "KubeModel", "KubeObject", "Lease", "Namespace", "Node", "ObjectMeta",
    "Pod", "PriorityClass", "ReplicaSet", "ResourceQuota", "Scale", "Secret", "Service",
    "ServiceAccount",
    "Status", "TypedObject", "decode", "drop_unknown_fields", "encode", "unknown_fields",
]
