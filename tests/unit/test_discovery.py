"""Discovery and OpenAPI documents, checked against what kubectl 1.32 reads
from them (see /work/shared/KUBECTL.md)."""

from __future__ import annotations

import re
from typing import Any

import pytest

import corral
from corral.api import discovery, openapi, resources
from corral.api.resources import CONVERTED, RESOURCES, SERVED, Resource, ServedTable

KUBECTL_DISCOVERY_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


def _entries(group: str, version: str) -> dict[str, dict[str, Any]]:
    doc = discovery.api_resource_list(group, version)
    assert doc is not None
    return {entry["name"]: entry for entry in doc["resources"]}


def test_version_reports_kubernetes_1_32_and_corral() -> None:
    info = discovery.version_info()
    assert (info["major"], info["minor"], info["gitVersion"]) == ("1", "32", "v1.32.0")
    assert info["corralVersion"] == corral.__version__
    assert re.fullmatch(r"[a-z]+/[a-z0-9]+", info["platform"])
    assert all(isinstance(v, str) and v for v in info.values())


def test_api_versions_lists_the_core_version() -> None:
    doc = discovery.api_versions("10.0.0.1:6443")
    assert doc["kind"] == "APIVersions" and doc["versions"] == ["v1"]
    assert doc["serverAddressByClientCIDRs"] == [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]


def test_group_list_has_every_named_group_once() -> None:
    groups = discovery.api_group_list()["groups"]
    names = [g["name"] for g in groups]
    assert sorted(names) == sorted({r.group for r in SERVED if r.group})
    apps = groups[names.index("apps")]
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}


def test_core_resource_list_describes_pods_and_their_subresources() -> None:
    entries = _entries("", "v1")
    assert entries["pods"] == {
        "name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
        "verbs": list(resources.BY_KIND["Pod"].verbs), "shortNames": ["po"],
        "categories": ["all"],
    }
    # drain looks for exactly this entry before it evicts.
    assert entries["pods/eviction"] == {
        "name": "pods/eviction", "singularName": "", "namespaced": True, "kind": "Eviction",
        "verbs": ["create"], "group": "policy", "version": "v1",
    }
    assert entries["pods/status"]["kind"] == "Pod"
    assert "group" not in entries["pods/status"]
    assert entries["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert entries["pods/binding"]["kind"] == "Binding"
    assert "group" not in entries["pods/binding"]
    assert entries["pods/log"]["verbs"] == ["get"]
    assert entries["nodes"]["namespaced"] is False


def test_deployment_scale_is_an_autoscaling_v1_scale() -> None:
    scale = _entries("apps", "v1")["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert scale["verbs"] == ["get", "patch", "update"]


def test_unknown_group_version_is_not_served() -> None:
    assert discovery.api_resource_list("policy", "v2") is None
    assert discovery.api_resource_list("apps", "v2") is None


def test_every_resource_is_listed_in_its_group_version() -> None:
    for res in SERVED:
        entry = _entries(res.group, res.version)[res.plural]
        assert (entry["kind"], entry["namespaced"]) == (res.kind, res.namespaced)
        assert entry.get("shortNames", []) == list(res.short_names)
        for sub in res.subresources:
            assert f"{res.plural}/{sub}" in _entries(res.group, res.version)


def test_aggregated_core_group() -> None:
    doc = discovery.aggregated_discovery(core=True)
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupDiscoveryList",
                                                "apidiscovery.k8s.io/v2")
    [core] = doc["items"]
    assert core["metadata"] == {}
    [v1] = core["versions"]
    assert v1["version"] == "v1" and v1["freshness"] == "Current"
    by_name = {r["resource"]: r for r in v1["resources"]}
    pods = by_name["pods"]
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert (pods["scope"], pods["shortNames"], pods["categories"]) == (
        "Namespaced", ["po"], ["all"])
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert subs["eviction"]["responseKind"] == {"group": "policy", "version": "v1",
                                                "kind": "Eviction"}
    assert by_name["nodes"]["scope"] == "Cluster"


def test_aggregated_named_groups_cover_every_resource() -> None:
    doc = discovery.aggregated_discovery(core=False)
    found: set[tuple[str, str]] = set()
    for item in doc["items"]:
        assert item["metadata"]["name"]
        for version in item["versions"]:
            for res in version["resources"]:
                # kubectl drops a resource without responseKind.
                assert res["responseKind"]["kind"] and res["verbs"] and res["scope"]
                found.add((item["metadata"]["name"], res["resource"]))
    assert found == {(r.group, r.plural) for r in SERVED if r.group}


def test_a_kind_added_to_the_served_table_is_discoverable() -> None:
    served = ServedTable()
    widget = Resource("example.com", "v1", "Widget", "widgets", True, ("wd",))
    served.define("widgets.example.com", (widget,))
    extended = served.discoverable()
    assert "example.com" in [g["name"] for g in discovery.api_group_list(extended)["groups"]]
    doc = discovery.api_resource_list("example.com", "v1", extended)
    assert doc is not None and doc["resources"][0]["shortNames"] == ["wd"]
    names = [i["metadata"]["name"] for i in discovery.aggregated_discovery(False, extended)["items"]]
    assert "example.com" in names
    served.define("widgets.example.com", ())
    assert discovery.api_resource_list("example.com", "v1", served.discoverable()) is None


@pytest.mark.parametrize(("accept", "expected"), [
    (KUBECTL_DISCOVERY_ACCEPT, True),
    ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", True),
    ("application/json", False),
    ("", False),
    (("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
     "application/json"), False),
    (("application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;"
     "as=APIGroupDiscoveryList"), False),
])
def test_wants_aggregated(accept: str, expected: bool) -> None:
    assert discovery.wants_aggregated(accept) is expected


def test_aggregated_content_type_is_exact() -> None:
    assert discovery.AGGREGATED_DISCOVERY_CONTENT_TYPE == (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")


# --- OpenAPI ---------------------------------------------------------------------


def test_openapi_index_points_at_every_group_version() -> None:
    paths = openapi.openapi_v3_index()["paths"]
    expected = {f"apis/{g}/{v}" if g else f"api/{v}"
                for g, v in resources.group_versions(RESOURCES + CONVERTED)}
    assert "apis/autoscaling/v1" in expected  # served by conversion, documented too
    assert set(paths) == expected
    for key, entry in paths.items():
        assert re.fullmatch(rf"/openapi/v3/{re.escape(key)}\?hash=[0-9A-F]+",
                            entry["serverRelativeURL"])


def _patch_operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["x-kubernetes-group-version-kind"]["kind"]: op
            for item in doc["paths"].values() if (op := item.get("patch"))}


@pytest.mark.parametrize("res", RESOURCES + CONVERTED, ids=lambda r: r.api_version + r.kind)
def test_every_kind_has_a_patch_with_field_validation(res: Resource) -> None:
    doc = openapi.openapi_v3_document(res.group, res.version)
    assert doc is not None
    op = _patch_operations(doc)[res.kind]
    assert op["x-kubernetes-group-version-kind"] == {
        "group": res.group, "version": res.version, "kind": res.kind}
    assert {"fieldValidation", "query"} <= {
        v for p in op["parameters"] for v in (p["name"], p["in"])}
    # Without a requestBody kubectl keeps its compiled-in strategic-merge keys.
    assert "requestBody" not in op
    schema = doc["components"]["schemas"][openapi.schema_name(res)]
    assert schema["x-kubernetes-group-version-kind"] == [op["x-kubernetes-group-version-kind"]]


def test_schemas_are_named_as_in_kubernetes() -> None:
    apps = openapi.openapi_v3_document("apps", "v1")
    assert apps is not None
    schemas = apps["components"]["schemas"]
    assert "io.k8s.api.apps.v1.Deployment" in schemas
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    lease = openapi.openapi_v3_document("coordination.k8s.io", "v1")
    assert lease is not None
    assert "io.k8s.api.coordination.v1.Lease" in lease["components"]["schemas"]
    spec = schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]
    assert "title" not in spec and "anyOf" not in spec


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.mark.parametrize(("group", "version"), resources.group_versions(RESOURCES + CONVERTED))
def test_every_ref_resolves_inside_its_document(group: str, version: str) -> None:
    doc = openapi.openapi_v3_document(group, version)
    assert doc is not None
    names = set(doc["components"]["schemas"])
    for ref in _refs(doc):
        assert ref.removeprefix("#/components/schemas/") in names, ref


def test_unknown_document_is_none_and_documents_are_fresh_copies() -> None:
    assert openapi.openapi_v3_document("policy", "v2") is None
    first = openapi.openapi_v3_document("", "v1")
    assert first is not None
    first["paths"].clear()
    second = openapi.openapi_v3_document("", "v1")
    assert second is not None and second["paths"]


def test_every_description_names_a_field_of_its_model() -> None:
    """The explain texts stay attached to real fields as the models change."""
    from corral.api.openapi import openapi_v3_document
    from corral.api.openapi_descriptions import DESCRIPTIONS

    by_model: dict[str, list[dict[str, Any]]] = {}  # a model name may be in two versions
    for group, version in resources.group_versions(RESOURCES + CONVERTED):
        doc = openapi_v3_document(group, version) or {}
        for name, schema in doc["components"]["schemas"].items():
            by_model.setdefault(name.rsplit(".", 1)[1], []).append(schema)
    for model, (_, fields) in DESCRIPTIONS.items():
        assert all(schema["description"] for schema in by_model[model]), model
        for field in fields:
            texts = {schema["properties"][field]["description"] for schema in by_model[model]
                     if field in schema["properties"]}
            assert texts == {fields[field]}, (model, field)
