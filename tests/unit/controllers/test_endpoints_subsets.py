"""Endpoints from pods: ready vs not ready, host ports from portMappings,
named and numeric targetPorts resolved per pod."""

from __future__ import annotations

from corral.controllers.endpoints import build_subsets
from corral.controllers.service_pods import resolve_port
from corral.objects import Obj


def pod(name: str, ip: str, host_port: int, *, ready: bool = True,
        deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta,
            "spec": {"nodeName": "n1", "containers": [{"name": "main", "ports": [
                {"name": "http", "containerPort": 8080}]}]},
            "status": {"hostIP": ip, "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "portMappings": [{"containerName": "main", "name": "http",
                                         "containerPort": 8080, "hostIP": ip,
                                         "hostPort": host_port, "protocol": "TCP"}]}}


def service(target: int | str) -> Obj:
    return {"spec": {"selector": {"app": "x"},
                     "ports": [{"name": "web", "port": 80, "targetPort": target,
                                "protocol": "TCP"}]}}


def test_named_and_numeric_target_ports_resolve_to_host_ports() -> None:
    p = pod("a", "127.0.1.1", 31001)
    assert resolve_port(p, {"targetPort": "http"}) == ("127.0.1.1", 31001)
    assert resolve_port(p, {"targetPort": 8080}) == ("127.0.1.1", 31001)
    assert resolve_port(p, {"targetPort": 9999}) == (None, 9999)  # not allocated: as is
    assert resolve_port(p, {"targetPort": "nope"}) is None


def test_pods_grouped_by_their_ports_ready_and_not_ready_apart() -> None:
    pods = [pod("a", "127.0.1.1", 31001), pod("b", "127.0.1.2", 31001, ready=False),
            pod("c", "127.0.1.3", 32000), pod("gone", "127.0.1.4", 31001, deleting=True)]
    subsets = build_subsets(service("http"), pods)
    assert len(subsets) == 2
    first, second = subsets
    assert [a["ip"] for a in first["addresses"]] == ["127.0.1.1"]
    assert [a["ip"] for a in first["notReadyAddresses"]] == ["127.0.1.2"]
    assert first["ports"] == [{"port": 31001, "protocol": "TCP", "name": "web"}]
    assert second["ports"][0]["port"] == 32000
    assert first["addresses"][0]["targetRef"] == {"kind": "Pod", "namespace": "default",
                                                  "name": "a", "uid": "uid-a"}
    assert first["addresses"][0]["nodeName"] == "n1"


def test_pod_without_ip_is_left_out() -> None:
    p = pod("a", "127.0.1.1", 31001)
    p["status"].pop("hostIP")
    p["status"].pop("podIP")
    assert build_subsets(service(8080), [p]) == []


def test_a_pod_under_its_subdomain_service_gets_its_hostname() -> None:
    member = pod("web-0", "127.0.1.1", 31001)
    member["spec"].update(hostname="web-0", subdomain="web")
    stranger = pod("other", "127.0.1.2", 31002)
    stranger["spec"].update(hostname="other", subdomain="elsewhere")
    headless = {"metadata": {"name": "web"}, "spec": {"clusterIP": "None",
                                                      "selector": {"app": "x"}}}
    addresses = build_subsets(headless, [member, stranger])[0]["addresses"]
    assert [(a["targetRef"]["name"], a.get("hostname")) for a in addresses] == [
        ("web-0", "web-0"), ("other", None)]
