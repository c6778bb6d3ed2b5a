"""Validation of every kind: ``validate(obj, old=None) -> list[Cause]``.

Runs after defaults, so it sees what will be stored. ``old`` is the stored
object on update, for the rules that forbid changing a field. Pod specs are
checked in pod_validation; names and labels in names.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from corral import cronschedule, intstr
from corral.api import names
from corral.api.alloc_validation import validate_alloc, validate_task_array
from corral.api.autoscaling_validation import validate_hpa
from corral.api.certificates.requests import validate_csr
from corral.api.crd.definition import validate_crd
from corral.api.endpointslice_validation import validate_endpoint_slice
from corral.api.errors import Cause
from corral.api.field_errors import FieldErrors
from corral.api.framework_validation import validate_framework
from corral.api.job_validation import validate_per_index_backoff, validate_pod_failure_policy
from corral.api.kinds.alloc import Alloc
from corral.api.kinds.apiextensions import CustomResourceDefinition
from corral.api.kinds.apps import (
    DaemonSet,
    Deployment,
    DeploymentStrategy,
    ReplicaSet,
    StatefulSet,
)
from corral.api.kinds.autoscaling import HorizontalPodAutoscaler
from corral.api.kinds.base import IntOrString, KubeModel
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
)
from corral.api.kinds.discovery import EndpointSlice
from corral.api.kinds.framework import Framework
from corral.api.kinds.meta import KubeObject, LabelSelector, ObjectMeta
from corral.api.kinds.node import Node
from corral.api.kinds.pod import PodTemplateSpec, Volume
from corral.api.kinds.policy import PodDisruptionBudget
from corral.api.kinds.rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding
from corral.api.kinds.replication import ReplicationController
from corral.api.kinds.scheduling import PriorityClass
from corral.api.kinds.service import Endpoints, Service
from corral.api.kinds.subresources import Binding, DeleteOptions, Scale
from corral.api.limitrange_validation import validate_limit_range
from corral.api.pod_validation import (
    PROTOCOLS,
    TAINT_EFFECTS,
    validate_label_selector,
    validate_labels,
    validate_pod_spec,
    validate_quantities,
)
from corral.api.rbac_validation import (
    validate_cluster_role,
    validate_cluster_role_binding,
    validate_role,
    validate_role_binding,
)
from corral.api.resources import BY_KIND

ANNOTATIONS_MAX_BYTES = 256 * 1024
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
QUOTA_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort",
                "PriorityClass", "CrossNamespacePodAffinity")
USER_PRIORITY_MAX = 1_000_000_000
SYSTEM_PRIORITY_CLASSES = {"system-cluster-critical": 2_000_000_000,
                           "system-node-critical": 2_000_001_000}
# Namespaces and Services are named by a DNS label (they become DNS names);
# everything else by a DNS subdomain.
_NAME_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "Namespace": names.dns1123_label, "Service": names.dns1035_label,
    "Role": names.path_segment, "ClusterRole": names.path_segment,
    "RoleBinding": names.path_segment, "ClusterRoleBinding": names.path_segment,
}


def validate(obj: KubeModel, old: KubeModel | None = None) -> list[Cause]:
    errs = FieldErrors()
    kind = type(obj).__name__
    if isinstance(obj, KubeObject) and kind in BY_KIND:
        validate_meta(obj.metadata, kind, errs)
    check = _VALIDATORS.get(type(obj))
    if check is not None:
        check(obj, old if type(old) is type(obj) else None, errs)
    return list(errs)


# ---- metadata -------------------------------------------------------------------

def validate_meta(meta: ObjectMeta, kind: str, errs: FieldErrors) -> None:
    if not meta.name:
        errs.required("metadata.name", "name or generateName is required")
    else:
        check = _NAME_CHECKS.get(kind, names.dns1123_subdomain)
        errs.each("metadata.name", meta.name, check(meta.name))
    if meta.namespace:
        errs.each("metadata.namespace", meta.namespace, names.dns1123_label(meta.namespace))
    validate_labels(meta.labels, "metadata.labels", errs)
    for key in meta.annotations or {}:
        errs.each("metadata.annotations", key, names.qualified_name(key))
    size = sum(len(k) + len(v) for k, v in (meta.annotations or {}).items())
    if size > ANNOTATIONS_MAX_BYTES:
        errs.too_long("metadata.annotations", ANNOTATIONS_MAX_BYTES)
    errs.non_negative("metadata.generation", meta.generation)
    _validate_owner_references(meta, errs)


def _validate_owner_references(meta: ObjectMeta, errs: FieldErrors) -> None:
    refs = meta.owner_references or []
    for i, ref in enumerate(refs):
        for field, value in (("apiVersion", ref.api_version), ("kind", ref.kind),
                             ("name", ref.name), ("uid", ref.uid)):
            if not value:
                errs.required(f"metadata.ownerReferences[{i}].{field}")
    controllers = [r for r in refs if r.controller]
    if len(controllers) > 1:
        errs.invalid("metadata.ownerReferences", [r.name for r in controllers],
                     "Only one reference can have Controller set to true")


# ---- workloads --------------------------------------------------------------------

def _validate_workload_selector(selector: LabelSelector | None, template: PodTemplateSpec,
                                errs: FieldErrors) -> None:
    if selector is None or selector.is_empty():
        errs.required("spec.selector")
        return
    validate_label_selector(selector, "spec.selector", errs)
    labels = template.metadata.labels or {}
    if not _selector_matches(selector, labels):
        errs.invalid("spec.template.metadata.labels", labels,
                     "`selector` does not match template `labels`")


def _selector_matches(selector: LabelSelector, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.match_labels or {}).items()):
        return False
    for req in selector.match_expressions or []:
        present, value = req.key in labels, labels.get(req.key)
        wanted = req.values or []
        ok = {"In": present and value in wanted, "NotIn": not present or value not in wanted,
              "Exists": present, "DoesNotExist": not present}.get(req.operator, False)
        if not ok:
            return False
    return True


def _validate_template(template: PodTemplateSpec, errs: FieldErrors,
                       restart_policies: tuple[str, ...], path: str = "spec.template") -> None:
    validate_labels(template.metadata.labels, f"{path}.metadata.labels", errs)
    validate_pod_spec(template.spec, f"{path}.spec", errs, restart_policies)


def _validate_deployment(d: Deployment, old: Deployment | None, errs: FieldErrors) -> None:
    spec = d.spec
    errs.non_negative("spec.replicas", spec.replicas)
    errs.non_negative("spec.minReadySeconds", spec.min_ready_seconds)
    errs.non_negative("spec.revisionHistoryLimit", spec.revision_history_limit)
    deadline = spec.progress_deadline_seconds
    if deadline is not None and deadline <= (spec.min_ready_seconds or 0):
        errs.invalid("spec.progressDeadlineSeconds", deadline,
                     "must be greater than minReadySeconds")
    _validate_workload_selector(spec.selector, spec.template, errs)
    _validate_template(spec.template, errs, ("Always",))
    if spec.strategy is not None:
        _validate_strategy(spec.strategy, errs)
    if old is not None:
        errs.immutable("spec.selector", _selector_json(spec.selector),
                       _selector_json(old.spec.selector))


def _selector_json(selector: LabelSelector | None) -> Any:
    return selector.model_dump(mode="json", by_alias=True, exclude_none=True) if selector else None


def _validate_strategy(strategy: DeploymentStrategy, errs: FieldErrors) -> None:
    errs.one_of("spec.strategy.type", strategy.type, ("Recreate", "RollingUpdate"))
    rolling = strategy.rolling_update
    if rolling is None:
        return
    if strategy.type == "Recreate":
        errs.forbidden("spec.strategy.rollingUpdate",
                       "may not be specified when strategy `type` is 'Recreate'")
        return
    path = "spec.strategy.rollingUpdate"
    _validate_int_or_percent(rolling.max_surge, f"{path}.maxSurge", errs)
    _validate_int_or_percent(rolling.max_unavailable, f"{path}.maxUnavailable", errs)
    if _percent_or_int(rolling.max_unavailable) == 0 and _percent_or_int(rolling.max_surge) == 0:
        errs.invalid(f"{path}.maxUnavailable", rolling.max_unavailable,
                     "may not be 0 when `maxSurge` is 0")
    if isinstance(rolling.max_unavailable, str) and \
            (_percent_or_int(rolling.max_unavailable) or 0) > 100:
        errs.invalid(f"{path}.maxUnavailable", rolling.max_unavailable,
                     "must not be greater than 100%")


def _percent_or_int(value: IntOrString | None) -> int | None:
    """The count, or the N of "N%"; None when absent or not a percentage."""
    try:
        return None if value is None else intstr.parse(value)[0]
    except ValueError:
        return None


def _validate_int_or_percent(value: IntOrString | None, path: str, errs: FieldErrors) -> None:
    if value is None:
        return
    if isinstance(value, str) and _percent_or_int(value) is None:
        errs.invalid(path, value, "a valid percent string must be a numeric string followed "
                     "by an ending '%' (e.g. '1%',  or '93%', regex used for validation is "
                     "'[0-9]+%')")
    else:
        errs.non_negative(path, _percent_or_int(value))


def _validate_max_unavailable(value: IntOrString | None, path: str,
                              errs: FieldErrors) -> None:
    """A StatefulSet's maxUnavailable: a positive count or a percentage up to 100%."""
    before = len(errs)
    _validate_int_or_percent(value, path, errs)
    if value is None or len(errs) > before:
        return
    if _percent_or_int(value) == 0:
        errs.invalid(path, value, "cannot be 0")
    elif isinstance(value, str) and (_percent_or_int(value) or 0) > 100:
        errs.invalid(path, value, "must not be greater than 100%")


def _validate_replica_set(rs: ReplicaSet, old: ReplicaSet | None, errs: FieldErrors) -> None:
    errs.non_negative("spec.replicas", rs.spec.replicas)
    errs.non_negative("spec.minReadySeconds", rs.spec.min_ready_seconds)
    _validate_workload_selector(rs.spec.selector, rs.spec.template, errs)
    _validate_template(rs.spec.template, errs, ("Always",))
    if old is not None:
        errs.immutable("spec.selector", _selector_json(rs.spec.selector),
                       _selector_json(old.spec.selector))


def _validate_daemon_set(ds: DaemonSet, old: DaemonSet | None, errs: FieldErrors) -> None:
    spec = ds.spec
    errs.non_negative("spec.minReadySeconds", spec.min_ready_seconds)
    errs.non_negative("spec.revisionHistoryLimit", spec.revision_history_limit)
    _validate_workload_selector(spec.selector, spec.template, errs)
    _validate_template(spec.template, errs, ("Always",))
    strategy = spec.update_strategy
    if strategy is not None:
        errs.one_of("spec.updateStrategy.type", strategy.type, ("RollingUpdate", "OnDelete"))
        rolling = strategy.rolling_update
        if rolling is not None:
            path = "spec.updateStrategy.rollingUpdate"
            _validate_int_or_percent(rolling.max_unavailable, f"{path}.maxUnavailable", errs)
            _validate_int_or_percent(rolling.max_surge, f"{path}.maxSurge", errs)
            if _percent_or_int(rolling.max_unavailable) == 0 and \
                    _percent_or_int(rolling.max_surge) == 0:
                errs.invalid(f"{path}.maxUnavailable", rolling.max_unavailable,
                             "may not be 0 when maxSurge is 0")
    if old is not None:
        errs.immutable("spec.selector", _selector_json(spec.selector),
                       _selector_json(old.spec.selector))


def _validate_replication_controller(rc: ReplicationController,
                                     old: ReplicationController | None,
                                     errs: FieldErrors) -> None:
    spec = rc.spec
    errs.non_negative("spec.replicas", spec.replicas)
    errs.non_negative("spec.minReadySeconds", spec.min_ready_seconds)
    if spec.template is None:
        errs.required("spec.template")
        return
    _validate_workload_selector(spec.label_selector(), spec.template, errs)
    _validate_template(spec.template, errs, ("Always",))


def _with_claim_volumes(sts: StatefulSet) -> PodTemplateSpec:
    """The template as its pods get it: a volume per claim template, so that
    containers may mount the claims (as Kubernetes validates it)."""
    claims = [c.metadata.name for c in sts.spec.volume_claim_templates or [] if c.metadata.name]
    if not claims:
        return sts.spec.template
    template = sts.spec.template.model_copy(deep=True)
    # A claim replaces the template's volume of the same name, as in the pods.
    kept = [v for v in template.spec.volumes or [] if v.name not in claims]
    template.spec.volumes = [*kept, *(
        Volume(name=name, persistent_volume_claim={"claimName": name}) for name in claims)]
    return template


def _validate_stateful_set(sts: StatefulSet, old: StatefulSet | None,
                           errs: FieldErrors) -> None:
    spec = sts.spec
    errs.non_negative("spec.replicas", spec.replicas)
    errs.non_negative("spec.minReadySeconds", spec.min_ready_seconds)
    errs.non_negative("spec.revisionHistoryLimit", spec.revision_history_limit)
    errs.one_of("spec.podManagementPolicy", spec.pod_management_policy,
                ("OrderedReady", "Parallel"))
    _validate_workload_selector(spec.selector, spec.template, errs)
    _validate_template(_with_claim_volumes(sts), errs, ("Always",))
    strategy = spec.update_strategy
    if strategy is not None:
        errs.one_of("spec.updateStrategy.type", strategy.type, ("RollingUpdate", "OnDelete"))
        if strategy.rolling_update is not None:
            errs.non_negative("spec.updateStrategy.rollingUpdate.partition",
                              strategy.rolling_update.partition)
            _validate_max_unavailable(strategy.rolling_update.max_unavailable,
                                      "spec.updateStrategy.rollingUpdate.maxUnavailable", errs)
    for i, claim in enumerate(spec.volume_claim_templates or []):
        if not claim.metadata.name:
            errs.required(f"spec.volumeClaimTemplates[{i}].metadata.name")
    if old is not None:
        # Kubernetes: only replicas, ordinals, template, updateStrategy,
        # revisionHistoryLimit, minReadySeconds and the retention policy change.
        for field in ("selector", "service_name", "pod_management_policy",
                      "volume_claim_templates"):
            new_value, old_value = getattr(spec, field), getattr(old.spec, field)
            if new_value != old_value:
                errs.forbidden("spec", "updates to statefulset spec for fields other than "
                               "'replicas', 'ordinals', 'template', 'updateStrategy', "
                               "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                               "are forbidden")
                break


def _validate_job(job: Job, old: Job | None, errs: FieldErrors) -> None:
    spec = job.spec
    for field, value in (("parallelism", spec.parallelism), ("completions", spec.completions),
                         ("backoffLimit", spec.backoff_limit),
                         ("ttlSecondsAfterFinished", spec.ttl_seconds_after_finished)):
        errs.non_negative(f"spec.{field}", value)
    errs.positive("spec.activeDeadlineSeconds", spec.active_deadline_seconds)
    errs.one_of("spec.completionMode", spec.completion_mode, ("NonIndexed", "Indexed"))
    if spec.completion_mode == "Indexed" and spec.completions is None:
        errs.required("spec.completions", "when completion mode is Indexed")
    _validate_workload_selector(spec.selector, spec.template, errs)
    _validate_template(spec.template, errs, ("OnFailure", "Never"))
    validate_task_array(job, errs)
    validate_per_index_backoff(job, errs)
    validate_pod_failure_policy(job, errs)
    if old is not None:
        errs.immutable("spec.selector", _selector_json(spec.selector),
                       _selector_json(old.spec.selector))
        errs.immutable("spec.completionMode", spec.completion_mode, old.spec.completion_mode)
        errs.immutable("spec.backoffLimitPerIndex", spec.backoff_limit_per_index,
                       old.spec.backoff_limit_per_index)
        policies = [p.model_dump(mode="json", by_alias=True, exclude_none=True) if p else None
                    for p in (spec.pod_failure_policy, old.spec.pod_failure_policy)]
        errs.immutable("spec.podFailurePolicy", *policies)
        _validate_job_template_update(job, old, errs)


def _validate_cronjob(cj: CronJob, old: CronJob | None, errs: FieldErrors) -> None:
    spec = cj.spec
    if not spec.schedule:
        errs.required("spec.schedule")
    else:
        try:
            cronschedule.parse(spec.schedule)
        except cronschedule.BadSchedule as err:
            errs.invalid("spec.schedule", spec.schedule, str(err))
    if spec.time_zone is not None:
        try:
            cronschedule.zone(spec.time_zone)
        except cronschedule.BadSchedule as err:
            errs.invalid("spec.timeZone", spec.time_zone, str(err))
    errs.one_of("spec.concurrencyPolicy", spec.concurrency_policy, ("Allow", "Forbid", "Replace"))
    for field, value in (("startingDeadlineSeconds", spec.starting_deadline_seconds),
                         ("successfulJobsHistoryLimit", spec.successful_jobs_history_limit),
                         ("failedJobsHistoryLimit", spec.failed_jobs_history_limit)):
        errs.non_negative(f"spec.{field}", value)
    job = spec.job_template.spec
    for field, value in (("parallelism", job.parallelism), ("completions", job.completions),
                         ("backoffLimit", job.backoff_limit)):
        errs.non_negative(f"spec.jobTemplate.spec.{field}", value)
    _validate_template(job.template, errs, ("OnFailure", "Never"),
                       "spec.jobTemplate.spec.template")


def _validate_job_template_update(job: Job, old: Job, errs: FieldErrors) -> None:
    """A Job's pod template is immutable (Kubernetes' validatePodTemplateUpdate),
    except that a suspended Job which never started may change where its pods
    go: node selector, tolerations, affinity, scheduling gates, labels and
    annotations (so a queue controller can place it before resuming it)."""
    new_t, old_t = job.spec.template, old.spec.template
    never_started = old.status is None or old.status.start_time is None
    if old.spec.suspend and never_started:
        old_t = old_t.model_copy(deep=True)
        for attr in ("node_selector", "tolerations", "affinity", "scheduling_gates"):
            setattr(old_t.spec, attr, getattr(new_t.spec, attr))
        old_t.metadata.labels = new_t.metadata.labels
        old_t.metadata.annotations = new_t.metadata.annotations
    errs.immutable("spec.template", new_t.model_dump(by_alias=True, exclude_none=True),
                   old_t.model_dump(by_alias=True, exclude_none=True))


# ---- core kinds -----------------------------------------------------------------------

def _validate_pod(pod: Pod, old: Pod | None, errs: FieldErrors) -> None:
    validate_pod_spec(pod.spec, "spec", errs)


def _validate_service(svc: Service, old: Service | None, errs: FieldErrors) -> None:
    spec = svc.spec
    errs.one_of("spec.type", spec.type, SERVICE_TYPES)
    errs.one_of("spec.sessionAffinity", spec.session_affinity, ("None", "ClientIP"))
    validate_labels(spec.selector, "spec.selector", errs)
    if spec.type == "ExternalName":
        if not spec.external_name:
            errs.required("spec.externalName")
        else:
            errs.each("spec.externalName", spec.external_name,
                      names.dns1123_subdomain(spec.external_name.rstrip(".")))
    elif not spec.ports and spec.cluster_ip != "None":
        errs.required("spec.ports")
    _validate_service_ports(svc, errs)
    _validate_cluster_ip(svc, old, errs)


def _validate_service_ports(svc: Service, errs: FieldErrors) -> None:
    ports = svc.spec.ports or []
    node_ports_allowed = svc.spec.type in ("NodePort", "LoadBalancer")
    seen_names: set[str] = set()
    seen_ports: set[tuple[int, str]] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        if len(ports) > 1 and not port.name:
            errs.required(f"{path}.name")
        elif port.name:
            errs.each(f"{path}.name", port.name, names.dns1123_label(port.name))
            if port.name in seen_names:
                errs.duplicate(f"{path}.name", port.name)
            seen_names.add(port.name)
        errs.in_range(f"{path}.port", port.port, 1, 65535)
        errs.one_of(f"{path}.protocol", port.protocol, PROTOCOLS)
        key = (port.port, port.protocol or "TCP")
        if key in seen_ports:
            errs.duplicate(path, {"port": port.port, "protocol": key[1]})
        seen_ports.add(key)
        if isinstance(port.target_port, int):
            errs.in_range(f"{path}.targetPort", port.target_port, 1, 65535)
        elif port.target_port is not None:
            errs.each(f"{path}.targetPort", port.target_port, names.port_name(port.target_port))
        if port.node_port is not None:
            if not node_ports_allowed:
                errs.forbidden(f"{path}.nodePort", "may not be used when `type` is "
                               f"'{svc.spec.type}'")
            errs.in_range(f"{path}.nodePort", port.node_port, 1, 65535)


def _validate_cluster_ip(svc: Service, old: Service | None, errs: FieldErrors) -> None:
    ips = [("spec.clusterIP", svc.spec.cluster_ip)]
    ips += [(f"spec.clusterIPs[{i}]", ip) for i, ip in enumerate(svc.spec.cluster_ips or [])]
    for path, ip in ips:
        if ip and ip != "None":
            errs.each(path, ip, names.ip_address(ip))
    if old is not None and old.spec.cluster_ip and svc.spec.cluster_ip:
        errs.immutable("spec.clusterIP", svc.spec.cluster_ip, old.spec.cluster_ip)


def _validate_endpoints(ep: Endpoints, old: Endpoints | None, errs: FieldErrors) -> None:
    for i, subset in enumerate(ep.subsets or []):
        path = f"subsets[{i}]"
        for field, addresses in (("addresses", subset.addresses),
                                 ("notReadyAddresses", subset.not_ready_addresses)):
            for j, address in enumerate(addresses or []):
                errs.each(f"{path}.{field}[{j}].ip", address.ip, names.ip_address(address.ip))
        for j, port in enumerate(subset.ports or []):
            errs.in_range(f"{path}.ports[{j}].port", port.port, 1, 65535)
            errs.one_of(f"{path}.ports[{j}].protocol", port.protocol, PROTOCOLS)


def _validate_node(node: Node, old: Node | None, errs: FieldErrors) -> None:
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(node.spec.taints or []):
        path = f"spec.taints[{i}]"
        errs.each(f"{path}.key", taint.key, names.qualified_name(taint.key))
        if taint.value:
            errs.each(f"{path}.value", taint.value, names.label_value(taint.value))
        if not taint.effect:
            errs.required(f"{path}.effect")
        else:
            errs.one_of(f"{path}.effect", taint.effect, TAINT_EFFECTS)
        if (taint.key, taint.effect) in seen:
            errs.duplicate(path, {"key": taint.key, "effect": taint.effect})
        seen.add((taint.key, taint.effect))
    if node.status is not None:
        validate_quantities(node.status.capacity, "status.capacity", errs)
        validate_quantities(node.status.allocatable, "status.allocatable", errs)


def _validate_config_map(cm: ConfigMap, old: ConfigMap | None, errs: FieldErrors) -> None:
    for field, data in (("data", cm.data), ("binaryData", cm.binary_data)):
        for key in data or {}:
            errs.each(f"{field}[{key}]", key, names.config_key(key))
    for key in set(cm.data or {}) & set(cm.binary_data or {}):
        errs.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
    if old is not None and old.immutable:
        _check_immutable_data(errs, (cm.data, cm.binary_data, cm.immutable),
                              (old.data, old.binary_data, old.immutable))


def _validate_secret(secret: Secret, old: Secret | None, errs: FieldErrors) -> None:
    for key, value in (secret.data or {}).items():
        errs.each(f"data[{key}]", key, names.config_key(key))
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            errs.invalid(f"data[{key}]", "<secret contents redacted>", "illegal base64 data")
    if old is not None:
        errs.immutable("type", secret.type, old.type)
        if old.immutable:
            _check_immutable_data(errs, (secret.data, secret.immutable),
                                  (old.data, old.immutable))


def _check_immutable_data(errs: FieldErrors, new: tuple[Any, ...], old: tuple[Any, ...]) -> None:
    if json.dumps(new, sort_keys=True) != json.dumps(old, sort_keys=True):
        errs.forbidden("data", "field is immutable when `immutable` is set")


def _validate_quota(quota: ResourceQuota, old: ResourceQuota | None,
                    errs: FieldErrors) -> None:
    if quota.spec is not None:
        validate_quantities(quota.spec.hard, "spec.hard", errs)
        for i, scope in enumerate(quota.spec.scopes or []):
            errs.one_of(f"spec.scopes[{i}]", scope, QUOTA_SCOPES)
    if quota.status is not None:
        validate_quantities(quota.status.hard, "status.hard", errs)
        validate_quantities(quota.status.used, "status.used", errs)


def _validate_event(event: Event, old: Event | None, errs: FieldErrors) -> None:
    errs.non_negative("count", event.count)
    errs.one_of("type", event.type, ("Normal", "Warning"))


def _validate_lease(lease: Lease, old: Lease | None, errs: FieldErrors) -> None:
    errs.positive("spec.leaseDurationSeconds", lease.spec.lease_duration_seconds)
    errs.non_negative("spec.leaseTransitions", lease.spec.lease_transitions)


def _validate_priority_class(pc: PriorityClass, old: PriorityClass | None,
                             errs: FieldErrors) -> None:
    name = pc.metadata.name or ""
    system_value = SYSTEM_PRIORITY_CLASSES.get(name)
    if name.startswith("system-") and system_value is None:
        errs.forbidden("metadata.name", "priority class names with 'system-' prefix are "
                       "reserved for system use only")
    if system_value is None and pc.value > USER_PRIORITY_MAX:
        errs.forbidden("value", f"maximum allowed value of a user defined priority is "
                       f"{USER_PRIORITY_MAX}")
    errs.one_of("preemptionPolicy", pc.preemption_policy, ("PreemptLowerPriority", "Never"))
    if old is not None:
        errs.immutable("value", pc.value, old.value)


# ---- subresource bodies -----------------------------------------------------------------

def _validate_binding(binding: Binding, old: Binding | None, errs: FieldErrors) -> None:
    if not binding.target.name:
        errs.required("target.name")
    errs.one_of("target.kind", binding.target.kind or "Node", ("Node",))


def _validate_scale(scale: Scale, old: Scale | None, errs: FieldErrors) -> None:
    errs.non_negative("spec.replicas", scale.spec.replicas)


def _validate_delete_options(opts: DeleteOptions, old: DeleteOptions | None,
                             errs: FieldErrors) -> None:
    errs.non_negative("gracePeriodSeconds", opts.grace_period_seconds)
    errs.one_of("propagationPolicy", opts.propagation_policy,
                ("Orphan", "Background", "Foreground"))
    for i, value in enumerate(opts.dry_run or []):
        errs.one_of(f"dryRun[{i}]", value, ("All",))


def _validate_pdb(pdb: PodDisruptionBudget, old: PodDisruptionBudget | None,
                  errs: FieldErrors) -> None:
    spec = pdb.spec
    if spec.min_available is not None and spec.max_unavailable is not None:
        errs.invalid("spec", "{...}", "minAvailable and maxUnavailable cannot be both set")
    for path, value in (("spec.minAvailable", spec.min_available),
                        ("spec.maxUnavailable", spec.max_unavailable)):
        _validate_int_or_percent(value, path, errs)
        if isinstance(value, str) and (_percent_or_int(value) or 0) > 100:
            errs.invalid(path, value, "must not be greater than 100%")
    if spec.selector is not None:
        validate_label_selector(spec.selector, "spec.selector", errs)
    if spec.unhealthy_pod_eviction_policy is not None:
        errs.one_of("spec.unhealthyPodEvictionPolicy", spec.unhealthy_pod_eviction_policy,
                    ("IfHealthyBudget", "AlwaysAllow"))


def _validate_namespace(ns: Namespace, old: Namespace | None, errs: FieldErrors) -> None:
    if ns.status is not None:
        errs.one_of("status.phase", ns.status.phase, ("Active", "Terminating"))


_VALIDATORS: dict[type[Any], Callable[[Any, Any, FieldErrors], None]] = {
    CustomResourceDefinition: validate_crd,
    Pod: _validate_pod, Deployment: _validate_deployment, ReplicaSet: _validate_replica_set,
    ReplicationController: _validate_replication_controller, DaemonSet: _validate_daemon_set,
    StatefulSet: _validate_stateful_set,
    Job: _validate_job, Service: _validate_service, Endpoints: _validate_endpoints,
    Node: _validate_node, ConfigMap: _validate_config_map, Secret: _validate_secret,
    ResourceQuota: _validate_quota, LimitRange: validate_limit_range, Event: _validate_event, Lease: _validate_lease,
    PriorityClass: _validate_priority_class, Binding: _validate_binding, Scale: _validate_scale,
    DeleteOptions: _validate_delete_options, Namespace: _validate_namespace,
    Alloc: validate_alloc, Framework: validate_framework, PodDisruptionBudget: _validate_pdb,
    CronJob: _validate_cronjob, HorizontalPodAutoscaler: validate_hpa,
    Role: validate_role, ClusterRole: validate_cluster_role, RoleBinding: validate_role_binding,
    ClusterRoleBinding: validate_cluster_role_binding,
    CertificateSigningRequest: validate_csr, EndpointSlice: validate_endpoint_slice,
}
