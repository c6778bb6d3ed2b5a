"""Malformed requests: each gets the right Status, and nothing is written.

Nothing a bad request could reach may change across it: the namespaces and the
test namespace's objects keep their names and resourceVersions, so no
half-written state. (The global revision moves on its own: the master renews its
presence Lease.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests import manifests
from tests.cluster import Master

NS = "bad"


def _pod(**spec: Any) -> dict[str, Any]:
    return manifests.pod("p", **{
        "containers": [manifests.container(["true"], name="c", image="i")], **spec})


def _container(**fields: Any) -> dict[str, Any]:
    return _pod(containers=[{"name": "c", "image": "i", "command": ["true"], **fields}])


def _deploy(replicas: Any = 1, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": labels or {"app": "d"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }


@dataclass
class Case:
    id: str
    method: str
    path: str
    body: Any = None
    content_type: str = "application/json"
    code: int = 422
    reason: str = "Invalid"
    field: str | None = None  # a details.causes[].field that must be present

    def content(self) -> bytes | None:
        if self.body is None:
            return None
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


PODS = f"/api/v1/namespaces/{NS}/pods"
# 342 bytes of YAML naming 9^9 strings ("billion laughs").
ALIAS_BOMB = b"".join(
    [b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n".encode()
       for i in range(8)])
DEPLOYS = f"/apis/apps/v1/namespaces/{NS}/deployments"
MERGE = "application/merge-patch+json"

CASES = [
    Case("malformed-json", "POST", PODS, b'{"kind": "Pod", ', code=400, reason="BadRequest"),
    Case("malformed-yaml", "POST", PODS, b"kind: Pod\n  metadata: [", "application/yaml",
         400, "BadRequest"),
    Case("body-is-a-list", "POST", PODS, b"[1, 2]", code=400, reason="BadRequest"),
    Case("empty-body", "POST", PODS, b"", code=400, reason="BadRequest"),
    Case("truncated-protobuf", "POST", PODS, b"k8s\x00\n\x0f",
         "application/vnd.kubernetes.protobuf", 400, "BadRequest"),
    Case("protobuf-of-an-undecoded-kind", "POST", PODS,
         b"k8s\x00\x0a\x16\x0a\x07apps/v1\x12\x0bStatefulSet",
         "application/vnd.kubernetes.protobuf", 415, "UnsupportedMediaType"),
    Case("wrong-kind", "POST", PODS, {**_pod(), "kind": "Service"}, code=400,
         reason="BadRequest"),
    Case("wrong-api-version", "POST", PODS, {**_pod(), "apiVersion": "apps/v1"}, code=400,
         reason="BadRequest"),
    Case("name-not-dns1123", "POST", PODS, {**_pod(), "metadata": {"name": "Bad_Name"}},
         field="metadata.name"),
    Case("name-too-long", "POST", PODS, {**_pod(), "metadata": {"name": "a" * 254}},
         field="metadata.name"),
    Case("no-name", "POST", PODS, {**_pod(), "metadata": {}}, field="metadata.name"),
    Case("bad-label-value", "POST", PODS,
         {**_pod(), "metadata": {"name": "p", "labels": {"app": "has space"}}},
         field="metadata.labels"),
    Case("negative-replicas", "POST", DEPLOYS, _deploy(-1), field="spec.replicas"),
    Case("replicas-not-int", "POST", DEPLOYS, _deploy("three"), field="spec.replicas"),
    Case("selector-mismatch", "POST", DEPLOYS, _deploy(labels={"app": "other"}),
         field="spec.template.metadata.labels"),
    Case("quantity-2GB", "POST", PODS, _container(resources={"requests": {"memory": "2GB"}}),
         field="spec.containers[0].resources.requests[memory]"),
    Case("quantity-abc", "POST", PODS, _container(resources={"limits": {"cpu": "abc"}}),
         field="spec.containers[0].resources.limits[cpu]"),
    Case("no-containers", "POST", PODS, _pod(containers=[]), field="spec.containers"),
    Case("container-no-name", "POST", PODS,
         _pod(containers=[{"image": "i", "command": ["true"]}]),
         field="spec.containers[0].name"),
    Case("duplicate-containers", "POST", PODS,
         _pod(containers=[{"name": "c", "image": "i"}, {"name": "c", "image": "i"}]),
         field="spec.containers[1].name"),
    Case("port-out-of-range", "POST", PODS, _container(ports=[{"containerPort": 70000}]),
         field="spec.containers[0].ports[0].containerPort"),
    Case("bad-restart-policy", "POST", PODS, _pod(restartPolicy="Sometimes"),
         field="spec.restartPolicy"),
    Case("job-restart-always", "POST", f"/apis/batch/v1/namespaces/{NS}/jobs",
         {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
          "spec": {"template": {"spec": {"restartPolicy": "Always",
                                         "containers": [{"name": "c", "image": "i"}]}}}},
         field="spec.template.spec.restartPolicy"),
    Case("job-max-failed-indexes-over-completions", "POST",
         f"/apis/batch/v1/namespaces/{NS}/jobs",
         {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
          "spec": {"completionMode": "Indexed", "completions": 2, "backoffLimitPerIndex": 1,
                   "maxFailedIndexes": 3,
                   "template": {"spec": {"restartPolicy": "Never",
                                         "containers": [{"name": "c", "image": "i"}]}}}},
         field="spec.maxFailedIndexes"),
    Case("service-port-zero", "POST", f"/api/v1/namespaces/{NS}/services",
         {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
          "spec": {"ports": [{"port": 0}]}}, field="spec.ports[0].port"),
    Case("unknown-field-strict", "POST", f"{DEPLOYS}?fieldValidation=Strict",
         {**_deploy(), "spec": {**_deploy()["spec"], "replica": 3}}, code=400,
         reason="BadRequest"),
    Case("namespace-mismatch", "POST", PODS, {**_pod(), "metadata": {"name": "p",
                                                                     "namespace": "other"}},
         code=400, reason="BadRequest"),
    Case("bad-label-selector", "GET", f"{PODS}?labelSelector=a%20in%20(b", code=400,
         reason="BadRequest"),
    Case("unsupported-field-selector", "GET", f"{PODS}?fieldSelector=spec.image%3Dx", code=400,
         reason="BadRequest"),
    Case("limit-not-int", "GET", f"{PODS}?limit=abc", code=400, reason="BadRequest"),
    Case("garbage-continue", "GET", f"{PODS}?limit=1&continue=%%%", code=400,
         reason="BadRequest"),
    Case("watch-bad-rv", "GET", f"{PODS}?watch=1&resourceVersion=abc", code=400,
         reason="BadRequest"),
    Case("bad-field-validation", "POST", f"{PODS}?fieldValidation=Bogus", _pod(), code=400,
         reason="BadRequest"),
    Case("bad-dry-run", "POST", f"{PODS}?dryRun=Some", _pod(), code=400, reason="BadRequest"),
    Case("put-name-mismatch", "PUT", f"{DEPLOYS}/existing", {**_deploy()}, code=400,
         reason="BadRequest"),
    Case("merge-patch-negative-replicas", "PATCH", f"{DEPLOYS}/existing",
         b'{"spec":{"replicas":-1}}', MERGE, field="spec.replicas"),
    Case("json-patch-bad-op", "PATCH", f"{DEPLOYS}/existing",
         b'[{"op":"frobnicate","path":"/spec"}]', "application/json-patch+json", 400,
         "BadRequest"),
    Case("patch-missing-object", "PATCH", f"{DEPLOYS}/nope", b"{}", MERGE, 404, "NotFound"),
    Case("binding-without-target", "POST", f"{PODS}/existing-pod/binding",
         {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "existing-pod"}},
         field="target.name"),
    Case("bad-propagation-policy", "DELETE", f"{DEPLOYS}/existing",
         {"propagationPolicy": "Sideways"}, code=400, reason="BadRequest"),
    Case("unknown-resource", "GET", f"/api/v1/namespaces/{NS}/widgets", code=404,
         reason="NotFound"),
    # Hostile input (issue 12): bounded, and answered with a Status.
    Case("yaml-alias-bomb", "POST", PODS, ALIAS_BOMB, "application/yaml", 413,
         "RequestEntityTooLarge"),
    Case("body-over-3mb", "POST", PODS, b'{"x": "' + b"a" * (4 << 20) + b'"}', code=413,
         reason="RequestEntityTooLarge"),
    Case("json-nested-300", "POST", PODS, b'{"a":' * 300 + b"1" + b"}" * 300, code=400,
         reason="BadRequest"),
    Case("yaml-nested-300", "POST", PODS, b"[" * 300 + b"]" * 300, "application/yaml", 400,
         "BadRequest"),
    Case("limit-10e29", "GET", f"{PODS}?limit=1{'0' * 29}", code=400, reason="BadRequest"),
    Case("list-bad-resource-version", "GET", f"{PODS}?resourceVersion=abc", code=400,
         reason="BadRequest"),
    Case("quantity-1e999999", "POST", PODS, _container(resources={"requests": {"cpu": "1e999999"}}),
         field="spec.containers[0].resources.requests[cpu]"),
    Case("quantity-1e400", "POST", PODS, _container(resources={"limits": {"memory": "1e400"}}),
         field="spec.containers[0].resources.limits[memory]"),
    Case("quantity-huge-Ei", "POST", PODS,
         _container(resources={"limits": {"memory": "9" * 30 + "Ei"}}),
         field="spec.containers[0].resources.limits[memory]"),
    Case("replicas-past-int32", "POST", DEPLOYS, _deploy(2**31), field="spec.replicas"),
    Case("port-past-int32", "POST", f"/api/v1/namespaces/{NS}/services",
         {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
          "spec": {"ports": [{"port": 80, "targetPort": 2**40}]}},
         field="spec.ports[0].targetPort"),
    Case("json-patch-renames", "PATCH", f"{DEPLOYS}/existing",
         b'[{"op":"replace","path":"/metadata/name","value":"other"}]',
         "application/json-patch+json", field="metadata.name"),
    Case("grace-past-int64", "DELETE", f"{PODS}/existing-pod?gracePeriodSeconds=1{'0' * 30}",
         code=400, reason="BadRequest"),
    Case("delete-namespace-default", "DELETE", "/api/v1/namespaces/default", code=403,
         reason="Forbidden"),
    Case("delete-namespace-kube-system", "DELETE", "/api/v1/namespaces/kube-system", code=403,
         reason="Forbidden"),
    Case("extended-request-below-limit", "POST", PODS, _container(resources={
        "requests": {"example.com/widget": "1"}, "limits": {"example.com/widget": "2"}}),
        field="spec.containers[0].resources.requests[example.com/widget]"),
    Case("extended-fraction", "POST", PODS,
         _container(resources={"limits": {"example.com/widget": "500m"}}),
         field="spec.containers[0].resources.limits[example.com/widget]"),
    Case("extended-without-limit", "POST", PODS,
         _container(resources={"requests": {"example.com/widget": "1"}}),
         field="spec.containers[0].resources.limits[example.com/widget]"),
    Case("deletecollection-namespaces", "DELETE", "/api/v1/namespaces", code=405,
         reason="MethodNotAllowed"),
]


@pytest.fixture(scope="module")
def api(quiet_master: Master) -> Iterator[httpx.Client]:
    with quiet_master.http() as client:
        assert client.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
        existing = _deploy()
        existing["metadata"]["name"] = "existing"
        assert client.post(DEPLOYS, json=existing).status_code == 201
        existing_pod = _pod()
        existing_pod["metadata"]["name"] = "existing-pod"
        assert client.post(PODS, json=existing_pod).status_code == 201
        yield client


WATCHED = ("/api/v1/namespaces", PODS, DEPLOYS, f"/api/v1/namespaces/{NS}/services",
           f"/api/v1/namespaces/{NS}/configmaps", f"/apis/batch/v1/namespaces/{NS}/jobs")


def _state(api: httpx.Client) -> dict[str, list[tuple[str, str]]]:
    """What a bad request could have written to: every object's name and version."""
    return {path: sorted((i["metadata"]["name"], i["metadata"]["resourceVersion"])
                         for i in api.get(path).json()["items"]) for path in WATCHED}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request_is_rejected_cleanly(api: httpx.Client, case: Case) -> None:
    before = _state(api)
    r = api.request(case.method, case.path, content=case.content(),
                    headers={"Content-Type": case.content_type})
    assert r.status_code == case.code, r.text
    status = r.json()
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert status["reason"] == case.reason and status["code"] == case.code
    assert status["message"]
    if case.field:
        fields = [c["field"] for c in status.get("details", {}).get("causes", [])]
        assert case.field in fields, (fields, status["message"])
    assert _state(api) == before, "a rejected request changed the store"


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 25


def test_the_largest_limit_lists_everything(api: httpx.Client) -> None:
    """limit is an int64: its largest value is a page of everything, not a 500
    (the store read one row more than the limit, past SQLite's int64)."""
    r = api.get(f"{PODS}?limit={2**63 - 1}")
    assert r.status_code == 200, r.text
    assert r.json()["metadata"].get("continue") is None
