"""Each filter on crafted nodes, and through schedule() with its reason."""

from __future__ import annotations

from typing import Any

import pytest

from corral.scheduler.core import CoreMemory, schedule
from corral.scheduler.filters import node_failures
from corral.scheduler.requirements import pod_requirements
from corral.scheduler.snapshot import NodeInfo
from tests.unit.scheduler.objects import cluster, node, pod


def failures(p: dict[str, Any], n: dict[str, Any], *bound: dict[str, Any]) -> tuple[str, ...]:
    snapshot = cluster(n, pods=bound)
    info = snapshot.node(n["metadata"]["name"])
    assert isinstance(info, NodeInfo)
    return node_failures(pod_requirements(p), info)


def test_resource_fit_counts_bound_pods() -> None:
    n = node("a", cpu="1", memory="1Gi")
    assert failures(pod("p", cpu="600m"), n) == ()
    assert failures(pod("p", cpu="600m"), n, pod("q", cpu="500m", node_name="a")) == (
        "Insufficient cpu",)
    assert failures(pod("p", cpu="2", memory="2Gi"), n) == (
        "Insufficient cpu", "Insufficient memory")


def test_pod_count_and_zero_request_on_overcommitted_node() -> None:
    n = node("a", cpu="1", pods=1)
    assert failures(pod("p", cpu="0", memory="0"), n, pod("q", node_name="a")) == (
        "Too many pods",)
    roomy = node("b", cpu="1", pods=10)
    over = pod("q", cpu="2", node_name="b")  # bound before allocatable shrank
    assert failures(pod("p", cpu="0", memory="0"), roomy, over) == ()
    assert failures(pod("p", cpu="1m"), roomy, over) == ("Insufficient cpu",)


def test_extended_resources() -> None:
    gpu_pod = pod("p")
    gpu_pod["spec"]["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": "2"}
    assert failures(gpu_pod, node("a")) == ("Insufficient nvidia.com/gpu",)
    assert failures(gpu_pod, node("b", extra={"nvidia.com/gpu": "2"})) == ()
    assert failures(gpu_pod, node("c", extra={"nvidia.com/gpu": "3"}),
                    dict(gpu_pod, metadata={"name": "q", "namespace": "default"},
                         spec=dict(gpu_pod["spec"], nodeName="c"))) == (
        "Insufficient nvidia.com/gpu",)


def test_node_selector() -> None:
    ssd = node("a", labels={"disk": "ssd"})
    assert failures(pod("p", nodeSelector={"disk": "ssd"}), ssd) == ()
    assert failures(pod("p", nodeSelector={"disk": "hdd"}), ssd) == (
        "node(s) didn't match Pod's node affinity/selector",)


def affinity(*expressions: dict[str, Any], fields: list[dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    term: dict[str, Any] = {"matchExpressions": list(expressions)}
    if fields:
        term["matchFields"] = fields
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term]}}}


@pytest.mark.parametrize(("expression", "fits"), [
    ({"key": "zone", "operator": "In", "values": ["z1", "z2"]}, True),
    ({"key": "zone", "operator": "In", "values": ["z3"]}, False),
    ({"key": "zone", "operator": "NotIn", "values": ["z1"]}, False),
    ({"key": "missing", "operator": "NotIn", "values": ["x"]}, True),
    ({"key": "zone", "operator": "Exists"}, True),
    ({"key": "zone", "operator": "DoesNotExist"}, False),
    ({"key": "cores", "operator": "Gt", "values": ["8"]}, True),
    ({"key": "cores", "operator": "Gt", "values": ["16"]}, False),
    ({"key": "cores", "operator": "Lt", "values": ["32"]}, True),
    ({"key": "zone", "operator": "Lt", "values": ["32"]}, False),  # not a number
])
def test_node_affinity_operators(expression: dict[str, Any], fits: bool) -> None:
    n = node("a", labels={"zone": "z1", "cores": "16"})
    assert (failures(pod("p", affinity=affinity(expression)), n) == ()) is fits


def test_node_affinity_match_fields_and_terms_are_ored() -> None:
    by_name = affinity(fields=[{"key": "metadata.name", "operator": "In", "values": ["b"]}])
    assert failures(pod("p", affinity=by_name), node("a")) != ()
    assert failures(pod("p", affinity=by_name), node("b")) == ()
    two_terms = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "x", "operator": "Exists"}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]},
        ]}}}
    assert failures(pod("p", affinity=two_terms), node("a", labels={"zone": "z1"})) == ()


def test_taints_and_tolerations() -> None:
    gpu = node("a", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    assert failures(pod("p"), gpu) == ("node(s) had untolerated taint {dedicated: gpu}",)
    equal = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    assert failures(pod("p", tolerations=equal), gpu) == ()
    wrong_value = [{"key": "dedicated", "value": "cpu"}]
    assert failures(pod("p", tolerations=wrong_value), gpu) != ()
    assert failures(pod("p", tolerations=[{"operator": "Exists"}]), gpu) == ()
    execute = node("b", taints=[{"key": "k", "value": "v", "effect": "NoExecute"}])
    assert failures(pod("p"), execute) == ("node(s) had untolerated taint {k: v}",)
    prefer = node("c", taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"}])
    assert failures(pod("p"), prefer) == ()


def test_cordoned_node() -> None:
    cordoned = node("a", unschedulable=True)
    assert failures(pod("p"), cordoned) == ("node(s) were unschedulable",)
    tolerates = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                  "effect": "NoSchedule"}]
    assert failures(pod("p", tolerations=tolerates), cordoned) == ()


def test_not_ready_nodes_carry_the_lifecycle_taints() -> None:
    assert failures(pod("p"), node("a", ready="False")) == (
        "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",)
    assert failures(pod("p"), node("b", ready="Unknown")) == (
        "node(s) had untolerated taint {node.kubernetes.io/unreachable: }",)
    tainted = node("c", taints=[{"key": "node.kubernetes.io/unreachable",
                                 "effect": "NoSchedule"}])
    assert failures(pod("p"), tainted) != ()
    daemon = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]
    assert failures(pod("p", tolerations=daemon), node("d", ready="False")) == ()


def test_host_ports() -> None:
    def with_port(name: str, port: int, ip: str = "", node_name: str = "") -> dict[str, Any]:
        p = pod(name, node_name=node_name)
        p["spec"]["containers"][0]["ports"] = [
            {"containerPort": 80, "hostPort": port, **({"hostIP": ip} if ip else {})}]
        return p

    used = with_port("q", 8080, node_name="a")
    assert failures(with_port("p", 8080), node("a"), used) == (
        "node(s) didn't have free ports for the requested pod ports",)
    assert failures(with_port("p", 8081), node("a"), used) == ()
    specific = with_port("q", 9000, ip="10.0.0.1", node_name="a")
    assert failures(with_port("p", 9000, ip="10.0.0.2"), node("a"), specific) == ()
    assert failures(with_port("p", 9000), node("a"), specific) != ()


def anti(app: str) -> dict[str, Any]:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": app}},
        "topologyKey": "kubernetes.io/hostname"}]}}


def test_pod_anti_affinity_incoming_and_existing() -> None:
    web = pod("q", labels={"app": "web"}, node_name="a")
    assert failures(pod("p", affinity=anti("web")), node("a"), web) == (
        "node(s) didn't match pod anti-affinity rules",)
    assert failures(pod("p", affinity=anti("db")), node("a"), web) == ()
    other_ns = pod("q", labels={"app": "web"}, namespace="other", node_name="a")
    assert failures(pod("p", affinity=anti("web")), node("a"), other_ns) == ()
    guarded = pod("q", labels={"app": "db"}, affinity=anti("web"), node_name="a")
    assert failures(pod("p", labels={"app": "web"}), node("a"), guarded) == (
        "node(s) didn't satisfy existing pods anti-affinity rules",)


def together(app: str, topology: str = "kubernetes.io/hostname",
             **term: Any) -> dict[str, Any]:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": app}}, "topologyKey": topology, **term}]}}


def test_pod_affinity_places_next_to_a_matching_pod() -> None:
    cache = pod("c", labels={"app": "cache"}, node_name="b")
    snapshot = cluster(node("a"), node("b"), node("c"), pods=(cache,))
    for i in range(5):  # every attempt, whatever the random rotation
        decision = schedule(snapshot, pod(f"w{i}", labels={"app": "web"},
                                          affinity=together("cache")))
        assert decision.node == "b"
        snapshot.add_pod(pod(f"w{i}", labels={"app": "web"}, affinity=together("cache"),
                             node_name="b"))


def test_pod_affinity_without_a_partner_is_unschedulable() -> None:
    memory = CoreMemory()
    snapshot = cluster(node("a"), node("b"), pods=(
        pod("x", labels={"app": "cache"}, namespace="other", node_name="a"),))
    decision = schedule(snapshot, pod("w", labels={"app": "web"}, affinity=together("cache")), memory=memory)
    assert decision.node is None
    assert decision.message == (
        "0/2 nodes are available: 2 node(s) didn't match pod affinity rules.")
    across = together("cache", namespaces=["other"])  # the partner's namespace named
    assert schedule(snapshot, pod("w", affinity=across), memory=memory).node == "a"


def test_first_pod_of_a_group_matching_its_own_affinity_goes_anywhere() -> None:
    memory = CoreMemory()
    snapshot = cluster(node("a"), node("b"))
    first = schedule(snapshot, pod("g0", labels={"app": "g"}, affinity=together("g")), memory=memory)
    assert first.node in ("a", "b")
    snapshot.add_pod(pod("g0", labels={"app": "g"}, affinity=together("g"),
                         node_name=first.node))
    for i in range(1, 4):
        assert schedule(snapshot, pod(f"g{i}", labels={"app": "g"},
                                      affinity=together("g")), memory=memory).node == first.node


def test_pod_affinity_on_an_unsupported_topology_key_is_ignored() -> None:
    snapshot = cluster(node("a"))
    assert schedule(snapshot, pod("w", affinity=together(
        "cache", "topology.kubernetes.io/zone"))).node == "a"


def test_topology_spread_do_not_schedule() -> None:
    memory = CoreMemory()
    spread = [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
               "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    bound = tuple(pod(f"w{i}", labels={"app": "web"}, node_name="a") for i in range(2))
    snapshot = cluster(node("a"), node("b"), pods=bound + (
        pod("w2", labels={"app": "web"}, node_name="b"),))
    p = pod("p", labels={"app": "web"}, topologySpreadConstraints=spread)
    assert schedule(snapshot, p, memory=memory).node == "b"
    snapshot.add_pod(pod("w3", labels={"app": "web"}, node_name="b"))
    snapshot.add_pod(pod("w4", labels={"app": "web"}, node_name="b"))
    decision = schedule(snapshot, p, memory=memory)
    assert decision.node == "a"
    skewed = cluster(node("a"), node("b"), pods=bound)
    skewed.update_node(node("b", unschedulable=True))
    failed = schedule(skewed, p, memory=memory)
    assert failed.node is None
    assert failed.reasons == {"node(s) didn't match pod topology spread constraints": 1,
                              "node(s) were unschedulable": 1}
