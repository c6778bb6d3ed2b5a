"""Cascading deletion through the garbage collector (Background, Foreground,
Orphan) of Deployment → ReplicaSets → Pods, and namespace deletion, against a
real `corral master` (no node: pods are never bound, so they go at once)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

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


def test_the_owner_of_thousands_of_pods_goes_in_seconds(master: Master,
                                                        http: httpx.Client) -> None:
    """Issue 12 measured ~8 pods/s (a live owner GET per pod, 4 workers: 125 s for
    these); the bound is generous for a shared machine and half of that."""
    owner = create(http, f"{CORE}/{NS}/configmaps", {"metadata": {"name": "owner-of-many"}})
    _many_pods(master, owner, "bg")
    started = time.monotonic()
    delete(http, f"{CORE}/{NS}/configmaps/owner-of-many", "Background")
    wait_for(lambda: _count(http, "bg") == 0, timeout=180, what="every dependent deleted")
    assert time.monotonic() - started < 60


def test_deletecollection_of_thousands_of_pods_goes_in_seconds(master: Master,
                                                               http: httpx.Client) -> None:
    owner = create(http, f"{CORE}/{NS}/configmaps", {"metadata": {"name": "keeps-them"}})
    _many_pods(master, owner, "dc")
    started = time.monotonic()
    r = http.request("DELETE", f"{CORE}/{NS}/pods", params={"labelSelector": "many=dc"},
                     timeout=120)
    assert r.status_code == 200 and len(r.json()["items"]) == MANY, r.text[:300]
    assert time.monotonic() - started < 60  # one by one: 2 minutes for a few thousand
    assert _count(http, "dc") == 0
