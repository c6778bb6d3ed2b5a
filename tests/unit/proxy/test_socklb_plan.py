"""Which Service ports the connect() hook takes, and with which endpoints (pure)."""

from __future__ import annotations

from corral.proxy.model import Algorithm, Backend, ClientIPAffinity, ServicePortKey
from corral.proxy.model import ServiceProxySpec as Spec
from corral.proxy.socklb import ready_frontends


def test_only_tcp_ipv4_cluster_ips_with_ready_endpoints_and_no_affinity_are_taken() -> None:
    k = {name: ServicePortKey("ns", name) for name in
         ("web", "udp", "headless", "v6", "sticky", "empty", "lc")}
    services = {
        k["web"]: Spec("10.0.0.1", 80),
        k["udp"]: Spec("10.0.0.2", 53, protocol="UDP"),
        k["headless"]: Spec(None, 80),
        k["v6"]: Spec("fd00::1", 80),
        k["sticky"]: Spec("10.0.0.3", 80, session_affinity=ClientIPAffinity(60)),
        k["empty"]: Spec("10.0.0.4", 80),
        k["lc"]: Spec("10.0.0.5", 80, algorithm=Algorithm.LEAST_CONNECTIONS),
    }
    a, b = Backend("10.1.0.1", 8080), Backend("10.1.0.2", 8080)
    endpoints = {key: [a, b] for key in k.values()}
    endpoints[k["web"]] = [a, Backend("10.1.0.2", 8080, ready=False), a, Backend("fd00::2", 1)]
    endpoints[k["empty"]] = [Backend("10.1.0.3", 8080, ready=False)]
    plan = ready_frontends(services, endpoints)
    assert plan == {
        ("10.0.0.1", 80): ((a.address,), False, True),  # unready, duplicate, IPv6 left out
        ("10.0.0.3", 80): ((a.address, b.address), False, False),  # nftables keeps affinity
        ("10.0.0.4", 80): ((), False, False),  # nftables resets it
        ("10.0.0.5", 80): ((a.address, b.address), True, True),  # a random pick
    }
