"""HorizontalPodAutoscalers through the real kubectl and a real master (no agents:
the metrics-driven scaling is tests/e2e/test_hpa.py): `kubectl autoscale` (a
protobuf autoscaling/v1 body), v1 ⇄ v2, the table and describe, 422s, the
conditions of a target that does not exist, min/max clamping through the scale
subresource of a Deployment, a StatefulSet and a custom resource, and garbage
collection by ownerReference."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from corral.objects import spec, status
from tests.cluster import Master
from tests.kubectl import Kubectl
from tests.poll import wait_for

V1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
V2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"


@pytest.fixture
def kubectl(master: Master, tmp_path: Path) -> Kubectl:
    return Kubectl(master, tmp_path / "kubecache")


def hpa(name: str, target: dict[str, str], *, min_replicas: int = 1,
        max_replicas: int = 3, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, **extra},
            "spec": {"scaleTargetRef": target, "minReplicas": min_replicas,
                     "maxReplicas": max_replicas}}


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in status(obj).get("conditions") or [] if c["type"] == type_]
    return found[0] if found else {}


def test_kubectl_autoscale_creates_a_v1_hpa_read_as_v2(master: Master,
                                                      kubectl: Kubectl) -> None:
    kubectl("create", "deployment", "auto", "--image=x", "--", "sleep", "600")
    out = kubectl("autoscale", "deployment", "auto", "--min=1", "--max=4", "--cpu-percent=60")
    assert out.strip() == "horizontalpodautoscaler.autoscaling/auto autoscaled"
    with master.http() as api:
        v1 = api.get(f"{V1}/auto").json()
        v2 = api.get(f"{V2}/auto").json()
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 60
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]
    rows = kubectl("get", "hpa", "auto").splitlines()
    assert rows[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS",
                               "REPLICAS", "AGE"]
    assert rows[1].split()[:7] == ["auto", "Deployment/auto", "cpu:", "<unknown>/60%", "1",
                                   "4", rows[1].split()[6]]
    # no agent, so no metrics: the controller says so, as Kubernetes does
    wait_for(lambda: "FailedGetResourceMetric" in kubectl("describe", "hpa", "auto"),
             what="FailedGetResourceMetric in describe")
    described = kubectl("describe", "hpa", "auto")
    assert "resource cpu on pods  (as a percentage of request):  <unknown> / 60%" in described
    assert "no metrics returned from resource metrics API" in described


KUBECTL_133 = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.33")


def test_kubectl_133_autoscale_sends_v2(master: Master, kubectl: Kubectl) -> None:
    """kubectl 1.33 POSTs a protobuf autoscaling/v2 body (1.32 sends v1)."""
    assert KUBECTL_133.exists(), "kubectl 1.33 is installed beside the dispatcher"
    kubectl("create", "deployment", "auto133", "--image=x", "--", "sleep", "600")
    proc = subprocess.run([str(KUBECTL_133), "--cache-dir", str(kubectl.cache), "autoscale",
                           "deployment", "auto133", "--max=3", "--cpu-percent=70", "-v=6"],
                          env=kubectl.env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert any("POST" in line and "/apis/autoscaling/v2/" in line and "\"201 Created\"" in line
               for line in proc.stderr.splitlines()), proc.stderr
    with master.http() as api:
        stored = api.get(f"{V2}/auto133").json()
    assert stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70


def test_a_v1_patch_edits_the_stored_v2(master: Master, kubectl: Kubectl) -> None:
    with master.http() as api:
        body = hpa("patched", {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"})
        body["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 30}}
        assert api.post(V2, json=body).status_code == 201
        patched = api.patch(f"{V1}/patched", json={"spec": {"targetCPUUtilizationPercentage": 40,
                                                             "maxReplicas": 6}},
                            headers={"Content-Type": "application/merge-patch+json"})
        assert patched.status_code == 200, patched.text
        assert patched.json()["spec"]["targetCPUUtilizationPercentage"] == 40
        stored = api.get(f"{V2}/patched").json()
        listed = api.get(V1).json()
        watched = api.get(V1, params={"watch": "true", "timeoutSeconds": "1",
                                      "fieldSelector": "metadata.name=patched"})
    assert listed["kind"] == "HorizontalPodAutoscalerList"
    assert {item["apiVersion"] for item in listed["items"]} == {"autoscaling/v1"}
    event = json.loads(watched.text.splitlines()[0])
    assert event["object"]["spec"]["targetCPUUtilizationPercentage"] == 40
    assert stored["spec"]["maxReplicas"] == 6
    assert stored["spec"]["metrics"][-1]["resource"]["target"]["averageUtilization"] == 40
    assert stored["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 30
    assert "annotations" not in stored["metadata"]  # v1's carriers are not stored


def test_bad_hpas_are_422(kubectl: Kubectl, tmp_path: Path) -> None:
    bad = hpa("bad", {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
              min_replicas=3, max_replicas=2)
    bad["spec"]["metrics"] = [{"type": "Requests"}]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = kubectl.run("create", "-f", str(path))
    assert proc.returncode != 0
    assert "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`" \
        in proc.stderr
    assert 'spec.metrics[0].type: Unsupported value: "Requests"' in proc.stderr


def test_a_missing_target_is_a_condition_and_an_event(master: Master,
                                                      kubectl: Kubectl) -> None:
    with master.http() as api:
        ghost = hpa("ghost", {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nope"})
        assert api.post(V2, json=ghost).status_code == 201
        wait_for(lambda: condition(api.get(f"{V2}/ghost").json(), "AbleToScale"),
                 what="AbleToScale condition")
        able = condition(api.get(f"{V2}/ghost").json(), "AbleToScale")
        unknown = hpa("alien", {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w"})
        assert api.post(V2, json=unknown).status_code == 201
        wait_for(lambda: condition(api.get(f"{V2}/alien").json(), "AbleToScale"),
                 what="AbleToScale condition of alien")
        alien = condition(api.get(f"{V2}/alien").json(), "AbleToScale")
    assert (able["status"], able["reason"]) == ("False", "FailedGetScale")
    assert able["message"] == ("the HPA controller was unable to get the target's current "
                               'scale: deployments.apps "nope" not found')
    assert alien["reason"] == "FailedGetScale"
    assert 'no matches for kind "Widget" in group "example.com"' in alien["message"]
    wait_for(lambda: "FailedGetScale" in kubectl("get", "events",
                                                 "--field-selector=involvedObject.name=ghost"),
             what="FailedGetScale event")


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "pools.hpa.example.com"},
    "spec": {"group": "hpa.example.com", "scope": "Namespaced",
             "names": {"plural": "pools", "singular": "pool", "kind": "Pool"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {
                               "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                           "subresources": {"status": {}, "scale": {
                               "specReplicasPath": ".spec.replicas",
                               "statusReplicasPath": ".status.replicas",
                               "labelSelectorPath": ".status.selector"}}}]},
}


def _replicas(api: httpx.Client, path: str) -> int:
    return int(spec(api.get(path).json()).get("replicas") or 0)


def test_min_and_max_through_the_scale_subresources(master: Master) -> None:
    """The HPA brings a target inside [min, max] without metrics, whatever scalable
    kind it is; the rescale is an Event and lastScaleTime."""
    deploy = "/apis/apps/v1/namespaces/default/deployments"
    sts = "/apis/apps/v1/namespaces/default/statefulsets"
    pools = "/apis/hpa.example.com/v1/namespaces/default/pools"
    template = {"metadata": {"labels": {"app": "clamp"}}, "spec": {"containers": [
        {"name": "c", "image": "x", "command": ["sleep", "600"]}]}}
    with master.http() as api:
        assert api.post(deploy, json={
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "clamp"},
            "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "clamp"}},
                     "template": template}}).status_code == 201
        assert api.post(sts, json={
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "clamp"},
            "spec": {"replicas": 1, "serviceName": "clamp",
                     "selector": {"matchLabels": {"app": "clamp"}},
                     "template": template}}).status_code == 201
        assert api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                        json=CRD).status_code == 201
        wait_for(lambda: api.get(pools).status_code == 200, what="pools served")
        assert api.post(pools, json={"apiVersion": "hpa.example.com/v1", "kind": "Pool",
                                     "metadata": {"name": "clamp"},
                                     "spec": {"replicas": 9}}).status_code == 201
        for kind, group in (("Deployment", "apps/v1"), ("StatefulSet", "apps/v1"),
                            ("Pool", "hpa.example.com/v1")):
            body = hpa(f"clamp-{kind.lower()}", {"apiVersion": group, "kind": kind,
                                                 "name": "clamp"},
                       min_replicas=2, max_replicas=4)
            assert api.post(V2, json=body).status_code == 201
        wait_for(lambda: _replicas(api, f"{deploy}/clamp") == 4, what="deployment down to 4")
        wait_for(lambda: _replicas(api, f"{sts}/clamp") == 2, what="statefulset up to 2")
        wait_for(lambda: _replicas(api, f"{pools}/clamp") == 4, what="pool down to 4")
        done = api.get(f"{V2}/clamp-deployment").json()
        events = api.get("/api/v1/namespaces/default/events",
                         params={"fieldSelector": "involvedObject.name=clamp-deployment"}).json()
    assert status(done).get("lastScaleTime")
    assert any(e["reason"] == "SuccessfulRescale" and e["message"] ==
               "New size: 4; reason: Current number of replicas above Spec.MaxReplicas"
               for e in events["items"])


def test_an_hpa_owned_by_its_deployment_goes_with_it(master: Master) -> None:
    deploy = "/apis/apps/v1/namespaces/default/deployments"
    with master.http() as api:
        created = api.post(deploy, json={
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "owner"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "owner"}},
                     "template": {"metadata": {"labels": {"app": "owner"}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
        uid = created.json()["metadata"]["uid"]
        owned = hpa("owned", {"apiVersion": "apps/v1", "kind": "Deployment", "name": "owner"},
                    ownerReferences=[{"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": "owner", "uid": uid}])
        assert api.post(V2, json=owned).status_code == 201
        assert api.delete(f"{deploy}/owner").status_code == 200
        wait_for(lambda: api.get(f"{V2}/owned").status_code == 404, what="owned HPA collected")


def test_two_hpas_on_one_set_of_pods_are_ambiguous(master: Master, kubectl: Kubectl) -> None:
    kubectl("create", "deployment", "twice", "--image=x", "--", "sleep", "600")
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "twice"}
    with master.http() as api:
        wait_for(lambda: api.get("/api/v1/namespaces/default/pods",
                                 params={"labelSelector": "app=twice"}).json()["items"],
                 what="the deployment's pod")
        for name in ("twice-a", "twice-b"):
            assert api.post(V2, json=hpa(name, target)).status_code == 201

        def ambiguous() -> dict[str, Any]:
            for name in ("twice-a", "twice-b"):
                active = condition(api.get(f"{V2}/{name}").json(), "ScalingActive")
                if active.get("reason") == "AmbiguousSelector":
                    return active
            return {}

        found = wait_for(ambiguous, what="an AmbiguousSelector condition")
    assert found["status"] == "False"
    assert found["message"] == ("pods by selector app=twice are controlled by multiple HPAs: "
                                "[default/twice-a default/twice-b]")


V1_MANIFEST = """apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: v1doc}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 3
  targetCPUUtilizationPercentage: 50
"""


def test_autoscaling_v1_has_its_own_openapi_document(kubectl: Kubectl) -> None:
    """kubectl explain finds the v1 kind, and validation of a v1 manifest reads the
    v1 document instead of falling back to /openapi/v2."""
    out = kubectl("explain", "hpa.spec", "--api-version=autoscaling/v1")
    assert "VERSION:    v1" in out
    assert "targetCPUUtilizationPercentage\t<integer>" in out and "behavior" not in out
    proc = kubectl.run("create", "--dry-run=server", "-f", "-", "-v=6", input=V1_MANIFEST)
    assert proc.returncode == 0, proc.stderr
    assert "/openapi/v3/apis/autoscaling/v1?hash=" in proc.stderr
    assert "/openapi/v2" not in proc.stderr


def test_a_v2_field_in_a_v1_body_is_unknown(master: Master, kubectl: Kubectl) -> None:
    """kube-apiserver decodes a v1 body with v1's schema: spec.metrics (a v2 field)
    is unknown there, refused by --validate=strict naming the version sent, and
    dropped with a warning by --validate=warn (through create, apply and patch)."""
    body = yaml.safe_load(V1_MANIFEST.replace("name: v1doc", "name: v2field"))
    body["spec"]["metrics"] = [{"type": "Resource", "resource": {
        "name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    body["spec"]["behaviour"] = {}
    manifest = yaml.safe_dump(body)
    proc = kubectl.run("create", "-f", "-", input=manifest)
    assert proc.returncode == 1
    assert ('HorizontalPodAutoscaler in version "v1" cannot be handled as a '
            'HorizontalPodAutoscaler: strict decoding error: unknown field "spec.behaviour", '
            'unknown field "spec.metrics"') in proc.stderr
    proc = kubectl.run("apply", "--server-side", "--validate=warn", "-f", "-", input=manifest)
    assert proc.returncode == 0, proc.stderr
    assert 'Warning: unknown field "spec.metrics"' in proc.stderr
    with master.http() as api:
        stored = api.get(f"{V2}/v2field").json()
        assert [m["resource"]["name"] for m in stored["spec"]["metrics"]] == ["cpu"]
        patched = api.patch(f"{V1}/v2field", params={"fieldValidation": "Strict"},
                            json={"spec": {"behavior": {}}},
                            headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 400
    assert 'version "v1"' in patched.json()["message"]
    assert 'unknown field "spec.behavior"' in patched.json()["message"]
