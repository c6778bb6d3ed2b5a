"""Validation: valid manifests pass; each bad input gives a cause on the right
field with Kubernetes' reason; update-only rules see the old object."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from corral.api import kinds
from corral.api.defaults import apply_defaults
from corral.api.errors import Cause
from corral.api.validation import validate
from tests.unit.test_kinds import MANIFESTS, _manifest

Body = dict[str, Any]


def _container(**fields: Any) -> Body:
    return {"name": "c", "image": "app:1", **fields}


BASES: dict[str, Body] = {
    "Pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [_container()]}},
    "Deployment": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                   "spec": {"selector": {"matchLabels": {"app": "d"}},
                            "template": {"metadata": {"labels": {"app": "d"}},
                                         "spec": {"containers": [_container()]}}}},
    "ReplicaSet": {"metadata": {"name": "r"},
                   "spec": {"selector": {"matchLabels": {"app": "r"}},
                            "template": {"metadata": {"labels": {"app": "r"}},
                                         "spec": {"containers": [_container()]}}}},
    "Job": {"metadata": {"name": "j", "uid": "u-1"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [_container()]}}}},
    "Service": {"metadata": {"name": "s"},
                "spec": {"selector": {"app": "d"}, "ports": [{"port": 80}]}},
    "Node": {"metadata": {"name": "n1"}, "spec": {}},
    "Namespace": {"metadata": {"name": "team-a"}},
    "Secret": {"metadata": {"name": "s"}, "data": {"k": "dg=="}},
    "ConfigMap": {"metadata": {"name": "c"}, "data": {"k": "v"}},
    "PriorityClass": {"metadata": {"name": "high"}, "value": 1000},
    "Lease": {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}},
    "ResourceQuota": {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "10"}}},
    "Endpoints": {"metadata": {"name": "s"}, "subsets": [{"addresses": [{"ip": "127.0.0.2"}],
                                                          "ports": [{"port": 8080}]}]},
    "Event": {"metadata": {"name": "e.1"}, "involvedObject": {"kind": "Pod", "name": "p"},
              "type": "Normal"},
    "Binding": {"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}},
    "Scale": {"metadata": {"name": "d"}, "spec": {"replicas": 1}},
    "DeleteOptions": {"propagationPolicy": "Background"},
}


def _check(kind: str, body: Body, old: Body | None = None) -> list[Cause]:
    obj = kinds.decode(kind, body)
    apply_defaults(obj)
    return validate(obj, kinds.decode(kind, old) if old is not None else None)


def _pod_spec(body: Body) -> Body:
    spec: Body = body["spec"]
    inner: Body = spec["template"]["spec"] if "template" in spec else spec
    return inner


@pytest.mark.parametrize("kind", sorted(BASES))
def test_minimal_objects_are_valid(kind: str) -> None:
    assert _check(kind, copy.deepcopy(BASES[kind])) == []


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_realistic_manifests_are_valid(kind: str) -> None:
    assert _check(kind, _manifest(kind)) == []


@dataclass
class Case:
    id: str
    kind: str
    change: Callable[[Body], object]
    field: str
    reason: str = "FieldValueInvalid"


def _set(path: str, value: Any) -> Callable[[Body], object]:
    """Set a dotted path (list indexes as numbers) in the body."""
    def change(body: Body) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[int(last) if last.isdigit() else last] = value
    return change


def _container_set(**fields: Any) -> Callable[[Body], object]:
    return lambda body: _pod_spec(body)["containers"][0].update(fields)


C0 = "spec.containers[0]"
TPL = "spec.template.spec"

CASES = [
    # metadata
    Case("name-not-dns1123", "Pod", _set("metadata.name", "Bad_Name"), "metadata.name"),
    Case("name-too-long", "Pod", _set("metadata.name", "a" * 254), "metadata.name"),
    Case("no-name", "Pod", _set("metadata.name", ""), "metadata.name", "FieldValueRequired"),
    Case("bad-label-value", "Pod", _set("metadata.labels", {"app": "has space"}),
         "metadata.labels"),
    Case("bad-label-key", "Pod", _set("metadata.labels", {"bad key": "v"}), "metadata.labels"),
    Case("label-value-too-long", "Pod", _set("metadata.labels", {"a": "v" * 64}),
         "metadata.labels"),
    Case("bad-annotation-key", "Pod", _set("metadata.annotations", {"/x": "v"}),
         "metadata.annotations"),
    Case("annotations-too-big", "Pod", _set("metadata.annotations", {"a": "x" * 300_000}),
         "metadata.annotations", "FieldValueTooLong"),
    Case("two-controllers", "Pod", _set("metadata.ownerReferences", [
        {"apiVersion": "v1", "kind": "X", "name": n, "uid": n, "controller": True}
        for n in ("a", "b")]), "metadata.ownerReferences"),
    Case("namespace-name-not-label", "Namespace", _set("metadata.name", "a.b"),
         "metadata.name"),
    Case("service-name-not-dns1035", "Service", _set("metadata.name", "1abc"), "metadata.name"),
    # pod spec
    Case("no-containers", "Pod", _set("spec.containers", []), "spec.containers",
         "FieldValueRequired"),
    Case("container-name", "Pod", _container_set(name="C_1"), f"{C0}.name"),
    Case("duplicate-containers", "Pod", _set("spec.containers", [_container(), _container()]),
         "spec.containers[1].name", "FieldValueDuplicate"),
    Case("init-container-clash", "Pod", _set("spec.initContainers", [_container()]),
         f"{C0}.name", "FieldValueDuplicate"),
    Case("port-out-of-range", "Pod", _container_set(ports=[{"containerPort": 70000}]),
         f"{C0}.ports[0].containerPort"),
    Case("port-zero", "Pod", _container_set(ports=[{"containerPort": 0}]),
         f"{C0}.ports[0].containerPort"),
    Case("port-name-too-long", "Pod",
         _container_set(ports=[{"containerPort": 80, "name": "averyverylongportname"}]),
         f"{C0}.ports[0].name"),
    Case("port-name-no-letter", "Pod",
         _container_set(ports=[{"containerPort": 80, "name": "80"}]), f"{C0}.ports[0].name"),
    Case("port-protocol", "Pod",
         _container_set(ports=[{"containerPort": 80, "protocol": "ICMP"}]),
         f"{C0}.ports[0].protocol", "FieldValueNotSupported"),
    Case("quantity-2GB", "Pod", _container_set(resources={"requests": {"memory": "2GB"}}),
         f"{C0}.resources.requests[memory]"),
    Case("quantity-abc", "Pod", _container_set(resources={"limits": {"cpu": "abc"}}),
         f"{C0}.resources.limits[cpu]"),
    Case("quantity-negative", "Pod", _container_set(resources={"requests": {"cpu": "-1"}}),
         f"{C0}.resources.requests[cpu]"),
    Case("request-over-limit", "Pod",
         _container_set(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}),
         f"{C0}.resources.requests[cpu]"),
    Case("restart-policy", "Pod", _set("spec.restartPolicy", "Sometimes"),
         "spec.restartPolicy", "FieldValueNotSupported"),
    Case("dns-policy", "Pod", _set("spec.dnsPolicy", "Google"), "spec.dnsPolicy",
         "FieldValueNotSupported"),
    Case("pull-policy", "Pod", _container_set(imagePullPolicy="Sometimes"),
         f"{C0}.imagePullPolicy", "FieldValueNotSupported"),
    Case("probe-without-handler", "Pod", _container_set(livenessProbe={"periodSeconds": 5}),
         f"{C0}.livenessProbe", "FieldValueRequired"),
    Case("probe-two-handlers", "Pod", _container_set(readinessProbe={
        "exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}),
         f"{C0}.readinessProbe.tcpSocket", "FieldValueForbidden"),
    Case("probe-period-zero", "Pod", _container_set(livenessProbe={
        "exec": {"command": ["true"]}, "periodSeconds": 0}), f"{C0}.livenessProbe.periodSeconds"),
    Case("probe-negative-delay", "Pod", _container_set(startupProbe={
        "exec": {"command": ["true"]}, "initialDelaySeconds": -1}),
         f"{C0}.startupProbe.initialDelaySeconds"),
    Case("liveness-success-threshold", "Pod", _container_set(livenessProbe={
        "exec": {"command": ["true"]}, "successThreshold": 2}),
         f"{C0}.livenessProbe.successThreshold"),
    Case("probe-port", "Pod", _container_set(livenessProbe={"httpGet": {"port": 0}}),
         f"{C0}.livenessProbe.httpGet.port"),
    Case("env-value-and-from", "Pod", _container_set(env=[{
        "name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
         f"{C0}.env[0].valueFrom"),
    Case("mount-missing-volume", "Pod", _container_set(volumeMounts=[
        {"name": "nope", "mountPath": "/x"}]), f"{C0}.volumeMounts[0].name",
         "FieldValueNotFound"),
    Case("duplicate-volumes", "Pod", _set("spec.volumes", [{"name": "v", "emptyDir": {}}] * 2),
         "spec.volumes[1].name", "FieldValueDuplicate"),
    Case("grace-negative", "Pod", _set("spec.terminationGracePeriodSeconds", -1),
         "spec.terminationGracePeriodSeconds"),
    Case("toleration-operator", "Pod", _set("spec.tolerations", [
        {"key": "k", "operator": "Maybe"}]), "spec.tolerations[0].operator",
         "FieldValueNotSupported"),
    Case("toleration-exists-value", "Pod", _set("spec.tolerations", [
        {"key": "k", "operator": "Exists", "value": "v"}]), "spec.tolerations[0].operator"),
    Case("toleration-effect", "Pod", _set("spec.tolerations", [
        {"key": "k", "value": "v", "effect": "Evict"}]), "spec.tolerations[0].effect",
         "FieldValueNotSupported"),
    Case("toleration-seconds-without-noexecute", "Pod", _set("spec.tolerations", [
        {"key": "k", "operator": "Exists", "tolerationSeconds": 5}]),
         "spec.tolerations[0].effect"),
    Case("node-affinity-operator", "Pod", _set("spec.affinity", {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "z", "operator": "Near", "values": ["a"]}]}]}}}),
         "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
         ".nodeSelectorTerms[0].matchExpressions[0].operator", "FieldValueNotSupported"),
    Case("node-affinity-gt-not-int", "Pod", _set("spec.affinity", {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {
            "matchExpressions": [{"key": "z", "operator": "Gt", "values": ["x"]}]}}]}}),
         "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]"
         ".preference.matchExpressions[0].values[0]"),
    Case("in-without-values", "Pod", _set("spec.affinity", {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "z", "operator": "In"}]}]}}}),
         "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
         ".nodeSelectorTerms[0].matchExpressions[0].values", "FieldValueRequired"),
    Case("anti-affinity-no-topology", "Pod", _set("spec.affinity", {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"a": "b"}}, "topologyKey": ""}]}}),
         "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
         ".topologyKey", "FieldValueRequired"),
    Case("affinity-weight", "Pod", _set("spec.affinity", {"podAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 101, "podAffinityTerm": {
            "topologyKey": "zone"}}]}}),
         "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight"),
    Case("spread-max-skew", "Pod", _set("spec.topologySpreadConstraints", [
        {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]),
         "spec.topologySpreadConstraints[0].maxSkew"),
    # workloads
    Case("negative-replicas", "Deployment", _set("spec.replicas", -1), "spec.replicas"),
    Case("rs-negative-replicas", "ReplicaSet", _set("spec.replicas", -3), "spec.replicas"),
    Case("selector-mismatch", "Deployment", _set("spec.template.metadata.labels",
                                                 {"app": "other"}),
         "spec.template.metadata.labels"),
    Case("selector-expression-mismatch", "ReplicaSet", _set("spec.selector", {
        "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["r"]}]}),
         "spec.template.metadata.labels"),
    Case("empty-selector", "Deployment", _set("spec.selector", {}), "spec.selector",
         "FieldValueRequired"),
    Case("deployment-restart-never", "Deployment", _set(f"{TPL}.restartPolicy", "Never"),
         f"{TPL}.restartPolicy", "FieldValueNotSupported"),
    Case("template-container-port", "Deployment",
         _container_set(ports=[{"containerPort": -5}]), f"{TPL}.containers[0].ports[0]"
                                                        ".containerPort"),
    Case("surge-and-unavailable-zero", "Deployment", _set("spec.strategy", {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
         "spec.strategy.rollingUpdate.maxUnavailable"),
    Case("bad-percent", "Deployment", _set("spec.strategy", {
        "rollingUpdate": {"maxSurge": "lots"}}), "spec.strategy.rollingUpdate.maxSurge"),
    Case("recreate-with-rolling", "Deployment", _set("spec.strategy", {
        "type": "Recreate", "rollingUpdate": {"maxSurge": 1}}), "spec.strategy.rollingUpdate",
         "FieldValueForbidden"),
    Case("strategy-type", "Deployment", _set("spec.strategy", {"type": "BlueGreen"}),
         "spec.strategy.type", "FieldValueNotSupported"),
    Case("job-restart-always", "Job", _set(f"{TPL}.restartPolicy", "Always"),
         f"{TPL}.restartPolicy", "FieldValueNotSupported"),
    Case("job-parallelism", "Job", _set("spec.parallelism", -1), "spec.parallelism"),
    Case("job-completions", "Job", _set("spec.completions", -1), "spec.completions"),
    Case("job-backoff", "Job", _set("spec.backoffLimit", -1), "spec.backoffLimit"),
    Case("job-indexed-needs-completions", "Job", lambda b: b["spec"].update(
        completionMode="Indexed", parallelism=2), "spec.completions", "FieldValueRequired"),
    Case("job-manual-selector-mismatch", "Job", lambda b: b["spec"].update(
        manualSelector=True, selector={"matchLabels": {"x": "y"}}),
         "spec.template.metadata.labels"),
    # services and endpoints
    Case("service-port-zero", "Service", _set("spec.ports", [{"port": 0}]), "spec.ports[0].port"),
    Case("service-type", "Service", _set("spec.type", "Magic"), "spec.type",
         "FieldValueNotSupported"),
    Case("service-unnamed-ports", "Service", _set("spec.ports", [{"port": 80}, {"port": 81}]),
         "spec.ports[0].name", "FieldValueRequired"),
    Case("service-duplicate-port-names", "Service", _set("spec.ports", [
        {"name": "a", "port": 80}, {"name": "a", "port": 81}]), "spec.ports[1].name",
         "FieldValueDuplicate"),
    Case("service-duplicate-ports", "Service", _set("spec.ports", [
        {"name": "a", "port": 80}, {"name": "b", "port": 80}]), "spec.ports[1]",
         "FieldValueDuplicate"),
    Case("node-port-on-cluster-ip", "Service", _set("spec.ports", [
        {"port": 80, "nodePort": 30000}]), "spec.ports[0].nodePort", "FieldValueForbidden"),
    Case("node-port-range", "Service", lambda b: b["spec"].update(
        type="NodePort", ports=[{"port": 80, "nodePort": 70000}]), "spec.ports[0].nodePort"),
    Case("cluster-ip", "Service", _set("spec.clusterIP", "banana"), "spec.clusterIP"),
    Case("target-port-name", "Service", _set("spec.ports", [{"port": 80, "targetPort": "A_B"}]),
         "spec.ports[0].targetPort"),
    Case("external-name-missing", "Service", _set("spec.type", "ExternalName"),
         "spec.externalName", "FieldValueRequired"),
    Case("service-no-ports", "Service", _set("spec.ports", []), "spec.ports",
         "FieldValueRequired"),
    Case("endpoint-ip", "Endpoints", _set("subsets", [{"addresses": [{"ip": "x"}]}]),
         "subsets[0].addresses[0].ip"),
    # other kinds
    Case("taint-effect", "Node", _set("spec.taints", [{"key": "k", "effect": "Boom"}]),
         "spec.taints[0].effect", "FieldValueNotSupported"),
    Case("taint-duplicate", "Node", _set("spec.taints", [{"key": "k", "effect": "NoSchedule"}]
                                         * 2), "spec.taints[1]", "FieldValueDuplicate"),
    Case("node-capacity", "Node", _set("status", {"capacity": {"cpu": "lots"}}),
         "status.capacity[cpu]"),
    Case("secret-base64", "Secret", _set("data", {"k": "not base64!"}), "data[k]"),
    Case("secret-key", "Secret", _set("data", {"a/b": "dg=="}), "data[a/b]"),
    Case("configmap-key", "ConfigMap", _set("data", {"bad key": "v"}), "data[bad key]"),
    Case("priority-too-high", "PriorityClass", _set("value", 2_000_000_000), "value",
         "FieldValueForbidden"),
    Case("priority-system-prefix", "PriorityClass", _set("metadata.name", "system-mine"),
         "metadata.name", "FieldValueForbidden"),
    Case("priority-preemption", "PriorityClass", _set("preemptionPolicy", "Always"),
         "preemptionPolicy", "FieldValueNotSupported"),
    Case("lease-duration", "Lease", _set("spec.leaseDurationSeconds", 0),
         "spec.leaseDurationSeconds"),
    Case("lease-transitions", "Lease", _set("spec.leaseTransitions", -1),
         "spec.leaseTransitions"),
    Case("quota-quantity", "ResourceQuota", _set("spec.hard", {"pods": "ten"}),
         "spec.hard[pods]"),
    Case("quota-scope", "ResourceQuota", _set("spec.scopes", ["Cheap"]), "spec.scopes[0]",
         "FieldValueNotSupported"),
    Case("event-type", "Event", _set("type", "Info"), "type", "FieldValueNotSupported"),
    Case("binding-without-target", "Binding", _set("target", {}), "target.name",
         "FieldValueRequired"),
    Case("scale-negative", "Scale", _set("spec.replicas", -1), "spec.replicas"),
    Case("propagation-policy", "DeleteOptions", _set("propagationPolicy", "Sideways"),
         "propagationPolicy", "FieldValueNotSupported"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_a_cause_on_the_field(case: Case) -> None:
    body = copy.deepcopy(BASES[case.kind])
    case.change(body)
    causes = _check(case.kind, body)
    assert (case.field, case.reason) in [(c.field, c.reason) for c in causes], causes


def test_messages_are_worded_as_kubernetes_words_them() -> None:
    body = copy.deepcopy(BASES["Deployment"])
    body["spec"]["replicas"] = -1
    body["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    body["metadata"]["name"] = "Bad_Name"
    messages = {c.field: c.message for c in _check("Deployment", body)}
    assert messages["spec.replicas"] == "Invalid value: -1: must be greater than or equal to 0"
    assert messages[f"{TPL}.restartPolicy"] == \
        'Unsupported value: "Never": supported values: "Always"'
    assert messages["metadata.name"].startswith(
        'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of')


UPDATES = [
    ("deployment-selector", "Deployment",
     _set("spec.selector", {"matchLabels": {"app": "d", "v": "2"}}), "spec.selector"),
    ("rs-selector", "ReplicaSet", _set("spec.selector", {"matchLabels": {"app": "r", "x": "y"}}),
     "spec.selector"),
    ("job-selector", "Job", lambda b: b["spec"].update(
        manualSelector=True, selector={"matchLabels": {"batch.kubernetes.io/controller-uid":
                                                       "u-1", "x": "y"}}), "spec.selector"),
    ("job-per-index", "Job", _set("spec.backoffLimitPerIndex", 2), "spec.backoffLimitPerIndex"),
    ("job-failure-policy", "Job", _set("spec.podFailurePolicy", {"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}),
     "spec.podFailurePolicy"),
    ("priority-value", "PriorityClass", _set("value", 7), "value"),
    ("cluster-ip", "Service", _set("spec.clusterIP", "10.96.0.2"), "spec.clusterIP"),
    ("secret-type", "Secret", _set("type", "kubernetes.io/tls"), "type"),
]


@pytest.mark.parametrize(("id_", "kind", "change", "field"), UPDATES,
                         ids=[u[0] for u in UPDATES])
def test_immutable_fields_on_update(
    id_: str, kind: str, change: Callable[[Body], object], field: str
) -> None:
    old = copy.deepcopy(BASES[kind])
    if kind == "Service":
        old["spec"]["clusterIP"] = "10.96.0.1"
    old_obj = kinds.decode(kind, old)
    apply_defaults(old_obj)
    stored = kinds.encode(old_obj)
    assert _check(kind, copy.deepcopy(stored), stored) == []  # unchanged is fine
    new = copy.deepcopy(stored)
    if kind == "Job":
        new["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    change(new)
    assert field in [c.field for c in _check(kind, new, stored)]


def _stored_job(**spec: Any) -> Body:
    old = copy.deepcopy(BASES["Job"])
    old["spec"].update(spec)
    obj = kinds.decode("Job", old)
    apply_defaults(obj)
    return kinds.encode(obj)


def test_job_template_is_immutable() -> None:
    stored = _stored_job()
    new = copy.deepcopy(stored)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "app:2"
    causes = _check("Job", new, stored)
    assert [(c.field, c.reason) for c in causes] == [("spec.template", "FieldValueInvalid")]
    assert causes[0].message.startswith("Invalid value: {")
    assert causes[0].message.endswith(": field is immutable")
    assert _check("Job", copy.deepcopy(stored), stored) == []


def test_suspended_unstarted_job_may_change_where_its_pods_go() -> None:
    stored = _stored_job(suspend=True)
    new = copy.deepcopy(stored)
    tpl = new["spec"]["template"]
    tpl["spec"]["nodeSelector"] = {"disk": "ssd"}
    tpl["metadata"]["labels"]["queue"] = "a"
    assert _check("Job", new, stored) == []
    tpl["spec"]["containers"][0]["command"] = ["other"]  # not a scheduling directive
    assert [c.field for c in _check("Job", new, stored)] == ["spec.template"]
    started = {**copy.deepcopy(stored), "status": {"startTime": "2026-01-01T00:00:00Z"}}
    moved = copy.deepcopy(started)
    moved["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    assert [c.field for c in _check("Job", moved, started)] == ["spec.template"]


def test_immutable_config_map_data_is_forbidden() -> None:
    old = {**copy.deepcopy(BASES["ConfigMap"]), "immutable": True}
    new = {**copy.deepcopy(old), "data": {"k": "changed"}}
    assert [(c.field, c.reason) for c in _check("ConfigMap", new, old)] == [
        ("data", "FieldValueForbidden")]
    assert _check("ConfigMap", copy.deepcopy(old), old) == []


def test_replicas_may_change_on_update() -> None:
    old = copy.deepcopy(BASES["Deployment"])
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    assert _check("Deployment", new, old) == []


def test_a_bad_limit_is_reported_once() -> None:
    body = copy.deepcopy(BASES["Pod"])
    body["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "abc"}}
    assert [c.field for c in _check("Pod", body)] == [f"{C0}.resources.limits[cpu]"]


@pytest.mark.parametrize(("spec", "field", "words"), [
    ({"minAvailable": 1, "maxUnavailable": 1}, "spec",
     "minAvailable and maxUnavailable cannot be both set"),
    ({"minAvailable": "120%"}, "spec.minAvailable", "must not be greater than 100%"),
    ({"maxUnavailable": "x%"}, "spec.maxUnavailable", "a valid percent string"),
    ({"maxUnavailable": -1}, "spec.maxUnavailable", "greater than or equal to 0"),
    ({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Never"},
     "spec.unhealthyPodEvictionPolicy", "Unsupported value"),
])
def test_disruption_budget_rules(spec: Body, field: str, words: str) -> None:
    body = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}
    causes = _check("PodDisruptionBudget", body)
    assert [c.field for c in causes] == [field], causes
    assert words in causes[0].message


def _workload(kind: str, **spec: Any) -> Body:
    template = {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "x", "command": ["sleep"]}]}}
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template,
                     **spec}}


@pytest.mark.parametrize(("kind", "spec", "field", "words"), [
    ("StatefulSet", {"selector": {"matchLabels": {"app": "db"}}},
     "spec.template.metadata.labels", "`selector` does not match template `labels`"),
    ("StatefulSet", {"podManagementPolicy": "Random"}, "spec.podManagementPolicy",
     "Unsupported value"),
    ("StatefulSet", {"updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"partition": -1}}},
     "spec.updateStrategy.rollingUpdate.partition", "greater than or equal to 0"),
    ("StatefulSet", {"updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": 0}}},
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "cannot be 0"),
    ("StatefulSet", {"updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": "150%"}}},
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "must not be greater than 100%"),
    ("StatefulSet", {"updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": "half"}}},
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "a valid percent string"),
    ("StatefulSet", {"volumeClaimTemplates": [{"spec": {}}]},
     "spec.volumeClaimTemplates[0].metadata.name", "Required value"),
    ("DaemonSet", {"selector": {}}, "spec.selector", "Required value"),
    ("DaemonSet", {"updateStrategy": {"type": "Recreate"}}, "spec.updateStrategy.type",
     "Unsupported value"),
    ("DaemonSet", {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": 0, "maxSurge": 0}}},
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "may not be 0"),
])
def test_daemon_and_stateful_set_rules(kind: str, spec: Body, field: str, words: str) -> None:
    causes = _check(kind, _workload(kind, **spec))
    assert field in [c.field for c in causes], causes
    assert words in next(c.message for c in causes if c.field == field)


def test_a_stateful_set_may_only_change_its_replicas_template_and_strategy() -> None:
    old = _workload("StatefulSet", serviceName="web", podManagementPolicy="OrderedReady")
    scaled = _workload("StatefulSet", serviceName="web", replicas=5)
    assert _check("StatefulSet", scaled, old) == []
    renamed = _workload("StatefulSet", serviceName="db")
    assert [c.field for c in _check("StatefulSet", renamed, old)] == ["spec"]


def _exit_rule(action: str = "FailJob", **codes: Any) -> Body:
    return {"action": action, "onExitCodes": {"operator": "In", "values": [42], **codes}}


@pytest.mark.parametrize(("rules", "restart", "field", "words"), [
    ([_exit_rule()], "OnFailure", "spec.template.spec.restartPolicy",
     'only "Never" is supported when podFailurePolicy is specified'),
    ([_exit_rule("Retry")], "Never", "spec.podFailurePolicy.rules[0].action",
     'Unsupported value: "Retry"'),
    ([_exit_rule("FailIndex")], "Never", "spec.podFailurePolicy.rules[0].action",
     "requires the backoffLimitPerIndex to be set"),
    ([{"action": "Ignore"}], "Never", "spec.podFailurePolicy.rules[0]",
     "specifying one of OnExitCodes and OnPodConditions is required"),
    ([_exit_rule(values=[0])], "Never", "spec.podFailurePolicy.rules[0].onExitCodes.values[0]",
     "must not be 0 for the In operator"),
    ([_exit_rule(values=[5, 3])], "Never",
     "spec.podFailurePolicy.rules[0].onExitCodes.values[1]", "must be ordered"),
    ([_exit_rule(operator="Is")], "Never",
     "spec.podFailurePolicy.rules[0].onExitCodes.operator", 'Unsupported value: "Is"'),
    ([_exit_rule(containerName="nope")], "Never",
     "spec.podFailurePolicy.rules[0].onExitCodes.containerName",
     "must be one of the container or initContainer names"),
    ([{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget",
                                                "status": "Yes"}]}], "Never",
     "spec.podFailurePolicy.rules[0].onPodConditions[0].status", 'Unsupported value: "Yes"'),
    ([_exit_rule()] * 21, "Never", "spec.podFailurePolicy.rules",
     "Too many: 21: must have at most 20 items"),
])
def test_pod_failure_policy_rules(rules: list[Body], restart: str, field: str,
                                  words: str) -> None:
    body = copy.deepcopy(BASES["Job"])
    body["spec"]["podFailurePolicy"] = {"rules": rules}
    body["spec"]["template"]["spec"]["restartPolicy"] = restart
    causes = _check("Job", body)
    assert [c.field for c in causes] == [field], causes
    assert words in causes[0].message


def test_a_good_pod_failure_policy_is_valid() -> None:
    body = copy.deepcopy(BASES["Job"])
    body["spec"]["podFailurePolicy"] = {"rules": [
        _exit_rule(values=[1, 2, 42]),
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    assert _check("Job", body) == []


def _indexed(**spec: Any) -> Body:
    body = copy.deepcopy(BASES["Job"])
    body["spec"].update({"completionMode": "Indexed", "completions": 4, **spec})
    return body


@pytest.mark.parametrize(("body", "field", "words"), [
    (_indexed(completionMode="NonIndexed", completions=None, backoffLimitPerIndex=1),
     "spec.backoffLimitPerIndex", "Invalid value: 1: requires indexed completion mode"),
    (_indexed(completionMode="NonIndexed", completions=None, backoffLimitPerIndex=1,
              maxFailedIndexes=0),
     "spec.maxFailedIndexes", "Invalid value: 0: requires indexed completion mode"),
    (_indexed(maxFailedIndexes=1), "spec.backoffLimitPerIndex",
     "Required value: when maxFailedIndexes is specified"),
    (_indexed(backoffLimitPerIndex=1, maxFailedIndexes=5), "spec.maxFailedIndexes",
     "Invalid value: 5: must be less than or equal to completions"),
    (_indexed(backoffLimitPerIndex=-1), "spec.backoffLimitPerIndex",
     "must be greater than or equal to 0"),
    (_indexed(completions=200_000, backoffLimitPerIndex=1), "spec.maxFailedIndexes",
     "Required value: must be specified when completions is above 100000"),
    (_indexed(completions=200_000, backoffLimitPerIndex=1, maxFailedIndexes=20_000),
     "spec.maxFailedIndexes", ("must be less than or equal to 10000 when completions are above "
                               "100000 and used with backoff limit per index")),
    (_indexed(completions=200_000, backoffLimitPerIndex=1, maxFailedIndexes=10,
              parallelism=20_000),
     "spec.parallelism", "must be less than or equal to 10000 when completions are above"),
])
def test_per_index_backoff_rules(body: Body, field: str, words: str) -> None:
    causes = [c for c in _check("Job", body) if c.field.startswith("spec.")]
    assert [c.field for c in causes].count(field) >= 1, causes
    assert any(words in c.message for c in causes if c.field == field), causes


def test_per_index_backoff_is_valid_and_defaults_the_job_wide_limit_away() -> None:
    body = _indexed(backoffLimitPerIndex=1, maxFailedIndexes=4, podFailurePolicy={
        "rules": [_exit_rule("FailIndex")]})
    assert _check("Job", body) == []
    job = kinds.decode("Job", body)
    apply_defaults(job)
    assert job.spec.backoff_limit == 2**31 - 1  # Kubernetes' MaxInt32: only the index limit
    plain = kinds.decode("Job", _indexed())
    apply_defaults(plain)
    assert plain.spec.backoff_limit == 6
