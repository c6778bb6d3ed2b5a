"""Every model by kind: the served kinds of corral.api.resources plus the
request bodies of subresources."""

from __future__ import annotations

from corral.api.kinds import autoscaling_v1
from corral.api.kinds.alloc import Alloc
from corral.api.kinds.apiextensions import CustomResourceDefinition
from corral.api.kinds.apps import (
    ControllerRevision,
    DaemonSet,
    Deployment,
    ReplicaSet,
    StatefulSet,
)
from corral.api.kinds.autoscaling import HorizontalPodAutoscaler
from corral.api.kinds.base import TypedObject
from corral.api.kinds.batch import CronJob, Job
from corral.api.kinds.certificates import CertificateSigningRequest
from corral.api.kinds.coordination import Lease
from corral.api.kinds.core import (
    ConfigMap,
    Event,
    LimitRange,
    Namespace,
    Pod,
    ResourceQuota,
    Secret,
    ServiceAccount,
)
from corral.api.kinds.discovery import EndpointSlice
from corral.api.kinds.framework import Framework
from corral.api.kinds.node import Node
from corral.api.kinds.policy import PodDisruptionBudget
from corral.api.kinds.rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding
from corral.api.kinds.replication import ReplicationController
from corral.api.kinds.scheduling import PriorityClass
from corral.api.kinds.service import Endpoints, Service
from corral.api.kinds.subresources import Binding, DeleteOptions, Eviction, Scale, Status

MODELS: dict[str, type[TypedObject]] = {
    model.__name__: model
    for model in (
        Namespace, Node, Pod, Service, Endpoints, Event, ConfigMap, Secret, ServiceAccount,
        ResourceQuota, LimitRange,
        Lease, Deployment, ReplicaSet, ReplicationController, DaemonSet, StatefulSet, ControllerRevision,
        Job, CronJob, HorizontalPodAutoscaler,
        PriorityClass, Alloc, Framework, PodDisruptionBudget, Role, ClusterRole, RoleBinding,
        ClusterRoleBinding, CustomResourceDefinition, CertificateSigningRequest, EndpointSlice,
        Binding, Scale, Eviction, DeleteOptions, Status,
    )
}

# Kinds served at a version besides the stored one (corral.api.resources'
# CONVERTED), by (apiVersion, kind): the shape OpenAPI publishes for them.
CONVERTED_MODELS: dict[tuple[str, str], type[TypedObject]] = {
    ("autoscaling/v1", "HorizontalPodAutoscaler"): autoscaling_v1.HorizontalPodAutoscaler,
}


def model_of(api_version: str, kind: str) -> type[TypedObject] | None:
    """The model of ``kind`` at ``api_version``: a converted version's own, else MODELS'."""
    return CONVERTED_MODELS.get((api_version, kind)) or MODELS.get(kind)
