"""Kubernetes' defaults, filled in on every create and update so every component
reads the same values Kubernetes would have stored ("restartPolicy is Always
unless the manifest says otherwise").

``apply_defaults`` runs after the registry has set metadata.uid: a Job's
generated selector names its own uid.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from corral.api.kinds.apps import (
    DaemonSet,
    DaemonSetUpdateStrategy,
    Deployment,
    DeploymentStrategy,
    ReplicaSet,
    RollingUpdateDaemonSet,
    RollingUpdateDeployment,
    RollingUpdateStatefulSetStrategy,
    StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetUpdateStrategy,
)
from corral.api.kinds.autoscaling import (
    HorizontalPodAutoscaler,
    HPAScalingPolicy,
    HPAScalingRules,
    MetricSpec,
    MetricTarget,
    ResourceMetricSource,
)
from corral.api.kinds.base import INT32_MAX, KubeModel
from corral.api.kinds.batch import CronJob, Job
from corral.api.kinds.container import Container, Probe
from corral.api.kinds.core import LimitRange, Namespace, NamespaceStatus, Pod, Secret
from corral.api.kinds.discovery import EndpointSlice
from corral.api.kinds.meta import LabelSelector
from corral.api.kinds.pod import PodSpec, PodTemplateSpec
from corral.api.kinds.replication import ReplicationController
from corral.api.kinds.scheduling import PriorityClass
from corral.api.kinds.service import Service
from corral.api.quantity import is_quantity

JOB_CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
# The unprefixed labels Kubernetes still sets beside the prefixed ones.
LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"

DEFAULT_SCHEDULER = "default-scheduler"


def apply_defaults(obj: KubeModel) -> None:
    """Fill in, in place, every default the kind has that is not set."""
    defaulter = _DEFAULTERS.get(type(obj))
    if defaulter is not None:
        defaulter(obj)


# ---- pods ---------------------------------------------------------------------

def default_pod_spec(spec: PodSpec) -> None:
    if spec.restart_policy is None:
        spec.restart_policy = "Always"
    if spec.termination_grace_period_seconds is None:
        spec.termination_grace_period_seconds = 30
    if spec.dns_policy is None:
        spec.dns_policy = "ClusterFirst"
    if spec.scheduler_name is None:
        spec.scheduler_name = DEFAULT_SCHEDULER
    for container in [*spec.containers, *(spec.init_containers or [])]:
        default_container(container)


def default_container(container: Container) -> None:
    if container.image_pull_policy is None:
        container.image_pull_policy = _pull_policy(container.image or "")
    if container.termination_message_path is None:
        container.termination_message_path = "/dev/termination-log"
    if container.termination_message_policy is None:
        container.termination_message_policy = "File"
    for port in container.ports or []:
        if port.protocol is None:
            port.protocol = "TCP"
    for probe in container.probes().values():
        default_probe(probe)
    _requests_from_limits(container)


def _pull_policy(image: str) -> str:
    """Always for ":latest" or an untagged image, else IfNotPresent (a digest
    or a fixed tag names content that does not change)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def default_probe(probe: Probe) -> None:
    if probe.period_seconds is None:
        probe.period_seconds = 10
    if probe.timeout_seconds is None:
        probe.timeout_seconds = 1
    if probe.success_threshold is None:
        probe.success_threshold = 1
    if probe.failure_threshold is None:
        probe.failure_threshold = 3
    if probe.http_get is not None:
        probe.http_get.path = probe.http_get.path or "/"
        probe.http_get.scheme = probe.http_get.scheme or "HTTP"


def _requests_from_limits(container: Container) -> None:
    # A limit without a request requests the limit: the scheduler and quota
    # then count what the container may use.
    resources = container.resources
    if resources is None or not resources.limits:
        return
    requests = dict(resources.requests or {})
    for name, limit in resources.limits.items():
        if is_quantity(limit):  # a bad limit is reported once, by validation
            requests.setdefault(name, limit)
    resources.requests = requests


def default_template(template: PodTemplateSpec) -> None:
    default_pod_spec(template.spec)


def _default_pod(pod: Pod) -> None:
    default_pod_spec(pod.spec)
    # ServiceAccount admission: a pod runs as its namespace's `default` account
    # unless it names one; the deprecated field mirrors it, as v1 conversion does.
    spec = pod.spec
    spec.service_account_name = spec.service_account_name or spec.service_account or "default"
    spec.service_account = spec.service_account_name


# ---- workloads ------------------------------------------------------------------

def _default_deployment(deploy: Deployment) -> None:
    spec = deploy.spec
    if spec.replicas is None:
        spec.replicas = 1
    if spec.strategy is None:
        spec.strategy = DeploymentStrategy()
    if spec.strategy.type is None:
        spec.strategy.type = "RollingUpdate"
    if spec.strategy.type == "RollingUpdate":
        rolling = spec.strategy.rolling_update or RollingUpdateDeployment()
        rolling.max_surge = "25%" if rolling.max_surge is None else rolling.max_surge
        if rolling.max_unavailable is None:
            rolling.max_unavailable = "25%"
        spec.strategy.rolling_update = rolling
    if spec.revision_history_limit is None:
        spec.revision_history_limit = 10
    if spec.progress_deadline_seconds is None:
        spec.progress_deadline_seconds = 600
    default_template(spec.template)


def _default_replica_set(rs: ReplicaSet) -> None:
    if rs.spec.replicas is None:
        rs.spec.replicas = 1
    default_template(rs.spec.template)


def _default_daemon_set(ds: DaemonSet) -> None:
    spec = ds.spec
    strategy = spec.update_strategy or DaemonSetUpdateStrategy()
    if strategy.type is None:
        strategy.type = "RollingUpdate"
    if strategy.type == "RollingUpdate":
        rolling = strategy.rolling_update or RollingUpdateDaemonSet()
        if rolling.max_unavailable is None:
            rolling.max_unavailable = 1
        if rolling.max_surge is None:
            rolling.max_surge = 0
        strategy.rolling_update = rolling
    spec.update_strategy = strategy
    if spec.revision_history_limit is None:
        spec.revision_history_limit = 10
    default_template(spec.template)


def _default_replication_controller(rc: ReplicationController) -> None:
    """Kubernetes: the selector and the object's labels default to the template's labels."""
    spec = rc.spec
    labels = dict((spec.template.metadata.labels or {}) if spec.template else {})
    if not spec.selector and labels:
        spec.selector = labels
    if not rc.metadata.labels and labels:
        rc.metadata.labels = labels
    if spec.replicas is None:
        spec.replicas = 1
    if spec.template is not None:
        default_template(spec.template)


def _default_stateful_set(sts: StatefulSet) -> None:
    spec = sts.spec
    if spec.replicas is None:
        spec.replicas = 1
    spec.pod_management_policy = spec.pod_management_policy or "OrderedReady"
    strategy = spec.update_strategy = spec.update_strategy or StatefulSetUpdateStrategy()
    strategy.type = strategy.type or "RollingUpdate"
    if strategy.type == "RollingUpdate":
        rolling = strategy.rolling_update or RollingUpdateStatefulSetStrategy()
        rolling.partition = rolling.partition or 0
        strategy.rolling_update = rolling
    if spec.revision_history_limit is None:
        spec.revision_history_limit = 10
    policy = spec.persistent_volume_claim_retention_policy or \
        StatefulSetPersistentVolumeClaimRetentionPolicy()
    policy.when_deleted = policy.when_deleted or "Retain"
    policy.when_scaled = policy.when_scaled or "Retain"
    spec.persistent_volume_claim_retention_policy = policy
    default_template(spec.template)


def _default_job(job: Job) -> None:
    spec = job.spec
    # Kubernetes: both unset → 1 and 1; parallelism alone set → completions stays
    # unset (a work queue: done when any pod succeeds).
    if spec.completions is None and spec.parallelism is None:
        spec.completions = 1
    if spec.parallelism is None:
        spec.parallelism = 1
    if spec.backoff_limit is None:
        # Per-index back-off replaces the Job-wide limit (Kubernetes: MaxInt32).
        spec.backoff_limit = 6 if spec.backoff_limit_per_index is None else INT32_MAX
    if spec.completion_mode is None:
        spec.completion_mode = "NonIndexed"
    if spec.suspend is None:
        spec.suspend = False
    if spec.pod_replacement_policy is None and spec.pod_failure_policy is None:
        spec.pod_replacement_policy = "TerminatingOrFailed"
    if spec.manual_selector is not True:
        _generate_job_selector(job)
    default_template(spec.template)


def _default_cronjob(cj: CronJob) -> None:
    spec = cj.spec
    if spec.concurrency_policy is None:
        spec.concurrency_policy = "Allow"
    if spec.suspend is None:
        spec.suspend = False
    if spec.successful_jobs_history_limit is None:
        spec.successful_jobs_history_limit = 3
    if spec.failed_jobs_history_limit is None:
        spec.failed_jobs_history_limit = 1
    default_template(spec.job_template.spec.template)


def _generate_job_selector(job: Job) -> None:
    """Label the template with the Job's uid and select on it, so two Jobs of
    the same name (one deleted, one new) never adopt each other's pods."""
    uid, name = job.metadata.uid, job.metadata.name
    if not uid or job.spec.selector is not None:
        return
    labels = dict(job.spec.template.metadata.labels or {})
    labels.setdefault(JOB_CONTROLLER_UID, uid)
    labels.setdefault(LEGACY_CONTROLLER_UID, uid)
    if name:
        labels.setdefault(JOB_NAME, name)
        labels.setdefault(LEGACY_JOB_NAME, name)
    job.spec.template.metadata.labels = labels
    job.spec.selector = LabelSelector(match_labels={JOB_CONTROLLER_UID: uid})


# ---- other kinds ----------------------------------------------------------------

def _default_service(svc: Service) -> None:
    spec = svc.spec
    if spec.type is None:
        spec.type = "ClusterIP"
    if spec.session_affinity is None:
        spec.session_affinity = "None"
    if spec.type == "ExternalName":
        return
    for port in spec.ports or []:
        if port.protocol is None:
            port.protocol = "TCP"
        if port.target_port is None and port.port > 0:  # port 0 is reported, not copied
            port.target_port = port.port
    if spec.internal_traffic_policy is None:
        spec.internal_traffic_policy = "Cluster"
    if spec.type in ("NodePort", "LoadBalancer") and spec.external_traffic_policy is None:
        spec.external_traffic_policy = "Cluster"


def _default_endpoint_slice(eps: EndpointSlice) -> None:
    # v1 cannot write deprecatedTopology (only v1beta1 could, which corral does
    # not serve): Kubernetes silently drops it, so no write ever stores one.
    for endpoint in eps.endpoints:
        endpoint.deprecated_topology = None
    for port in eps.ports or []:
        if port.name is None:
            port.name = ""
        if port.protocol is None:
            port.protocol = "TCP"


def _default_secret(secret: Secret) -> None:
    if secret.type is None:
        secret.type = "Opaque"
    # stringData is write-only: Kubernetes folds it into data (it wins on a clash).
    if secret.string_data:
        data = dict(secret.data or {})
        for key, text in secret.string_data.items():
            data[key] = base64.b64encode(text.encode()).decode()
        secret.data = data
        secret.string_data = None


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _default_namespace(ns: Namespace) -> None:
    # Kubernetes labels every namespace with its own name, so a namespaceSelector
    # can pick one by name; the label says the name whatever a write sent.
    if ns.metadata.name:
        ns.metadata.labels = {**(ns.metadata.labels or {}), NAMESPACE_NAME_LABEL: ns.metadata.name}
    if ns.status is None:
        ns.status = NamespaceStatus()
    if ns.status.phase is None:
        ns.status.phase = "Active"


def _default_limit_range(lr: LimitRange) -> None:
    """SetDefaults_LimitRangeItem: a Container item's default limit is its max, and
    its default request its default limit, else its min, where not given; the
    LimitRanger admission plugin then fills containers from these two alone."""
    for item in lr.spec.limits if lr.spec is not None else ():
        if item.type != "Container":
            continue
        default = _filled(item.default, item.max)
        request = _filled(_filled(item.default_request, default), item.min)
        item.default, item.default_request = default or None, request or None


def _filled(given: dict[str, str] | None, fallback: dict[str, str] | None) -> dict[str, str]:
    # A bad quantity is not copied: validation reports it once, where it was written.
    filled = dict(given or {})
    for name, quantity in (fallback or {}).items():
        if is_quantity(quantity):
            filled.setdefault(name, quantity)
    return filled


def _default_priority_class(pc: PriorityClass) -> None:
    if pc.preemption_policy is None:
        pc.preemption_policy = "PreemptLowerPriority"


# ---- autoscaling -------------------------------------------------------------------

DEFAULT_CPU_UTILIZATION = 80  # an HPA without metrics targets 80% of its pods' cpu requests


def _default_hpa(hpa: HorizontalPodAutoscaler) -> None:
    """autoscaling/v2's SetDefaults_HorizontalPodAutoscaler: minReplicas 1, cpu at
    80% when no metric is given, and a behavior that is given gets every rule it
    leaves out (a missing behavior stays missing: the controller's classic rules)."""
    spec = hpa.spec
    if spec.min_replicas is None:
        spec.min_replicas = 1
    if not spec.metrics:
        spec.metrics = [MetricSpec(type="Resource", resource=ResourceMetricSource(
            name="cpu", target=MetricTarget(type="Utilization",
                                            average_utilization=DEFAULT_CPU_UTILIZATION)))]
    if spec.behavior is not None:
        spec.behavior.scale_up = _scaling_rules(spec.behavior.scale_up, up=True)
        spec.behavior.scale_down = _scaling_rules(spec.behavior.scale_down, up=False)


def _scaling_rules(rules: HPAScalingRules | None, *, up: bool) -> HPAScalingRules:
    """GenerateHPAScaleUpRules / GenerateHPAScaleDownRules: scale up at once, by
    4 pods or 100% each 15 s; scale down after 300 s of lower recommendations,
    by up to 100% each 15 s."""
    rules = rules or HPAScalingRules()
    if rules.stabilization_window_seconds is None:
        rules.stabilization_window_seconds = 0 if up else 300
    if rules.select_policy is None:
        rules.select_policy = "Max"
    if rules.policies is None:
        rules.policies = [HPAScalingPolicy(type="Percent", value=100, period_seconds=15)]
        if up:
            rules.policies.insert(0, HPAScalingPolicy(type="Pods", value=4, period_seconds=15))
    return rules


_DEFAULTERS: dict[type[Any], Callable[[Any], None]] = {
    HorizontalPodAutoscaler: _default_hpa,
    Pod: _default_pod,
    Deployment: _default_deployment,
    ReplicaSet: _default_replica_set,
    ReplicationController: _default_replication_controller,
    DaemonSet: _default_daemon_set,
    StatefulSet: _default_stateful_set,
    Job: _default_job,
    CronJob: _default_cronjob,
    Service: _default_service,
    EndpointSlice: _default_endpoint_slice,
    Secret: _default_secret,
    Namespace: _default_namespace,
    LimitRange: _default_limit_range,
    PriorityClass: _default_priority_class,
}
