"""What the agent tells its proxy and DNS server about Service and Endpoints objects
(pure functions of corral/agent/services.py)."""

from __future__ import annotations

from corral.agent.services import (
    dns_host_for,
    dns_record,
    endpoint_backends,
    ready_ips,
    service_ports,
)
from corral.objects import Obj
from corral.proxy.model import Algorithm, Backend, ClientIPAffinity, ServicePortKey


def svc(spec: Obj, annotations: Obj | None = None) -> Obj:
    meta: Obj = {"name": "web", "namespace": "prod"}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec}


def endpoints(*subsets: Obj) -> Obj:
    return {"metadata": {"name": "web", "namespace": "prod"}, "subsets": list(subsets)}


def test_service_ports_in_spec_order_with_node_ports_and_affinity() -> None:
    ports = service_ports(svc({
        "type": "NodePort", "clusterIP": "127.100.0.9", "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
        "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                  {"name": "dns", "port": 53, "protocol": "UDP"}]},
        {"corral.dev/proxy-algorithm": "least-connections"}))
    http, dns = ports.values()
    assert list(ports) == [ServicePortKey("prod", "web", "http"),
                           ServicePortKey("prod", "web", "dns")]
    assert (http.cluster_ip, http.port, http.node_port) == ("127.100.0.9", 80, 30080)
    assert http.session_affinity == ClientIPAffinity(60.0)
    assert http.algorithm is Algorithm.LEAST_CONNECTIONS
    assert dns.protocol == "UDP" and dns.node_port is None


def test_unknown_algorithm_falls_back_to_round_robin_and_external_name_is_headless() -> None:
    (spec,) = service_ports(svc({"clusterIP": "127.100.0.9", "ports": [{"port": 80}]},
                                {"corral.dev/proxy-algorithm": "random"})).values()
    assert spec.algorithm is Algorithm.ROUND_ROBIN and spec.session_affinity is None
    (ext,) = service_ports(svc({"type": "ExternalName", "externalName": "x.example",
                                "ports": [{"port": 80}]})).values()
    assert ext.headless


def test_backends_per_subset_port_ready_only_unless_published() -> None:
    ep = endpoints(
        {"addresses": [{"ip": "127.0.1.2"}], "notReadyAddresses": [{"ip": "127.0.1.3"}],
         "ports": [{"name": "http", "port": 23001}]},
        {"addresses": [{"ip": "127.0.1.4"}], "ports": [{"name": "http", "port": 23002},
                                                      {"name": "dns", "port": 53,
                                                       "protocol": "UDP"}]})
    key = ServicePortKey("prod", "web", "http")
    assert endpoint_backends(ep) == {key: [Backend("127.0.1.2", 23001),
                                           Backend("127.0.1.4", 23002)]}
    published = endpoint_backends(ep, publish_not_ready=True)[key]
    assert Backend("127.0.1.3", 23001) in published
    assert endpoint_backends(None) == {}


def test_dns_records_cluster_ip_or_ready_addresses() -> None:
    ep = endpoints({"addresses": [{"ip": "127.0.1.2"}, {"ip": "127.0.1.2"}, {"ip": "127.0.1.4"}],
                    "ports": [{"port": 1}]})
    assert ready_ips(ep) == ("127.0.1.2", "127.0.1.4")
    record = dns_record(svc({"clusterIP": "127.100.0.9"}), ep)
    assert record is not None and record.addresses == ("127.100.0.9",)
    headless = dns_record(svc({"clusterIP": "None"}), ep)
    assert headless is not None and headless.addresses == ("127.0.1.2", "127.0.1.4")
    assert dns_record(svc({"type": "ExternalName", "externalName": "x.example"}), None) is None


def test_dns_address_follows_the_node_address() -> None:
    assert dns_host_for("127.0.1.7") == "127.0.2.7"
    assert dns_host_for("10.1.2.40") == "127.0.2.40"
    assert dns_host_for("127.0.1.0") == "127.0.2.1"
    assert dns_host_for("not-an-ip") == "127.0.2.1"
