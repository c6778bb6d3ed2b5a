"""Pod Security levels: label parsing and the checks' wording (Kubernetes')."""

from __future__ import annotations

import pytest

from corral.api.admission.pod_security import LevelVersion, policy_of
from corral.api.admission.pod_security_checks import evaluate, forbidden_detail
from corral.objects import Obj

P = "pod-security.kubernetes.io/"


def spec(**fields: object) -> Obj:
    return {"containers": [{"name": "c", "image": "x"}], **fields}


def test_default_and_labels() -> None:
    policy = policy_of({}).policy
    assert policy.enforce == policy.warn == policy.audit == LevelVersion("baseline")
    parsed = policy_of({P + "enforce": "restricted", P + "enforce-version": "v1.30"})
    assert str(parsed.policy.enforce) == "restricted:v1.30"
    # An explicit, stricter enforce raises an unset warn with it (and its version).
    assert str(parsed.policy.warn) == "restricted:v1.30"
    assert str(policy_of({P + "enforce": "privileged"}).policy.warn) == "baseline:latest"


def test_invalid_labels_fail_closed_and_are_reported() -> None:
    parsed = policy_of({P + "enforce": "strict", P + "warn-version": "1.30"})
    assert parsed.policy.enforce.level == "restricted"
    assert [c.field for c in parsed.causes] == [f"metadata.labels[{P}enforce]",
                                                f"metadata.labels[{P}warn-version]"]
    assert parsed.causes[1].message == 'Invalid value: "1.30": must be "latest" or "v1.x"'


@pytest.mark.parametrize(("level", "pod", "detail"), [
    ("baseline", spec(hostPID=True, hostIPC=True), "host namespaces (hostPID=true, hostIPC=true)"),
    ("baseline", spec(volumes=[{"name": "h", "hostPath": {"path": "/"}}, {"name": "e",
                                                                         "emptyDir": {}}]),
     'hostPath volumes (volume "h")'),
    ("baseline", {"containers": [
        {"name": "a", "ports": [{"containerPort": 1, "hostPort": 8080}]},
        {"name": "b", "ports": [{"containerPort": 2, "hostPort": 443}]}]},
     'hostPort (containers "a", "b" use hostPorts 443, 8080)'),
    ("baseline", {"containers": [{"name": "c", "securityContext": {
        "capabilities": {"add": ["NET_RAW", "CHOWN", "SYS_ADMIN"]}}}]},
     ('non-default capabilities (container "c" must not include "NET_RAW", "SYS_ADMIN" in '
     "securityContext.capabilities.add)")),
    ("baseline", spec(securityContext={"seccompProfile": {"type": "Unconfined"},
                                       "sysctls": [{"name": "kernel.msgmax", "value": "1"}]}),
     ('forbidden sysctls (kernel.msgmax), seccompProfile (pod must not set '
     'securityContext.seccompProfile.type to "Unconfined")')),
    ("restricted", {"securityContext": {"runAsNonRoot": False}, "initContainers": [
        {"name": "i", "securityContext": {"runAsNonRoot": False}}], "containers": [
        {"name": "c", "securityContext": {"allowPrivilegeEscalation": False,
                                          "capabilities": {"drop": ["ALL"],
                                                           "add": ["NET_BIND_SERVICE"]},
                                          "seccompProfile": {"type": "Localhost"}}}],
        "volumes": [{"name": "n", "nfs": {}}, {"name": "c", "configMap": {}}]},
     ('allowPrivilegeEscalation != false (container "i" must set securityContext.'
     'allowPrivilegeEscalation=false), unrestricted capabilities (container "i" must set '
     'securityContext.capabilities.drop=["ALL"]), restricted volume types (volumes ["n"] '
     'have restricted types), runAsNonRoot != true (pod and container "i" must not set '
     'securityContext.runAsNonRoot=false), seccompProfile (pod or container "i" must set '
     'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')),
])
def test_checks_read_as_kubernetes(level: str, pod: Obj, detail: str) -> None:
    assert forbidden_detail(evaluate(level, pod)) == detail


def test_privileged_allows_everything_and_baseline_allows_ordinary_pods() -> None:
    wild = spec(hostNetwork=True, volumes=[{"name": "h", "hostPath": {"path": "/"}}])
    assert evaluate("privileged", wild) == []
    ordinary = spec(securityContext={"runAsUser": 0}, volumes=[{"name": "d", "emptyDir": {}}])
    assert evaluate("baseline", ordinary) == []
