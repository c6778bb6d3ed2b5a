"""Pod Security admission, as kube-apiserver's built-in ``PodSecurity`` plugin.

Each namespace picks a level per mode with labels (versions: "latest" or
"v1.N"; corral's checks are the same for every version):

    pod-security.kubernetes.io/enforce[-version]  pods that violate it are refused
    pod-security.kubernetes.io/warn[-version]     a Warning header kubectl prints
    pod-security.kubernetes.io/audit[-version]    a log line (the audit log's annotation)

    Pod CREATE (or an UPDATE changing images) ─► enforce: 403 'pods "x" is forbidden:
        violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)'
        ─► audit ─► warn (only when admitted)
    Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
    ReplicationController, PodTemplate ─► warn + audit on their pod template
    a Job (or CronJob) run as tasks (corral.dev/run-as: tasks) ─► enforced on its
        template too: its tasks run as processes and no Pod is made to be refused;
        a task array's Alloc (spec.task) likewise, as the pod its tasks stand for
    Namespace CREATE/UPDATE ─► labels validated (422); raising enforce warns about
        the pods already there that violate it

The cluster default (labels absent) is corral's choice, not Kubernetes':
enforce=baseline, warn=baseline, audit=baseline. Kubernetes defaults to
privileged because a container runtime already isolates pods; corral runs them
as processes on the host, where hostNetwork, privileged, hostPath or a
workingDir of the node are a way out of the pod's sandbox, and baseline refuses
exactly those while every ordinary workload passes. A namespace that needs more
says so: ``kubectl label ns x pod-security.kubernetes.io/enforce=privileged``.
No namespace is exempt: corral runs no control-plane pods (the master and the
agents are processes of their own), so kube-system needs no exemption.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from corral.api.admission.pod_security_checks import LEVELS, evaluate, forbidden_detail
from corral.api.admission.priority import forbidden
from corral.api.alloc_validation import RUN_AS, RUN_AS_TASKS
from corral.api.errors import Cause, invalid
from corral.api.registry import Filter, Registry, list_objects
from corral.api.registry.objects import shown_name
from corral.api.resources import BY_KIND, Resource
from corral.objects import Obj, meta, name_of

log = logging.getLogger(__name__)

PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
LATEST = "latest"
NAMESPACE = BY_KIND["Namespace"]
POD = BY_KIND["Pod"]
# Where each pod-controller kind keeps its pod template.
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"), "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"), "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"), "ReplicationController": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"), "PodTemplate": ("template",),
}
MAX_PODS_TO_CHECK = 3000  # Kubernetes' defaultNamespaceMaxPodsToCheck


@dataclass(frozen=True)
class LevelVersion:
    level: str
    version: str = LATEST

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"


@dataclass(frozen=True)
class Policy:
    enforce: LevelVersion
    audit: LevelVersion
    warn: LevelVersion

    def mode(self, name: str) -> LevelVersion:
        return {"enforce": self.enforce, "audit": self.audit, "warn": self.warn}[name]

    @property
    def fully_privileged(self) -> bool:
        return all(self.mode(m).level == "privileged" for m in MODES)


DEFAULT_POLICY = Policy(LevelVersion("baseline"), LevelVersion("baseline"),
                        LevelVersion("baseline"))


@dataclass
class Parsed:
    policy: Policy
    causes: list[Cause] = field(default_factory=list)


def _bad_label(label: str, value: str, detail: str) -> Cause:
    return Cause(f"metadata.labels[{label}]", f'Invalid value: "{value}": {detail}',
                 "FieldValueInvalid")


def _version_ok(value: str) -> bool:
    if value == LATEST:
        return True
    major, _, minor = value.partition(".")
    return major == "v1" and minor.isdigit() and str(int(minor)) == minor


def policy_of(labels: dict[str, str], default: Policy = DEFAULT_POLICY) -> Parsed:
    """Kubernetes' api.PolicyToEvaluate: labels over the default; an invalid level
    counts as restricted (fail closed), an invalid version as latest; an
    explicit enforce stricter than warn raises warn with it."""
    parsed = Parsed(default)
    modes = {m: default.mode(m) for m in MODES}
    for mode in MODES:
        level_label, version_label = PREFIX + mode, f"{PREFIX}{mode}-version"
        if level_label in labels:
            level = labels[level_label]
            if level not in LEVELS:
                parsed.causes.append(_bad_label(level_label, level,
                                                "must be one of privileged, baseline, restricted"))
                level = "restricted"
            modes[mode] = replace(modes[mode], level=level)
        if version_label in labels:
            version = labels[version_label]
            if not _version_ok(version):
                parsed.causes.append(_bad_label(version_label, version,
                                                'must be "latest" or "v1.x"'))
                version = LATEST
            modes[mode] = replace(modes[mode], version=version)
    enforce_set = PREFIX + "enforce" in labels and labels[PREFIX + "enforce"] in LEVELS
    if enforce_set and PREFIX + "warn" not in labels and \
            LEVELS.index(modes["enforce"].level) > LEVELS.index(modes["warn"].level):
        version = modes["warn"].version if f"{PREFIX}warn-version" in labels \
            else modes["enforce"].version
        modes["warn"] = LevelVersion(modes["enforce"].level, version)
    parsed.policy = Policy(modes["enforce"], modes["audit"], modes["warn"])
    return parsed


def _template(kind: str, obj: Obj) -> Obj | None:
    node: object = obj
    for key in TEMPLATE_PATHS[kind]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _runs_as_tasks(kind: str, obj: Obj) -> bool:
    """A task array (a Job, or a CronJob's Jobs, run as tasks): no Pod is ever made
    to be checked, so its template is enforced as its pods would be."""
    job = obj
    if kind == "CronJob":
        job = (obj.get("spec") or {}).get("jobTemplate") or {}
    elif kind != "Job":
        return False
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    return isinstance(annotations, dict) and annotations.get(RUN_AS) == RUN_AS_TASKS


def _alloc_pod_spec(alloc: Obj) -> Obj:
    """A task array's Alloc as the pod its tasks stand for (what the agent runs
    them as: corral/agent/run_as.py run_as_for_alloc), so that one written by
    hand is held to the namespace's level as its Job was."""
    s = alloc.get("spec") or {}
    task = s.get("task") or {}
    container: Obj = {"name": task.get("name") or "task"}
    for field_name in ("securityContext", "workingDir"):
        if task.get(field_name) is not None:
            container[field_name] = task[field_name]
    pod: Obj = {"containers": [container]}
    if s.get("securityContext") is not None:
        pod["securityContext"] = s["securityContext"]
    return pod


def _images(spec: Obj) -> list[object]:
    return [(f, c.get("image")) for f in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(f) or [] if isinstance(c, dict)]


class PodSecurityAdmission:
    """Enforces, warns and audits the namespace's Pod Security levels."""

    def __init__(self, registry: Registry, default: Policy = DEFAULT_POLICY) -> None:
        self.registry = registry
        self.default = default

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> list[str] | None:
        if res.kind == "Namespace":
            return await self._namespace(op, obj, old)
        if res.kind == "Pod":
            if op == "UPDATE" and old is not None and \
                    _images(obj.get("spec") or {}) == _images(old.get("spec") or {}):
                return None  # status, binding, labels: nothing the levels look at
            return await self._evaluate(res, obj, obj.get("spec") or {}, enforce=True)
        if res.kind == "Alloc" and (obj.get("spec") or {}).get("task") is not None:
            spec = _alloc_pod_spec(obj)
            if op == "UPDATE" and old is not None and _alloc_pod_spec(old) == spec:
                return None  # status, ranges, claims: nothing the levels look at
            return await self._evaluate(res, obj, spec, enforce=True)
        if res.kind in TEMPLATE_PATHS:
            template = _template(res.kind, obj)
            if template is None or (op == "UPDATE" and old is not None
                                    and _template(res.kind, old) == template):
                return None
            return await self._evaluate(res, obj, template.get("spec") or {},
                                        enforce=_runs_as_tasks(res.kind, obj))
        return None

    async def _policy(self, namespace: str) -> Parsed:
        ns = await self.registry.find(NAMESPACE, None, namespace)
        labels = (meta(ns).get("labels") or {}) if ns is not None else {}
        return policy_of(labels, self.default)

    async def _evaluate(self, res: Resource, obj: Obj, spec: Obj, *, enforce: bool
                        ) -> list[str] | None:
        namespace = str(meta(obj).get("namespace") or "")
        parsed = await self._policy(namespace)
        policy = parsed.policy
        if policy.fully_privileged and not parsed.causes:
            return None
        results: dict[str, list[tuple[str, str]]] = {}

        def violations(lv: LevelVersion) -> list[tuple[str, str]]:
            return results.setdefault(lv.level, evaluate(lv.level, spec))

        if enforce and (found := violations(policy.enforce)):
            raise forbidden(res, shown_name(obj),
                            f'violates PodSecurity "{policy.enforce}": {forbidden_detail(found)}')
        if found := violations(policy.audit):
            log.warning("pod security audit kind=%s namespace=%s name=%s violation=%s",
                        res.kind, namespace, name_of(obj),
                        f'would violate PodSecurity "{policy.audit}": {forbidden_detail(found)}')
        if found := violations(policy.warn):
            return [f'would violate PodSecurity "{policy.warn}": {forbidden_detail(found)}']
        return None

    async def _namespace(self, op: str, ns: Obj, old: Obj | None) -> list[str] | None:
        labels = meta(ns).get("labels") or {}
        parsed = policy_of(labels, self.default)
        old_parsed = policy_of((meta(old).get("labels") or {}) if old else {}, self.default)
        if parsed.causes and (op == "CREATE" or parsed.causes != old_parsed.causes):
            raise invalid("Namespace", name_of(ns), parsed.causes)
        new, previous = parsed.policy.enforce, old_parsed.policy.enforce
        if op != "UPDATE" or new == previous or new.level == "privileged" or (
                new.version == previous.version
                and LEVELS.index(new.level) <= LEVELS.index(previous.level)):
            return None
        return await self._existing_pods(name_of(ns), new)

    async def _existing_pods(self, namespace: str, enforce: LevelVersion) -> list[str]:
        """Kubernetes' EvaluatePodsInNamespace: one line per distinct violation."""
        pods = (await list_objects(self.registry.store, POD, namespace, Filter(POD))).items
        by_reason: dict[str, list[str]] = {}
        for pod in pods[:MAX_PODS_TO_CHECK]:
            found = evaluate(enforce.level, pod.get("spec") or {})
            if found:
                by_reason.setdefault(", ".join(r for r, _ in found), []).append(name_of(pod))
        if not by_reason:
            return []
        warnings = []
        if len(pods) > MAX_PODS_TO_CHECK:
            warnings.append("new PodSecurity enforce level only checked against the first "
                            f"{MAX_PODS_TO_CHECK} of {len(pods)} existing pods")
        warnings.append(f'existing pods in namespace "{namespace}" violate the new '
                        f'PodSecurity enforce level "{enforce}"')
        lines = []
        for reason, names in by_reason.items():
            first, others = min(names), len(names) - 1
            who = first if others == 0 else (
                f"{first} (and {others} other pod{'s' if others > 1 else ''})")
            lines.append(f"{who}: {reason}")
        return warnings + sorted(lines)
