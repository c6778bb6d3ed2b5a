"""The garbage collector treats custom resources like built-in kinds, against a
real master: a custom object's dependents go with it (Background and Foreground),
a custom object owned by a built-in one goes with its owner, and deleting the
CRD (which deletes its objects) takes their dependents too. Each is seen well
within the informers' 30 s resync: the custom kind's own watch wakes the
collector."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.cluster import Master
from tests.integration.controllers.helpers import APPS, CORE, create, deployment, namespace
from tests.poll import wait_for

NS = "gc-custom"
GROUP = "gc.example.com"
WIDGETS = f"/apis/{GROUP}/v1/namespaces/{NS}/widgets"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
QUICK = 15.0  # seconds: under the 30 s resync that would find them anyway


@pytest.fixture(scope="module")
def http(master: Master) -> Iterator[httpx.Client]:
    with master.http() as client:
        namespace(client, NS)
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
    return create(http, f"{CORE}/{NS}/configmaps",
                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})


def gone(http: httpx.Client, path: str) -> bool:
    return http.get(path).status_code == 404


def test_a_custom_owner_takes_its_dependents(http: httpx.Client) -> None:
    owner = widget(http, "w1")
    config_map(http, "w1-config", owner)
    owned = deployment("w1-app", 0)
    owned["metadata"]["ownerReferences"] = [ref(owner)]
    create(http, f"{APPS}/{NS}/deployments", owned)
    assert http.delete(f"{WIDGETS}/w1").status_code == 200
    wait_for(lambda: gone(http, f"{CORE}/{NS}/configmaps/w1-config"),
             timeout=QUICK, what="the widget's ConfigMap collected")
    wait_for(lambda: gone(http, f"{APPS}/{NS}/deployments/w1-app"), timeout=QUICK,
             what="the widget's Deployment collected")


def test_foreground_deletion_of_a_custom_owner(http: httpx.Client) -> None:
    owner = widget(http, "w2")
    config_map(http, "w2-config", owner)
    r = http.request("DELETE", f"{WIDGETS}/w2", json={"propagationPolicy": "Foreground"})
    assert r.status_code in (200, 202), r.text
    wait_for(lambda: gone(http, f"{WIDGETS}/w2"), timeout=QUICK,
             what="the widget gone after its dependents")
    assert gone(http, f"{CORE}/{NS}/configmaps/w2-config")


def test_a_custom_dependent_goes_with_its_built_in_owner(http: httpx.Client) -> None:
    owner = config_map(http, "w3-owner")
    widget(http, "w3", owner)
    assert http.delete(f"{CORE}/{NS}/configmaps/w3-owner").status_code == 200
    wait_for(lambda: gone(http, f"{WIDGETS}/w3"), timeout=QUICK, what="the widget collected")


def test_a_dependent_of_an_unserved_kind_stays(http: httpx.Client) -> None:
    """An owner of a kind nobody serves is never judged absent."""
    phantom = {"apiVersion": "nowhere.example.com/v1", "kind": "Phantom",
               "metadata": {"name": "p", "uid": "0000-phantom"}}
    config_map(http, "haunted", phantom)
    keeper = config_map(http, "keeper")
    config_map(http, "kept", keeper)  # a sibling case the collector does act on
    assert http.delete(f"{CORE}/{NS}/configmaps/keeper").status_code == 200
    wait_for(lambda: gone(http, f"{CORE}/{NS}/configmaps/kept"), timeout=QUICK,
             what="the built-in owner's dependent collected")
    assert http.get(f"{CORE}/{NS}/configmaps/haunted").status_code == 200


def test_deleting_the_crd_takes_the_dependents_of_its_objects(http: httpx.Client) -> None:
    owner = widget(http, "w4")
    config_map(http, "w4-config", owner)
    assert http.delete(f"{CRDS}/widgets.{GROUP}").status_code == 200
    wait_for(lambda: gone(http, f"{CORE}/{NS}/configmaps/w4-config"),
             timeout=QUICK, what="the dependent of a deleted CRD's object collected")
