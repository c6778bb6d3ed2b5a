"""The EndpointSlice plan (Kubernetes' reconciler rules) on plain objects: one
endpoint per selected pod with Kubernetes' conditions, slices of at most 100
split and refilled as Kubernetes does, a placeholder for no endpoints, and
writes kept to the fewest."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from corral.cli.controllers import manager_options
from corral.cli.main import build_parser
from corral.client.kubeconfig import KubeconfigError
from corral.controllers.endpointslice.plan import (
    CONTROLLER_NAME,
    HEADLESS_LABEL,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    Plan,
    desired_endpoints,
    max_per_slice,
    plan_slices,
)
from corral.controllers.manager import ManagerOptions

Obj = dict[str, Any]
_names = itertools.count()


def service(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid",
                         "labels": {"app": "web", SERVICE_NAME_LABEL: "spoofed"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.0.0.10",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                "protocol": "TCP"}], **spec}}


def pod(name: str, ip: str = "127.0.1.2", *, ready: bool = True, node: str = "n1",
        deleting: bool = False, phase: str = "Running", **spec: Any) -> Obj:
    p: Obj = {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                           "labels": {"app": "web"}},
              "spec": {"nodeName": node, "containers": [{"name": "c"}], **spec},
              "status": {"phase": phase, "podIP": ip,
                         "conditions": [{"type": "Ready",
                                         "status": "True" if ready else "False"}]}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    return p


NODES = {"n1": {"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}}},
         "n2": {"metadata": {"name": "n2"}}}


def plan(svc: Obj, pods: list[Obj], existing: list[Obj], max_per_slice: int = 100) -> Plan:
    groups, _ = desired_endpoints(svc, pods, NODES)
    return plan_slices(svc, groups, copy.deepcopy(existing), max_per_slice)


def stored(p: Plan) -> list[Obj]:
    """The plan's creates as the API server would store them (named)."""
    out = []
    for eps in p.create + p.update:
        eps = copy.deepcopy(eps)
        eps["metadata"].setdefault("name", f"web-{next(_names)}")
        eps["metadata"].pop("generateName", None)
        out.append(eps)
    return out


def pod_names(eps: Obj) -> list[str]:
    return [e["targetRef"]["name"] for e in eps["endpoints"]]


def test_one_slice_with_kubernetes_fields() -> None:
    svc = service()
    p = plan(svc, [pod("a"), pod("b", "127.0.1.3", ready=False, node="n2")], [])
    assert (len(p.create), p.update, p.delete) == (1, [], [])
    eps = p.create[0]
    assert eps["metadata"]["generateName"] == "web-"
    assert eps["metadata"]["labels"] == {"app": "web", SERVICE_NAME_LABEL: "web",
                                         MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert eps["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Service", "name": "web", "uid": "svc-uid",
        "controller": True, "blockOwnerDeletion": True}]
    assert eps["addressType"] == "IPv4"
    assert eps["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert eps["endpoints"] == [
        {"addresses": ["127.0.1.2"], "nodeName": "n1", "zone": "z1",
         "conditions": {"ready": True, "serving": True, "terminating": False},
         "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}},
        {"addresses": ["127.0.1.3"], "nodeName": "n2",
         "conditions": {"ready": False, "serving": False, "terminating": False},
         "targetRef": {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}}]


def test_conditions_of_terminating_and_published_pods() -> None:
    def conditions(svc: Obj, p: Obj) -> Obj:
        groups, _ = desired_endpoints(svc, [p], NODES)
        [group] = groups.values()
        [endpoint] = group.endpoints.values()
        return endpoint["conditions"]  # type: ignore[no-any-return]

    assert conditions(service(), pod("a", deleting=True)) == {
        "ready": False, "serving": True, "terminating": True}
    assert conditions(service(publishNotReadyAddresses=True), pod("a", ready=False)) == {
        "ready": True, "serving": False, "terminating": False}


def test_which_pods_are_endpoints() -> None:
    svc = service()
    pods = [pod("no-ip", ""), pod("done", phase="Succeeded", restartPolicy="Never"),
            pod("failed", phase="Failed", restartPolicy="OnFailure"),
            pod("lost-node", node="gone"), pod("ok")]
    groups, waiting = desired_endpoints(svc, pods, NODES)
    assert [pod_names({"endpoints": list(g.endpoints.values())}) for g in groups.values()] == [
        ["failed", "ok"]]
    assert waiting == ["lost-node"]


def test_pods_on_different_ports_get_different_slices() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "http"}])
    mapped = [pod(n) for n in ("a", "b")]
    for port, p in zip((31001, 31002), mapped, strict=True):
        p["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
        p["status"]["portMappings"] = [{"name": "http", "containerPort": 8080,
                                        "hostIP": "127.0.1.9", "hostPort": port}]
    p = plan(svc, mapped, [])
    assert sorted((e["ports"][0]["port"], pod_names(e)) for e in p.create) == [
        (31001, ["a"]), (31002, ["b"])]
    assert {e["endpoints"][0]["addresses"][0] for e in p.create} == {"127.0.1.9"}


def test_split_at_100_and_refill_in_place() -> None:
    svc = service()
    pods = [pod(f"p{i:03}", f"127.0.{i // 200}.{i % 200 + 1}") for i in range(250)]
    p = plan(svc, pods, [])
    assert sorted(len(e["endpoints"]) for e in p.create) == [50, 100, 100]
    slices = stored(p)
    # Nothing changed: nothing written.
    assert plan(svc, pods, slices) == Plan()
    # Ten pods go and five come: the slices they left are updated in place and
    # refilled, no slice is created or deleted.
    gone = {f"p{i:03}" for i in range(10)}
    new = [pod(f"q{i}", f"127.1.0.{i + 1}") for i in range(5)]
    later = [q for q in pods if q["metadata"]["name"] not in gone] + new
    p = plan(svc, later, slices)
    assert (p.create, p.delete) == ([], [])
    names_after = {n for e in p.update for n in pod_names(e)}
    assert {"q0", "q4"} <= names_after and not gone & names_after
    assert all(len(e["endpoints"]) <= 100 for e in p.update)
    # A smaller maximum splits finer.
    assert len(plan(svc, pods[:10], [], max_per_slice=3).create) == 4


def test_leftovers_go_to_the_unchanged_slice_they_fit_best() -> None:
    svc = service()
    first = stored(plan(svc, [pod(f"p{i}", f"127.0.0.{i + 1}") for i in range(3)], []))
    p = plan(svc, [pod(f"p{i}", f"127.0.0.{i + 1}") for i in range(5)], first)
    assert (p.create, p.delete, len(p.update)) == ([], [], 1)
    assert pod_names(p.update[0]) == ["p0", "p1", "p2", "p3", "p4"]
    assert p.update[0]["metadata"]["name"] == first[0]["metadata"]["name"]


def test_no_endpoints_keeps_one_placeholder() -> None:
    svc = service()
    p = plan(svc, [], [])
    assert [(e["endpoints"], e["ports"]) for e in p.create] == [([], [])]
    placeholder = stored(p)
    assert plan(svc, [], placeholder) == Plan()
    # The last pod goes: its slice becomes the placeholder, by one update.
    with_pod = stored(plan(svc, [pod("a")], []))
    p = plan(svc, [], with_pod)
    assert (p.create, p.delete) == ([], [])
    assert [(e["endpoints"], e["ports"], e["metadata"]["name"]) for e in p.update] == [
        ([], [], with_pod[0]["metadata"]["name"])]


def test_labels_follow_the_service_and_foreign_slices_go() -> None:
    svc = service()
    slices = stored(plan(svc, [pod("a")], []))
    relabelled = service(clusterIP="None")
    relabelled["metadata"]["labels"] = {"tier": "front"}
    p = plan(relabelled, [pod("a")], slices)
    assert [e["metadata"]["labels"] for e in p.update] == [
        {"tier": "front", HEADLESS_LABEL: "", SERVICE_NAME_LABEL: "web",
         MANAGED_BY_LABEL: CONTROLLER_NAME}]
    # A slice of an earlier Service of the same name (another uid) is replaced.
    other = copy.deepcopy(slices)
    other[0]["metadata"]["ownerReferences"][0]["uid"] = "old-uid"
    p = plan(svc, [pod("a")], other)
    assert (len(p.create), [e["metadata"]["name"] for e in p.delete]) == (
        1, [other[0]["metadata"]["name"]])


def test_max_endpoints_per_slice_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    def options(*flags: str) -> int:
        args = build_parser("controllers").parse_args(["controllers", *flags])
        return manager_options(args).max_endpoints_per_slice

    assert max_per_slice("1") == 1 and max_per_slice(1000) == 1000
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="between 1 and 1000"):
            max_per_slice(bad)
    assert options() == 100
    assert options("--max-endpoints-per-slice", "7") == 7
    with pytest.raises(KubeconfigError, match="--max-endpoints-per-slice must be between"):
        options("--max-endpoints-per-slice", "0")
    monkeypatch.setenv("CORRAL_MAX_ENDPOINTS_PER_SLICE", "25")
    assert ManagerOptions.from_env().max_endpoints_per_slice == 25
    assert options() == 25
