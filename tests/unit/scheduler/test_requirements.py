"""Parsing a Pod dict into its scheduling requirements."""

from __future__ import annotations

from corral.scheduler.requirements import pod_requirements
from tests.unit.scheduler.objects import pod


def test_effective_requests_follow_kubernetes() -> None:
    p = pod("p", cpu="250m", memory="64Mi")
    p["spec"]["containers"].append({"name": "b", "resources": {
        "limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}}})
    p["spec"]["initContainers"] = [
        {"name": "init", "resources": {"requests": {"cpu": "2", "ephemeral-storage": "1Gi"}}},
        {"name": "sidecar", "restartPolicy": "Always",
         "resources": {"requests": {"cpu": "100m"}}},
    ]
    p["spec"]["overhead"] = {"cpu": "50m"}
    req = pod_requirements(p)
    assert req.cpu == 2000 + 50  # the init container's peak beats 1250m + 100m sidecar
    assert req.memory == 64 * 2**20 + 2**30
    assert req.ephemeral == 2**30
    assert req.extended == (("nvidia.com/gpu", 1),)


def test_identity_and_class_key() -> None:
    a = pod_requirements(pod("a", owner="rs-1", labels={"x": "1"}, priority=7))
    b = pod_requirements(pod("b", owner="rs-1", labels={"x": "2"}, priority=9))
    c = pod_requirements(pod("c", owner="rs-2"))
    assert (a.owner_uid, a.priority, a.key) == ("rs-1", 7, "default/a")
    assert a.class_key == b.class_key != c.class_key
    assert a.static_key == c.static_key


def test_anti_affinity_and_spread_only_on_hostname() -> None:
    p = pod("p", labels={"app": "web"}, affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}},
             "topologyKey": "kubernetes.io/hostname"},
            {"labelSelector": {"matchLabels": {"app": "web"}},
             "topologyKey": "topology.kubernetes.io/zone"},
        ]}}, topologySpreadConstraints=[
            {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname",
             "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": {"app": "web"}}}])
    req = pod_requirements(p)
    assert len(req.anti_affinity) == 1 and req.anti_affinity[0].namespaces == ("default",)
    assert len(req.spread) == 1
    assert req.spread[0].match_self and not req.spread[0].hard and not req.has_hard_spread
