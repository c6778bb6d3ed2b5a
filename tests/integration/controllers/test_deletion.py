"""Cascading deletion through the garbage collector (Background, Foreground,
Orphan) of Deployment → ReplicaSets → Pods and of custom resources, and namespace
deletion, against a real `corral master` (no node: pods are never bound, so they
go at once)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from bench.loadgen import run_requests
from tests.cluster import Master
from tests.integration.controllers.helpers import (
    APPS,
    CORE,
    create,
    deployment,
    get,
    items,
    namespace,
    pods,
    template,
)
from tests.poll import wait_for

NS = "gc"


@pytest.fixture(scope="module")
def http(master: Master) -> Iterator[httpx.Client]:
    with master.http() as client:
        namespace(client, NS)
        yield client


def started(http: httpx.Client, name: str, replicas: int = 2) -> dict:  # type: ignore[type-arg]
    d = create(http, f"{APPS}/{NS}/deployments", deployment(name, replicas))
    wait_for(lambda: len(pods(http, NS, name)) == replicas, what=f"{replicas} pods")
    return d


def replica_sets(http: httpx.Client, app: str) -> list[dict]:  # type: ignore[type-arg]
    return items(http, f"{APPS}/{NS}/replicasets", f"app={app}")


def delete(http: httpx.Client, path: str, policy: str) -> dict:  # type: ignore[type-arg]
    r = http.request("DELETE", path, json={"propagationPolicy": policy})
    assert r.status_code in (200, 202), r.text
    return dict(r.json())


def test_background_deletes_replicasets_and_pods(http: httpx.Client) -> None:
    started(http, "bg")
    delete(http, f"{APPS}/{NS}/deployments/bg", "Background")
    assert get(http, f"{APPS}/{NS}/deployments/bg") is None  # the owner goes first
    wait_for(lambda: not replica_sets(http, "bg") and not pods(http, NS, "bg", False),
             what="no ReplicaSet or Pod left")


def test_foreground_deletes_dependents_before_the_owner(http: httpx.Client) -> None:
    started(http, "fg")
    marked = delete(http, f"{APPS}/{NS}/deployments/fg", "Foreground")
    assert "foregroundDeletion" in marked["metadata"]["finalizers"]
    wait_for(lambda: get(http, f"{APPS}/{NS}/deployments/fg") is None, what="owner gone")
    assert not replica_sets(http, "fg")
    assert not pods(http, NS, "fg", False)


def test_owners_of_every_kind_take_their_dependents(http: httpx.Client) -> None:
    """Kinds beyond Deployments: a ReplicationController's pods go with it, and a
    CronJob deleted in the foreground takes the Job `kubectl create job --from`
    made it own (it waited for ever when CronJobs were not in the graph)."""
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
          "spec": {"replicas": 2, "selector": {"app": "rc"}, "template": template("rc")}}
    create(http, f"{CORE}/{NS}/replicationcontrollers", rc)
    wait_for(lambda: len(pods(http, NS, "rc")) == 2, what="the controller's 2 pods")
    delete(http, f"{CORE}/{NS}/replicationcontrollers/rc", "Background")
    wait_for(lambda: not pods(http, NS, "rc", False), what="the controller's pods gone")

    job_spec = {"template": {**template("cj"), "spec": {
        **template("cj")["spec"], "restartPolicy": "Never"}}}
    cron = create(http, f"/apis/batch/v1/namespaces/{NS}/cronjobs", {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
        "spec": {"schedule": "0 0 1 1 *", "suspend": True, "jobTemplate": {"spec": job_spec}}})
    owner = {"apiVersion": "batch/v1", "kind": "CronJob", "name": "cj",
             "uid": cron["metadata"]["uid"], "controller": True}
    create(http, f"/apis/batch/v1/namespaces/{NS}/jobs", {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "cj-manual", "ownerReferences": [owner]}, "spec": job_spec})
    delete(http, f"/apis/batch/v1/namespaces/{NS}/cronjobs/cj", "Foreground")
    wait_for(lambda: get(http, f"/apis/batch/v1/namespaces/{NS}/cronjobs/cj") is None,
             what="the CronJob gone after its Job")
    assert get(http, f"/apis/batch/v1/namespaces/{NS}/jobs/cj-manual") is None


def test_orphan_keeps_dependents_without_the_owner(http: httpx.Client) -> None:
    d = started(http, "or")
    delete(http, f"{APPS}/{NS}/deployments/or", "Orphan")
    wait_for(lambda: get(http, f"{APPS}/{NS}/deployments/or") is None, what="owner gone")
    rses = replica_sets(http, "or")
    assert len(rses) == 1
    assert not rses[0]["metadata"].get("ownerReferences")
    survivors = pods(http, NS, "or")
    assert len(survivors) == 2
    # The pods keep their ReplicaSet: only the deleted owner's references go.
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == rses[0]["metadata"]["uid"]
               for p in survivors)
    assert d["metadata"]["uid"] not in str(rses[0]["metadata"])


def test_namespace_delete_empties_it_and_it_disappears(http: httpx.Client) -> None:
    ns = namespace(http, "doomed")
    create(http, f"{APPS}/{ns}/deployments", deployment("web", 2))
    create(http, f"{CORE}/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": "cfg"}, "data": {"a": "b"}})
    wait_for(lambda: len(pods(http, ns, "web")) == 2, what="pods in the namespace")
    r = http.delete(f"/api/v1/namespaces/{ns}")
    assert r.status_code == 200, r.text
    assert r.json()["status"]["phase"] == "Terminating"
    wait_for(lambda: get(http, f"/api/v1/namespaces/{ns}") is None, what="namespace gone")
    assert items(http, f"{CORE}/{ns}/pods") == []


def _condition(ns: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    found = [c for c in ((ns or {}).get("status") or {}).get("conditions") or []
             if c["type"] == type_]
    return found[0] if found else {}


def test_a_namespace_held_by_a_finalizer_says_so(http: httpx.Client) -> None:
    """The status conditions `kubectl describe ns` shows for a namespace stuck
    terminating name what remains and the finalizer holding it, as Kubernetes'
    namespace controller words them; releasing the finalizer lets it go."""
    ns = namespace(http, "held")
    path = f"{CORE}/{ns}/configmaps"
    create(http, path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "kept", "finalizers": ["example.com/hold"]}})
    create(http, path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone"}})
    assert http.delete(f"/api/v1/namespaces/{ns}").status_code == 200
    stuck = wait_for(lambda: _condition(n := get(http, f"/api/v1/namespaces/{ns}"),
                                        "NamespaceFinalizersRemaining").get("status") == "True"
                     and n, what="NamespaceFinalizersRemaining")
    assert _condition(stuck, "NamespaceFinalizersRemaining")["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 "
        "resource instances")
    remaining = _condition(stuck, "NamespaceContentRemaining")
    assert (remaining["reason"], remaining["message"]) == (
        "SomeResourcesRemain", ("Some resources are remaining: configmaps. has 1 resource "
        "instances"))
    assert _condition(stuck, "NamespaceDeletionContentFailure")["status"] == "False"
    r = http.patch(f"{path}/kept", json={"metadata": {"finalizers": None}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    wait_for(lambda: get(http, f"/api/v1/namespaces/{ns}") is None, what="namespace gone")


MANY = 1000


def _many_pods(master: Master, owner: dict, label: str) -> None:  # type: ignore[type-arg]
    """MANY pods owned by ``owner``, created over 32 connections; a scheduler name
    nobody serves keeps them out of the scheduler's way."""
    ref = {"apiVersion": "v1", "kind": owner["kind"], "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"]}
    body = {"metadata": {"labels": {"many": label}, "ownerReferences": [ref]},
            "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "i"}]}}
    requests = []
    for i in range(MANY):
        body["metadata"]["name"] = f"{label}-{i}"
        requests.append(("POST", f"{CORE}/{NS}/pods", orjson.dumps(body)))

    def created(status: int, data: bytes) -> None:
        assert status == 201, data[:300]

    asyncio.run(run_requests(master.url, master.token, str(master.ca_path), requests, 32,
                             created))


def _count(http: httpx.Client, label: str) -> int:
    return len(items(http, f"{CORE}/{NS}/pods", f"many={label}"))


def test_the_owner_of_thousands_of_pods_takes_them_all(master: Master,
                                                       http: httpx.Client) -> None:
    """The gone owner's dependents go through one deletecollection by owner uid
    (bench/api.py measures how fast: issue 12 saw ~8 pods/s before batching)."""
    owner = create(http, f"{CORE}/{NS}/configmaps", {"metadata": {"name": "owner-of-many"}})
    _many_pods(master, owner, "bg")
    delete(http, f"{CORE}/{NS}/configmaps/owner-of-many", "Background")
    wait_for(lambda: _count(http, "bg") == 0, timeout=180, what="every dependent deleted")


def test_deletecollection_of_thousands_of_pods(master: Master, http: httpx.Client) -> None:
    owner = create(http, f"{CORE}/{NS}/configmaps", {"metadata": {"name": "keeps-them"}})
    _many_pods(master, owner, "dc")
    r = http.request("DELETE", f"{CORE}/{NS}/pods", params={"labelSelector": "many=dc"},
                     timeout=120)
    assert r.status_code == 200 and len(r.json()["items"]) == MANY, r.text[:300]
    assert _count(http, "dc") == 0


def _pod(name: str, label: str, owners: list[dict], **meta: object) -> dict:  # type: ignore[type-arg]
    refs = [{"apiVersion": "v1", "kind": o["kind"], "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"]} for o in owners]
    return {"metadata": {"name": name, "labels": {"few": label}, "ownerReferences": refs,
                         **meta},
            "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "i"}]}}


def test_a_dependent_with_a_live_owner_loses_only_the_gone_reference(
        http: httpx.Client) -> None:
    gone = create(http, f"{CORE}/{NS}/configmaps", {"metadata": {"name": "gone-owner"}})
    kept = create(http, f"{CORE}/{NS}/configmaps", {"metadata": {"name": "kept-owner"}})
    for i in range(3):
        create(http, f"{CORE}/{NS}/pods", _pod(f"shared-{i}", "shared", [gone]))
    create(http, f"{CORE}/{NS}/pods", _pod("shared-both", "shared", [gone, kept]))
    delete(http, f"{CORE}/{NS}/configmaps/gone-owner", "Background")
    wait_for(lambda: [p["metadata"]["name"] for p in items(
        http, f"{CORE}/{NS}/pods", "few=shared")] == ["shared-both"],
        what="only the pod with a live owner left")
    wait_for(lambda: [r["uid"] for r in get(http, f"{CORE}/{NS}/pods/shared-both")[  # type: ignore[index]
        "metadata"]["ownerReferences"]] == [kept["metadata"]["uid"]],
        what="its reference to the gone owner stripped")


def test_deletecollection_removes_some_marks_others_and_tells_watchers_of_each(
        http: httpx.Client) -> None:
    """Pods without finalizers go in the store batch, a pod with one is only
    marked; a watcher gets one DELETED per removed pod, one MODIFIED for the mark."""
    rv = http.get(f"{CORE}/{NS}/pods").json()["metadata"]["resourceVersion"]
    for i in range(5):
        create(http, f"{CORE}/{NS}/pods", _pod(f"coll-{i}", "coll", []))
    create(http, f"{CORE}/{NS}/pods", _pod("coll-held", "coll", [],
                                          finalizers=["example.com/hold"]))
    r = http.request("DELETE", f"{CORE}/{NS}/pods", params={"labelSelector": "few=coll"})
    assert r.status_code == 200, r.text
    assert sorted(p["metadata"]["name"] for p in r.json()["items"]) == [
        *(f"coll-{i}" for i in range(5)), "coll-held"]
    left = items(http, f"{CORE}/{NS}/pods", "few=coll")
    assert [p["metadata"]["name"] for p in left] == ["coll-held"]
    assert left[0]["metadata"]["deletionTimestamp"]
    seen: list[tuple[str, str]] = []
    with http.stream("GET", f"{CORE}/{NS}/pods", params={
            "watch": "1", "resourceVersion": rv, "labelSelector": "few=coll",
            "timeoutSeconds": "5"}) as stream:
        for line in stream.iter_lines():
            event = orjson.loads(line)
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            if len(seen) == 12:
                break
    assert sorted(n for t, n in seen if t == "DELETED") == [f"coll-{i}" for i in range(5)]
    assert ("MODIFIED", "coll-held") in seen
    merge = {"metadata": {"finalizers": None}}
    r = http.patch(f"{CORE}/{NS}/pods/coll-held", json=merge,
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    wait_for(lambda: not items(http, f"{CORE}/{NS}/pods", "few=coll"), what="held pod gone")


# ---- custom resources own and are owned like built-in kinds ------------------------
# A custom object's dependents go with it (Background and Foreground), a custom
# object owned by a built-in one goes with its owner, and deleting the CRD (which
# deletes its objects) takes their dependents too. Each is seen well within the
# informers' 30 s resync: the custom kind's own watch wakes the collector.

CUSTOM_NS = "gc-custom"
GROUP = "gc.example.com"
WIDGETS = f"/apis/{GROUP}/v1/namespaces/{CUSTOM_NS}/widgets"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
QUICK = 15.0  # seconds: under the 30 s resync that would find them anyway


@pytest.fixture(scope="module")
def widgets(master: Master) -> Iterator[httpx.Client]:
    with master.http() as client:
        namespace(client, CUSTOM_NS)
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": f"widgets.{GROUP}"},
               "spec": {"group": GROUP, "scope": "Namespaced",
                        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                        "versions": [{"name": "v1", "served": True, "storage": True,
                                      "schema": {"openAPIV3Schema": {
                                          "type": "object",
                                          "x-kubernetes-preserve-unknown-fields": True}}}]}}
        create(client, CRDS, crd)
        wait_for(lambda: client.get(WIDGETS).status_code == 200, what="widgets served")
        yield client


def widget(http: httpx.Client, name: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [ref(owner)]
    return create(http, WIDGETS, {"apiVersion": f"{GROUP}/v1", "kind": "Widget",
                                  "metadata": meta, "spec": {"size": 1}})


def ref(owner: dict[str, Any]) -> dict[str, Any]:
    m = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": m["name"],
            "uid": m["uid"]}


def config_map(http: httpx.Client, name: str, owner: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [ref(owner)]
    return create(http, f"{CORE}/{CUSTOM_NS}/configmaps",
                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})


def gone(http: httpx.Client, path: str) -> bool:
    return http.get(path).status_code == 404


def test_a_custom_owner_takes_its_dependents(widgets: httpx.Client) -> None:
    http = widgets
    owner = widget(http, "w1")
    config_map(http, "w1-config", owner)
    owned = deployment("w1-app", 0)
    owned["metadata"]["ownerReferences"] = [ref(owner)]
    create(http, f"{APPS}/{CUSTOM_NS}/deployments", owned)
    assert http.delete(f"{WIDGETS}/w1").status_code == 200
    wait_for(lambda: gone(http, f"{CORE}/{CUSTOM_NS}/configmaps/w1-config"),
             timeout=QUICK, what="the widget's ConfigMap collected")
    wait_for(lambda: gone(http, f"{APPS}/{CUSTOM_NS}/deployments/w1-app"), timeout=QUICK,
             what="the widget's Deployment collected")


def test_foreground_deletion_of_a_custom_owner(widgets: httpx.Client) -> None:
    http = widgets
    owner = widget(http, "w2")
    config_map(http, "w2-config", owner)
    r = http.request("DELETE", f"{WIDGETS}/w2", json={"propagationPolicy": "Foreground"})
    assert r.status_code in (200, 202), r.text
    wait_for(lambda: gone(http, f"{WIDGETS}/w2"), timeout=QUICK,
             what="the widget gone after its dependents")
    assert gone(http, f"{CORE}/{CUSTOM_NS}/configmaps/w2-config")


def test_a_custom_dependent_goes_with_its_built_in_owner(widgets: httpx.Client) -> None:
    http = widgets
    owner = config_map(http, "w3-owner")
    widget(http, "w3", owner)
    assert http.delete(f"{CORE}/{CUSTOM_NS}/configmaps/w3-owner").status_code == 200
    wait_for(lambda: gone(http, f"{WIDGETS}/w3"), timeout=QUICK, what="the widget collected")


def test_a_dependent_of_an_unserved_kind_stays(widgets: httpx.Client) -> None:
    http = widgets
    """An owner of a kind nobody serves is never judged absent."""
    phantom = {"apiVersion": "nowhere.example.com/v1", "kind": "Phantom",
               "metadata": {"name": "p", "uid": "0000-phantom"}}
    config_map(http, "haunted", phantom)
    keeper = config_map(http, "keeper")
    config_map(http, "kept", keeper)  # a sibling case the collector does act on
    assert http.delete(f"{CORE}/{CUSTOM_NS}/configmaps/keeper").status_code == 200
    wait_for(lambda: gone(http, f"{CORE}/{CUSTOM_NS}/configmaps/kept"), timeout=QUICK,
             what="the built-in owner's dependent collected")
    assert http.get(f"{CORE}/{CUSTOM_NS}/configmaps/haunted").status_code == 200


def test_deleting_the_crd_takes_the_dependents_of_its_objects(widgets: httpx.Client) -> None:
    http = widgets
    owner = widget(http, "w4")
    config_map(http, "w4-config", owner)
    assert http.delete(f"{CRDS}/widgets.{GROUP}").status_code == 200
    wait_for(lambda: gone(http, f"{CORE}/{CUSTOM_NS}/configmaps/w4-config"),
             timeout=QUICK, what="the dependent of a deleted CRD's object collected")
