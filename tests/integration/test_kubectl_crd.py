"""CustomResourceDefinitions with the real kubectl: a CRD makes its kind served
at once (discovery with short names and categories, OpenAPI for apply's
validation, printer columns in `kubectl get`), its structural schema prunes,
defaults and validates (422 naming the field), the status subresource keeps
status apart, and deleting the CRD deletes its objects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.cluster import Master
from tests.kubectl import Kubectl
from tests.poll import wait_for

NS = "crd"
GROUP_PATH = "/apis/stable.example.com/v1"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com", "scope": "Namespaced",
        "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab",
                  "shortNames": ["ct"], "categories": ["all"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}, "scale": {
                "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
            "additionalPrinterColumns": [
                {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "required": ["cronSpec"], "properties": {
                    "cronSpec": {"type": "string", "pattern": r"^(\S+\s){4}\S+$"},
                    "image": {"type": "string", "minLength": 1, "default": "busybox"},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10,
                                 "default": 1},
                    "mode": {"type": "string", "enum": ["fast", "slow"]},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }},
                "status": {"type": "object", "properties": {
                    "replicas": {"type": "integer"}, "phase": {"type": "string"}}},
            }}},
        }],
    },
}


@pytest.fixture(scope="module")
def kubectl(master: Master, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    run = Kubectl(master, tmp_path_factory.mktemp("kubecache"))
    run("create", "namespace", NS)
    run("create", "-f", "-", input=json.dumps(CRD))
    yield run


def _tab(name: str, **spec: Any) -> str:
    return json.dumps({"apiVersion": "stable.example.com/v1", "kind": "CronTab",
                       "metadata": {"name": name, "namespace": NS}, "spec": spec})


def test_round_trip_with_kubectl(kubectl: Kubectl, master: Master) -> None:
    crd = json.loads(kubectl("get", "crd", "crontabs.stable.example.com", "-o", "json"))
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    listed = kubectl("get", "crds").splitlines()
    assert listed[0].split() == ["NAME", "CREATED", "AT"]
    assert listed[1].split() == ["crontabs.stable.example.com", crd["metadata"]["creationTimestamp"]]
    # apply validates strictly through the new group-version's OpenAPI document
    junk = kubectl.run("apply", "-f", "-", input=_tab("nightly", cronSpec="0 3 * * *", junk=1))
    assert junk.returncode != 0 and 'unknown field "spec.junk"' in junk.stderr
    out = kubectl("apply", "-f", "-", input=_tab("nightly", cronSpec="0 3 * * *",
                                                   extra={"anything": [1, 2]}))
    assert out.strip() == "crontab.stable.example.com/nightly created"
    got = json.loads(kubectl("get", "ct", "nightly", "-n", NS, "-o", "json"))
    # defaults applied, a preserved subtree kept
    assert got["spec"] == {"cronSpec": "0 3 * * *", "image": "busybox", "replicas": 1,
                           "extra": {"anything": [1, 2]}}
    table = kubectl("get", "crontabs", "-n", NS).splitlines()
    assert table[0].split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert table[1].split()[:6] == ["nightly", "0", "3", "*", "*", "*"]
    assert table[1].split()[6] == "1"
    assert "crontab.stable.example.com/nightly" in kubectl("get", "all", "-n", NS)
    kubectl("patch", "crontab", "nightly", "-n", NS, "--type=merge",
            "-p", '{"spec":{"replicas":3}}')
    kubectl("patch", "crontab", "nightly", "-n", NS, "--type=json",
            "-p", '[{"op":"add","path":"/spec/mode","value":"fast"}]')
    kubectl("scale", "crontab", "nightly", "-n", NS, "--replicas=4")
    got = json.loads(kubectl("get", "crontab", "nightly", "-n", NS, "-o", "json"))
    assert (got["spec"]["replicas"], got["spec"]["mode"]) == (4, "fast")
    strategic = kubectl.run("patch", "crontab", "nightly", "-n", NS, "--type=strategic",
                            "-p", '{"spec":{"replicas":2}}')
    assert strategic.returncode != 0  # a 415, which kubectl words as:
    assert "strategic-merge-patch+json is not supported by stable.example.com/v1" in strategic.stderr
    kubectl("delete", "crd", "crontabs.stable.example.com")
    with master.http() as http:
        assert http.get(f"{GROUP_PATH}/namespaces/{NS}/crontabs").status_code == 404
        again = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=CRD)
        assert again.status_code == 201, again.text
        listed = http.get(f"{GROUP_PATH}/namespaces/{NS}/crontabs").json()
    assert listed["items"] == []  # the objects went with the first definition


def _post(http: httpx.Client, body: str) -> httpx.Response:
    return http.post(f"{GROUP_PATH}/namespaces/{NS}/crontabs", content=body,
                     headers={"Content-Type": "application/json"})


def test_schema_errors_name_the_field(kubectl: Kubectl, master: Master) -> None:
    with master.http() as http:
        bad = _post(http, _tab("bad", cronSpec="nope", replicas=0, mode="medium", image=""))
        assert bad.status_code == 422, bad.text
        causes = {c["field"]: c["message"] for c in bad.json()["details"]["causes"]}
        assert causes["spec.replicas"] == ("Invalid value: 0: spec.replicas in body should be "
                                           "greater than or equal to 1")
        assert causes["spec.mode"].startswith('Unsupported value: "medium"')
        assert "should match" in causes["spec.cronSpec"]
        assert "at least 1 chars long" in causes["spec.image"]
        missing = _post(http, _tab("bad", replicas="two"))
        causes = {c["field"]: c["message"] for c in missing.json()["details"]["causes"]}
        assert causes["spec.cronSpec"] == "Required value"
        assert "must be of type integer" in causes["spec.replicas"]
        # status is the status subresource's: the main resource ignores it
        # an undeclared field is pruned with a warning; status belongs to the
        # status subresource, so the main resource drops it
        made = _post(http, json.dumps({**json.loads(_tab("st", cronSpec="* * * * *", junk=1)),
                                       "status": {"phase": "Done"}}))
        assert made.status_code == 201, made.text
        assert "status" not in made.json() and "junk" not in made.json()["spec"]
        assert 'unknown field \\"spec.junk\\"' in made.headers["warning"]
        path = f"{GROUP_PATH}/namespaces/{NS}/crontabs/st/status"
        done = http.patch(path, content='{"status":{"phase":"Done"}}',
                          headers={"Content-Type": "application/merge-patch+json"})
        assert done.status_code == 200 and done.json()["status"] == {"phase": "Done"}


def test_non_structural_schema_is_refused(master: Master) -> None:
    crd: dict[str, Any] = json.loads(json.dumps(CRD))
    crd["metadata"]["name"] = "loose.stable.example.com"
    crd["spec"]["names"] = {"plural": "loose", "kind": "Loose"}
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {
        "type": "object", "properties": {"spec": {"properties": {"a": {"$ref": "#/x"}}}}}
    with master.http() as http:
        got = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
        assert got.status_code == 422, got.text
        fields = {c["field"] for c in got.json()["details"]["causes"]}
        base = "spec.versions[0].schema.openAPIV3Schema.properties[spec]"
        assert fields == {f"{base}.type", f"{base}.properties[a].$ref", f"{base}.properties[a].type"}
        assert http.get(f"{GROUP_PATH}/loose").status_code == 404


def test_deleting_a_namespace_deletes_its_custom_objects(kubectl: Kubectl, master: Master) -> None:
    kubectl("create", "namespace", "crd-gone")
    with master.http() as http:
        made = http.post(f"{GROUP_PATH}/namespaces/crd-gone/crontabs",
                         json={**json.loads(_tab("left", cronSpec="* * * * *")),
                               "metadata": {"name": "left"}})
        assert made.status_code == 201, made.text
    kubectl("delete", "namespace", "crd-gone", "--timeout=60s")  # waits until it is gone
    with master.http() as http:
        left = http.get(f"{GROUP_PATH}/crontabs").json()["items"]
    assert [m["metadata"]["namespace"] for m in left if m["metadata"]["name"] == "left"] == []


def test_a_deleted_crd_waits_for_its_objects_finalizers(master: Master) -> None:
    crd: dict[str, Any] = json.loads(json.dumps(CRD))
    crd["metadata"]["name"] = "holds.stable.example.com"
    crd["spec"]["names"] = {"plural": "holds", "kind": "Hold"}
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/holds.stable.example.com"
    path = f"{GROUP_PATH}/namespaces/{NS}/holds"
    held = {"apiVersion": "stable.example.com/v1", "kind": "Hold", "spec": {"cronSpec": "* * * * *"},
            "metadata": {"name": "held", "finalizers": ["example.com/keep"]}}
    with master.http() as http:
        assert http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                         json=crd).status_code == 201
        assert http.post(path, json=held).status_code == 201
        assert http.delete(crd_path).status_code == 200
        # the object is being deleted, its finalizer holds it and so the CRD
        wait_for(lambda: http.get(f"{path}/held").json()["metadata"].get("deletionTimestamp"),
                 30.0, "the object marked for deletion")
        assert http.get(crd_path).json()["metadata"]["deletionTimestamp"]
        refused = http.post(path, json={**held, "metadata": {"name": "new"}})
        assert refused.status_code == 405, refused.text
        released = http.patch(f"{path}/held", content='{"metadata":{"finalizers":null}}',
                              headers={"Content-Type": "application/merge-patch+json"})
        assert released.status_code == 200, released.text
        wait_for(lambda: http.get(crd_path).status_code == 404, 30.0, "the CRD gone")
        assert http.get(path).status_code == 404
