"""Which names the cluster zone claims and what it answers (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, DNSRecord  # type: ignore[import-untyped]

from corral.agent.services import ready_hosts
from corral.proxy.dns import ClusterZone, answer, upstreams_from_resolv_conf
from corral.proxy.model import ServiceDnsRecord


@pytest.fixture
def zone() -> ClusterZone:
    zone = ClusterZone()
    zone.update([ServiceDnsRecord("default", "web", "127.100.0.1"),
                 ServiceDnsRecord("prod", "db", None, ("127.0.1.2",))])
    return zone


@pytest.mark.parametrize("name, addresses", [
    ("web.default.svc.cluster.local", ("127.100.0.1",)),
    ("web.default.svc.cluster.local.", ("127.100.0.1",)),
    ("web.default.svc", ("127.100.0.1",)),
    ("web.default", ("127.100.0.1",)),
    ("db.prod", ("127.0.1.2",)),
    ("db.default.svc.cluster.local", ()),
    ("default.svc.cluster.local", ()),
    ("cluster.local", ()),
    ("a.web.default.svc.cluster.local", ()),
    ("web.default.pod.cluster.local", ()),
    ("nope.default.svc", ()),
    ("nope.default", ()),
    ("example.com", None),
    ("web.unknownns", None),
    ("localhost", None),
])
def test_lookup(zone: ClusterZone, name: str, addresses: tuple[str, ...] | None) -> None:
    assert zone.lookup(name) == addresses


def test_other_cluster_domain() -> None:
    zone = ClusterZone("corp.internal")
    zone.update([ServiceDnsRecord("default", "web", "127.100.0.1")])
    assert zone.lookup("web.default.svc.corp.internal") == ("127.100.0.1",)
    assert zone.lookup("web.default.svc.cluster.local") is None


def test_answer_sets_authority_and_ttl(zone: ClusterZone) -> None:
    reply = answer(zone, DNSRecord.question("web.default"), ttl=7)
    assert reply is not None
    assert reply.header.aa == 1 and reply.header.rcode == RCODE.NOERROR
    assert [(rr.rtype, str(rr.rdata), rr.ttl) for rr in reply.rr] == [(QTYPE.A, "127.100.0.1", 7)]


def test_answer_leaves_outside_names_alone(zone: ClusterZone) -> None:
    assert answer(zone, DNSRecord.question("example.com")) is None


def test_upstreams_from_resolv_conf(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text("# comment\nsearch lan\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n")
    assert upstreams_from_resolv_conf(path) == [("10.0.0.2", 53), ("10.0.0.3", 53)]


def test_pods_of_a_headless_service_have_names_of_their_own() -> None:
    zone = ClusterZone()
    zone.update([ServiceDnsRecord("default", "web", None, ("127.0.1.1", "127.0.1.2"),
                                  (("web-0", "127.0.1.1"), ("web-1", "127.0.1.2"))),
                 ServiceDnsRecord("default", "api", "127.100.0.9", (), (("api-0", "1.2.3.4"),))])
    assert zone.lookup("web.default.svc.cluster.local") == ("127.0.1.1", "127.0.1.2")
    assert zone.lookup("web-0.web.default.svc.cluster.local") == ("127.0.1.1",)
    assert zone.lookup("WEB-1.web.default.svc") == ("127.0.1.2",)
    assert zone.lookup("web-2.web.default.svc.cluster.local") == ()  # ours: NXDOMAIN
    assert zone.lookup("api-0.api.default.svc.cluster.local") == ()  # not headless


def test_ready_hosts_come_from_the_endpoints() -> None:
    endpoints = {"subsets": [{"addresses": [{"ip": "127.0.1.1", "hostname": "web-0"},
                                            {"ip": "127.0.1.3"}],
                              "notReadyAddresses": [{"ip": "127.0.1.2", "hostname": "web-1"}]}]}
    assert ready_hosts(endpoints) == (("web-0", "127.0.1.1"),)
    assert ready_hosts(None) == ()
