"""Patches by content type, with bodies shaped like the ones kubectl 1.32 sends."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from corral.api.errors import BadRequest, Invalid, UnsupportedMediaType
from corral.api.patch import SUPPORTED_PATCH_TYPES, apply_patch, apply_server_side
from corral.objects import Obj

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"



def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def smp(original: Obj, patch: Obj, kind: str = "Deployment") -> Obj:
    return apply_patch(SMP, original, body(patch), kind)


def container(name: str, image: str = "img:1", **extra: Any) -> Obj:
    return {"name": name, "image": image, **extra}


def deployment(*containers: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": list(containers)}}, **spec},
    }


def pod_spec(obj: Obj) -> Obj:
    spec: Obj = obj["spec"]["template"]["spec"]
    return spec


def names(items: list[Obj], key: str = "name") -> list[Any]:
    return [item[key] for item in items]


# --- content types and errors ----------------------------------------------------


def test_supported_types_are_the_four_kubernetes_patch_types() -> None:
    assert set(SUPPORTED_PATCH_TYPES) == {SMP, MERGE, JSON_PATCH, APPLY}


def test_unknown_content_type_is_415_naming_the_supported_types() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        apply_patch("application/json", {"a": 1}, b"{}", "Pod")
    assert caught.value.code == 415
    for media in SUPPORTED_PATCH_TYPES:
        assert media in caught.value.message


def test_content_type_parameters_are_ignored() -> None:
    patched = apply_patch(f"{MERGE}; charset=utf-8", {"a": 1}, b'{"b": 2}', "ConfigMap")
    assert patched == {"a": 1, "b": 2}


@pytest.mark.parametrize("media", [SMP, MERGE, JSON_PATCH])
@pytest.mark.parametrize("raw", [b"", b"{not json", b"   "])
def test_malformed_bodies_are_bad_requests(media: str, raw: bytes) -> None:
    with pytest.raises(BadRequest):
        apply_patch(media, {"a": 1}, raw, "Pod")


@pytest.mark.parametrize("media", [SMP, MERGE])
def test_merge_patches_must_be_objects(media: str) -> None:
    with pytest.raises(BadRequest, match="must be a JSON object"):
        apply_patch(media, {"a": 1}, b"[1, 2]", "Pod")


@pytest.mark.parametrize("media", [SMP, MERGE, JSON_PATCH, APPLY])
def test_the_original_is_never_modified(media: str) -> None:
    original = deployment(container("web", env=[{"name": "A", "value": "1"}]))
    before = copy.deepcopy(original)
    patches: dict[str, Any] = {
        SMP: {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "A", "value": "2"}]}]}}}},
        MERGE: {"spec": {"replicas": 5, "selector": None}},
        JSON_PATCH: [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                      "value": "img:2"}],
        APPLY: deployment(container("web", "img:3")),
    }
    patched = apply_patch(media, original, body(patches[media]), "Deployment")
    assert original == before
    assert patched != before


# --- RFC 7386 merge patch ----------------------------------------------------------

MERGE_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ({"spec": {"replicas": 2, "paused": True}}, {"spec": {"replicas": 4, "paused": None}},
     {"spec": {"replicas": 4}}),
]


@pytest.mark.parametrize(("original", "patch", "expected"), MERGE_CASES)
def test_merge_patch_follows_rfc_7386(original: Obj, patch: Obj, expected: Obj) -> None:
    assert apply_patch(MERGE, original, body(patch), "ConfigMap") == expected


def test_merge_patch_replaces_lists_whole_even_keyed_ones() -> None:
    original = deployment(container("web"), container("sidecar"))
    patch = {"spec": {"template": {"spec": {"containers": [container("only")]}}}}
    assert names(pod_spec(apply_patch(MERGE, original, body(patch), "Deployment"))
                 ["containers"]) == ["only"]


def test_scale_merge_patch_as_kubectl_scale_sends_it() -> None:
    scale = {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web"},
             "spec": {"replicas": 2}, "status": {"replicas": 2, "selector": "app=web"}}
    patched = apply_patch(MERGE, scale, b'{"spec":{"replicas":4}}', "Scale")
    assert patched["spec"] == {"replicas": 4}
    assert patched["status"] == scale["status"]


# --- RFC 6902 JSON patch -------------------------------------------------------------


def test_json_patch_operations() -> None:
    original = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2, 3]}}
    ops = [
        {"op": "add", "path": "/metadata/labels/b", "value": "2"},
        {"op": "remove", "path": "/spec/list/0"},
        {"op": "replace", "path": "/metadata/labels/a", "value": "x"},
        {"op": "move", "from": "/spec/list", "path": "/spec/moved"},
        {"op": "copy", "from": "/metadata/labels", "path": "/spec/copied"},
        {"op": "test", "path": "/spec/moved/0", "value": 2},
    ]
    assert apply_patch(JSON_PATCH, original, body(ops), "ConfigMap") == {
        "metadata": {"labels": {"a": "x", "b": "2"}},
        "spec": {"moved": [2, 3], "copied": {"a": "x", "b": "2"}},
    }


def test_rollout_undo_replaces_the_template() -> None:
    """kubectl rollout undo: a json-patch replacing /spec/template."""
    live = deployment(container("web", "img:2"))
    old_template = {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [container("web", "img:1")]}}
    ops = [{"op": "replace", "path": "/spec/template", "value": old_template}]
    assert apply_patch(JSON_PATCH, live, body(ops), "Deployment")["spec"]["template"] == (
        old_template)


def test_failed_json_patch_test_is_422_invalid_as_kubernetes_answers() -> None:
    ops = [{"op": "test", "path": "/spec/replicas", "value": 3}]
    with pytest.raises(Invalid) as caught:
        apply_patch(JSON_PATCH, deployment(), body(ops), "Deployment")
    assert caught.value.code == 422
    assert "test" in caught.value.message


@pytest.mark.parametrize("ops", [
    [{"op": "remove", "path": "/spec/missing"}],
    [{"op": "replace", "path": "/spec/replicas/deeper", "value": 1}],
    [{"op": "add", "path": "/spec/template/spec/containers/9", "value": {}}],
])
def test_json_patch_that_cannot_apply_is_422(ops: list[Obj]) -> None:
    with pytest.raises(Invalid):
        apply_patch(JSON_PATCH, deployment(), body(ops), "Deployment")


@pytest.mark.parametrize("ops", [
    {"op": "add", "path": "/a", "value": 1},  # not a list
    [{"path": "/a", "value": 1}],  # no op
    [{"op": "frobnicate", "path": "/a"}],
    [{"op": "add", "value": 1}],  # no path
    [{"op": "add", "path": "/a"}],  # no value
    ["add"],
    [1],
])
def test_malformed_json_patches_are_400(ops: Any) -> None:
    with pytest.raises(BadRequest):
        apply_patch(JSON_PATCH, {"a": 0}, body(ops), "ConfigMap")


def test_json_patch_replacing_the_root_with_a_scalar_is_rejected() -> None:
    with pytest.raises(BadRequest):
        apply_patch(JSON_PATCH, {"a": 0}, body([{"op": "replace", "path": "", "value": 3}]),
                    "ConfigMap")


# --- strategic merge patch: kubectl client-side apply bodies ---------------------------


def test_containers_merge_by_name_with_set_element_order() -> None:
    live = deployment(container("web", "nginx:1.25"), container("sidecar", "envoy:1"))
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
        "containers": [{"image": "nginx:1.26", "name": "web"}]}}}}
    containers = pod_spec(smp(live, patch))["containers"]
    assert containers == [container("web", "nginx:1.26"), container("sidecar", "envoy:1")]


def test_env_by_name_delete_directive_and_order() -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    live = deployment(container("web", env=env))
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{
            "$setElementOrder/env": [{"name": "C"}, {"name": "A"}],
            "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"},
                    {"name": "A", "value": "one"}],
            "name": "web"}]}}}}
    assert pod_spec(smp(live, patch))["containers"][0]["env"] == [
        {"name": "C", "value": "3"}, {"name": "A", "value": "one"}]


def test_ports_merge_by_container_port() -> None:
    ports = [{"containerPort": 8080, "name": "http"}]
    live = deployment(container("web", ports=ports))
    patch = {"spec": {"template": {"spec": {"containers": [{
        "$setElementOrder/ports": [{"containerPort": 8080}, {"containerPort": 9090}],
        "name": "web",
        "ports": [{"containerPort": 8080, "protocol": "TCP"},
                  {"containerPort": 9090, "name": "metrics"}]}]}}}}
    assert pod_spec(smp(live, patch))["containers"][0]["ports"] == [
        {"containerPort": 8080, "name": "http", "protocol": "TCP"},
        {"containerPort": 9090, "name": "metrics"}]


def test_retain_keys_on_strategy_switch_to_recreate() -> None:
    live = deployment(container("web"), strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None,
                                   "type": "Recreate"}}}
    assert smp(live, patch)["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_drops_keys_the_patch_does_not_mention() -> None:
    live = deployment(container("web"), strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(live, patch)["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_contradicted_by_the_patch_is_invalid() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate",
                                   "rollingUpdate": {"maxSurge": 1}}}}
    with pytest.raises(Invalid):
        smp(deployment(container("web")), patch)


def test_null_deletes_keys_at_any_depth() -> None:
    live = deployment(container("web", resources={"limits": {"cpu": "1", "memory": "1Gi"}}),
                      paused=True)
    patch = {"spec": {"paused": None, "template": {"spec": {"containers": [
        {"name": "web", "resources": {"limits": {"memory": None}}}]}}}}
    patched = smp(live, patch)
    assert "paused" not in patched["spec"]
    assert pod_spec(patched)["containers"][0]["resources"] == {"limits": {"cpu": "1"}}


def test_cordon_and_uncordon_node() -> None:
    node = {"kind": "Node", "metadata": {"name": "n1"}, "spec": {}}
    cordoned = apply_patch(SMP, node, b'{"spec":{"unschedulable":true}}', "Node")
    assert cordoned["spec"] == {"unschedulable": True}
    uncordoned = apply_patch(SMP, cordoned, b'{"spec":{"unschedulable":null}}', "Node")
    assert uncordoned["spec"] == {}


ATOMIC_LISTS = [
    ("args", ["a", "b"], ["c"]),
    ("command", ["sh", "-c", "x"], ["true"]),
    ("envFrom", [{"configMapRef": {"name": "a"}}], [{"secretRef": {"name": "b"}}]),
]


@pytest.mark.parametrize(("field", "before", "after"), ATOMIC_LISTS)
def test_container_lists_without_merge_key_are_replaced(field: str, before: list[Any],
                                                        after: list[Any]) -> None:
    live = deployment({**container("web"), field: before})
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", field: after}]}}}}
    assert pod_spec(smp(live, patch))["containers"][0][field] == after


def test_tolerations_are_replaced_whole() -> None:
    live = deployment(container("web"))
    pod_spec(live)["tolerations"] = [{"key": "a", "operator": "Exists"}]
    patch = {"spec": {"template": {"spec": {"tolerations": [{"key": "b",
                                                              "operator": "Exists"}]}}}}
    assert pod_spec(smp(live, patch))["tolerations"] == [{"key": "b", "operator": "Exists"}]


KEYED_POD_SPEC_LISTS = [
    ("volumes", "name", {"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {}}),
    ("imagePullSecrets", "name", {"name": "a"}, {"name": "b"}),
    ("hostAliases", "ip", {"ip": "10.0.0.1", "hostnames": ["a"]},
     {"ip": "10.0.0.2", "hostnames": ["b"]}),
    ("topologySpreadConstraints", "topologyKey",
     {"topologyKey": "zone", "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"},
     {"topologyKey": "host", "maxSkew": 2, "whenUnsatisfiable": "ScheduleAnyway"}),
    ("initContainers", "name", container("init"), container("init2")),
]


@pytest.mark.parametrize(("field", "key", "kept", "added"), KEYED_POD_SPEC_LISTS)
def test_keyed_pod_spec_lists_merge(field: str, key: str, kept: Obj, added: Obj) -> None:
    live = deployment(container("web"))
    pod_spec(live)[field] = [kept]
    patch = {"spec": {"template": {"spec": {field: [added]}}}}
    assert names(pod_spec(smp(live, patch))[field], key) == [kept[key], added[key]]


def test_volume_mounts_merge_by_mount_path() -> None:
    live = deployment(container("web", volumeMounts=[{"name": "a", "mountPath": "/a"}]))
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "volumeMounts": [{"name": "b", "mountPath": "/a"},
                                         {"name": "c", "mountPath": "/c"}]}]}}}}
    mounts = pod_spec(smp(live, patch))["containers"][0]["volumeMounts"]
    assert mounts == [{"name": "b", "mountPath": "/a"}, {"name": "c", "mountPath": "/c"}]


def test_pod_kind_has_its_spec_at_spec() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [container("a"), container("b")]}}
    patch = {"spec": {"containers": [{"name": "b", "image": "img:2"}]}}
    patched = apply_patch(SMP, pod, body(patch), "Pod")
    assert patched["spec"]["containers"] == [container("a"), container("b", "img:2")]
    # The same body on a Deployment path table has no spec.containers rule: replaced.
    assert apply_patch(SMP, pod, body(patch), "Deployment")["spec"]["containers"] == [
        {"name": "b", "image": "img:2"}]


def test_service_ports_merge_by_port() -> None:
    svc = {"kind": "Service", "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}
    patch = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}]}}
    assert apply_patch(SMP, svc, body(patch), "Service")["spec"]["ports"] == [
        {"port": 80, "targetPort": 8080, "name": "http"}, {"port": 443}]


@pytest.mark.parametrize("kind", ["Pod", "Node", "Deployment", "Job", "ReplicaSet"])
def test_status_conditions_merge_by_type(kind: str) -> None:
    obj = {"status": {"conditions": [{"type": "Ready", "status": "False"},
                                     {"type": "Other", "status": "True"}]}}
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert apply_patch(SMP, obj, body(patch), kind)["status"]["conditions"] == [
        {"type": "Ready", "status": "True"}, {"type": "Other", "status": "True"}]


def test_node_addresses_merge_by_type() -> None:
    node = {"status": {"addresses": [{"type": "InternalIP", "address": "127.0.1.1"}]}}
    patch = {"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}}
    assert names(apply_patch(SMP, node, body(patch), "Node")["status"]["addresses"],
                 "type") == ["InternalIP", "Hostname"]


def test_owner_references_by_uid_and_finalizers_as_a_set() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"],
                        "ownerReferences": [{"uid": "1", "name": "rs-1"}]}}
    patch = {"metadata": {"finalizers": ["b", "c"],
                          "ownerReferences": [{"uid": "2", "name": "rs-2"}]}}
    meta = apply_patch(SMP, obj, body(patch), "Pod")["metadata"]
    assert meta["finalizers"] == ["a", "b", "c"]
    assert names(meta["ownerReferences"], "uid") == ["1", "2"]


def test_delete_from_primitive_list() -> None:
    obj = {"metadata": {"finalizers": ["a", "b", "c"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "finalizers": ["d"]}}
    assert apply_patch(SMP, obj, body(patch), "Pod")["metadata"]["finalizers"] == [
        "a", "c", "d"]


def test_set_element_order_on_a_primitive_merge_list() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["b", "a"]}}
    assert apply_patch(SMP, obj, body(patch), "Pod")["metadata"]["finalizers"] == ["b", "a"]


def test_server_only_items_keep_their_place_among_ordered_ones() -> None:
    """apimachinery's normalizeElementOrder: a server-only item stays before the
    items it preceded on the server."""
    live = deployment(container("a"), container("injected"), container("b"))
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "containers": [{"name": "c", "image": "img:1"}]}}}}
    assert names(pod_spec(smp(live, patch))["containers"]) == ["a", "injected", "b", "c"]


def test_patch_replace_directive_in_a_map() -> None:
    live = deployment(container("web", resources={"limits": {"cpu": "1"},
                                                  "requests": {"cpu": "1"}}))
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "resources": {"$patch": "replace", "limits": {"memory": "1Gi"}}}]}}}}
    assert pod_spec(smp(live, patch))["containers"][0]["resources"] == {
        "limits": {"memory": "1Gi"}}


def test_patch_replace_directive_in_a_list() -> None:
    live = deployment(container("a"), container("b"))
    patch = {"spec": {"template": {"spec": {"containers": [
        {"$patch": "replace"}, {"name": "c", "image": "img:9"}]}}}}
    assert pod_spec(smp(live, patch))["containers"] == [container("c", "img:9")]


def test_patch_delete_directive_in_a_map_removes_it() -> None:
    live = deployment(container("web"), strategy={"type": "Recreate"})
    assert "strategy" not in smp(live, {"spec": {"strategy": {"$patch": "delete"}}})["spec"]


def test_patch_merge_directive_is_the_default() -> None:
    live = deployment(container("web"))
    patched = smp(live, {"metadata": {"$patch": "merge", "labels": {"tier": "front"}}})
    assert patched["metadata"]["labels"] == {"app": "web", "tier": "front"}


@pytest.mark.parametrize("patch", [
    {"spec": {"$patch": "explode"}},
    {"spec": {"$frobnicate": 1}},
    {"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}},
    {"spec": {"template": {"spec": {"containers": ["web"]}}}},
    {"spec": {"$setElementOrder/x": "not a list"}},
    {"spec": {"strategy": {"$retainKeys": "type"}}},
    {"$patch": "delete"},
])
def test_malformed_strategic_patches_are_bad_requests(patch: Obj) -> None:
    with pytest.raises(BadRequest):
        smp(deployment(container("web")), patch)


def test_three_way_kubectl_apply_patch() -> None:
    """kubectl computed this from last-applied, the new manifest and the live
    object; applying it must give the new manifest plus what only the server set."""
    last_applied = deployment(container("web", "nginx:1.25",
                                        env=[{"name": "MODE", "value": "a"},
                                             {"name": "OLD", "value": "x"}]),
                              strategy={"type": "RollingUpdate",
                                        "rollingUpdate": {"maxSurge": 1}})
    manifest = deployment(container("web", "nginx:1.26",
                                    env=[{"name": "MODE", "value": "b"}],
                                    ports=[{"containerPort": 80}]),
                          strategy={"type": "Recreate"})
    manifest["spec"]["replicas"] = 3
    live = copy.deepcopy(last_applied)
    live["metadata"].update(uid="u1", resourceVersion="7", generation=1)
    pod_spec(live)["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    pod_spec(live)["restartPolicy"] = "Always"
    live["status"] = {"replicas": 2}
    patch = {
        "metadata": {"annotations": {LAST_APPLIED: json.dumps(manifest) + "\n"}},
        "spec": {
            "replicas": 3,
            "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": "MODE"}],
                    "env": [{"name": "MODE", "value": "b"}, {"$patch": "delete", "name": "OLD"}],
                    "image": "nginx:1.26", "name": "web", "ports": [{"containerPort": 80}]}],
            }},
        },
    }
    patched = smp(live, patch)
    expected = copy.deepcopy(manifest)
    expected["metadata"].update(uid="u1", resourceVersion="7", generation=1,
                                annotations={LAST_APPLIED: json.dumps(manifest) + "\n"})
    pod_spec(expected)["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    pod_spec(expected)["restartPolicy"] = "Always"
    expected["status"] = {"replicas": 2}
    assert patched == expected


# --- server-side apply -------------------------------------------------------------------


def test_server_side_apply_of_a_new_object_is_a_copy() -> None:
    applied = deployment(container("web"))
    created = apply_server_side(None, applied, "Deployment")
    assert created == applied
    assert created is not applied


def test_server_side_apply_merges_lists_by_key_and_applied_fields_win() -> None:
    live = deployment(container("web", "img:1", env=[{"name": "A", "value": "1"}]),
                      container("sidecar"))
    live["metadata"]["uid"] = "u1"
    applied = deployment(container("web", "img:2", env=[{"name": "B", "value": "2"}]))
    applied["spec"]["replicas"] = 5
    patched = apply_server_side(live, applied, "Deployment")
    assert patched["spec"]["replicas"] == 5
    assert patched["metadata"]["uid"] == "u1"
    web, sidecar = pod_spec(patched)["containers"]
    assert web["image"] == "img:2"
    assert names(web["env"]) == ["A", "B"]
    assert sidecar == container("sidecar")


def test_apply_patch_content_type_runs_server_side_apply_on_json_and_yaml() -> None:
    live = deployment(container("web"))
    from_json = apply_patch(APPLY, live, body({"spec": {"replicas": 7}}), "Deployment")
    from_yaml = apply_patch(APPLY, live, b"spec:\n  replicas: 7\n", "Deployment")
    assert from_json == from_yaml
    assert from_json["spec"]["replicas"] == 7
    with pytest.raises(BadRequest):
        apply_patch(APPLY, live, b"spec: [unclosed", "Deployment")
