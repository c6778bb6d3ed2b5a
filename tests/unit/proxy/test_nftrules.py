"""The nftables table as rendered from Services: pure, read against what nft needs."""

from __future__ import annotations

from corral.proxy.model import Algorithm, Backend, ClientIPAffinity, ServicePortKey
from corral.proxy.model import ServiceProxySpec as Spec
from corral.proxy.nftrules import (
    Existing,
    ServiceState,
    Stale,
    build,
    departed,
    endpoint_chain,
    parse_endpoint_chain,
    transaction,
)

WEB = ServicePortKey("shop", "web", "http")
SID = "shop/web/tcp/http"
A, B = ("10.0.0.1", 8080), ("10.0.0.2", 8080)


def test_one_chain_per_service_and_endpoint_reached_through_the_maps() -> None:
    rules = build({WEB: Spec("127.100.0.1", 80, node_port=30080)},
                  {WEB: [Backend(*A), Backend(*B), Backend("10.0.0.3", 8080, ready=False)]},
                  ["127.0.1.2", "127.0.1.1", "127.0.1.2"])
    assert rules.elements["nodeport-ips"] == ["127.0.1.1", "127.0.1.2"]
    assert rules.chains["services"][1] == (
        "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports")
    assert rules.elements["service-ips"] == [f"127.100.0.1 . tcp . 80 : goto service-{SID}"]
    assert rules.elements["service-nodeports"] == [f"tcp . 30080 : goto service-{SID}"]
    verdicts = f"0 : goto {endpoint_chain(SID, A)}, 1 : goto {endpoint_chain(SID, B)}"
    assert rules.chains[f"service-{SID}"] == [f"numgen inc mod 2 vmap {{ {verdicts} }}"]
    assert rules.chains[endpoint_chain(SID, A)] == [
        "meta mark set meta mark | 0x200000 meta l4proto tcp dnat to 10.0.0.1:8080"]
    assert "10.0.0.3" not in transaction("corral", rules, Existing())  # not ready
    assert rules.programmed == {SID: ServiceState(("127.100.0.1", 80), 30080,
                                                  frozenset({A, B}))}


def test_the_lookup_rules_do_not_grow_with_services() -> None:
    few = build({WEB: Spec("127.100.0.1", 80)}, {WEB: [Backend(*A)]})
    keys = [ServicePortKey("bulk", f"s{i}") for i in range(300)]
    many = build({k: Spec(f"127.100.1.{i % 250}", 80 + i) for i, k in enumerate(keys)},
                 {k: [Backend(*A)] for k in keys})
    assert few.chains["services"] == many.chains["services"]
    assert len(many.elements["service-ips"]) == 300


def test_no_ready_endpoint_rejects_and_headless_or_udp_get_nothing() -> None:
    headless, udp = ServicePortKey("shop", "db"), ServicePortKey("shop", "dns")
    six, odd = ServicePortKey("shop", "v6"), ServicePortKey("shop", "x; flush ruleset")
    rules = build({WEB: Spec("127.100.0.1", 80, node_port=30080), headless: Spec(None, 5432),
                   udp: Spec("127.100.0.2", 53, protocol="UDP"), six: Spec("fd00::1", 80),
                   odd: Spec("127.100.0.3", 80)},
                  {WEB: [Backend(*A, ready=False), Backend("fd00::2", 80)],
                   headless: [Backend(*A)], udp: [Backend(*A)], six: [Backend(*A)],
                   odd: [Backend(*A)]},
                  ["fd00::9"])  # an `ip` table: IPv6 is left out, never a failed write
    assert rules.elements["nodeport-ips"] == []
    assert rules.elements["no-endpoint-services"] == ["127.100.0.1 . tcp . 80 : goto reject-chain"]
    assert rules.elements["no-endpoint-nodeports"] == ["tcp . 30080 : goto reject-chain"]
    assert rules.elements["service-ips"] == []
    assert set(rules.programmed) == {SID}


def test_client_ip_affinity_checks_each_endpoints_set_first() -> None:
    rules = build({WEB: Spec("127.100.0.1", 80, session_affinity=ClientIPAffinity(60),
                             algorithm=Algorithm.LEAST_CONNECTIONS)},
                  {WEB: [Backend(*A), Backend(*B)]})
    sticky_a = f"affinity-60-{SID}__10.0.0.1/8080"
    assert rules.affinity_sets == {sticky_a: 60, f"affinity-60-{SID}__10.0.0.2/8080": 60}
    body = rules.chains[f"service-{SID}"]
    assert body[0] == f"ip saddr @{sticky_a} goto {endpoint_chain(SID, A)}"
    assert body[2].startswith("numgen random mod 2")  # least-connections approximated
    assert rules.chains[endpoint_chain(SID, A)][0].startswith(f"update @{sticky_a} {{ ip saddr }}")


def test_transaction_flushes_rules_keeps_affinity_and_deletes_what_is_gone() -> None:
    rules = build({WEB: Spec("127.100.0.1", 80, session_affinity=ClientIPAffinity(60))},
                  {WEB: [Backend(*A)]})
    old_chain = endpoint_chain(SID, B)
    text = transaction("corral-x", rules, Existing(
        chains=frozenset({old_chain, f"service-{SID}", "services"}),
        sets=frozenset({f"affinity-60-{SID}__10.0.0.2/8080", f"affinity-60-{SID}__10.0.0.1/8080"}),
        maps=frozenset({"service-ips", "old-map"})))
    lines = text.splitlines()
    assert lines[:2] == ["add table ip corral-x", "flush table ip corral-x"]
    assert "flush map ip corral-x service-ips" in lines
    # Stickiness survives: only the node IPs are a set refilled on every write.
    assert [line for line in lines if line.startswith("flush set")] == [
        "flush set ip corral-x nodeport-ips"]
    assert lines[-3:] == [f"delete chain ip corral-x {old_chain}",
                          f"delete set ip corral-x affinity-60-{SID}__10.0.0.2/8080",
                          "delete map ip corral-x old-map"]


def test_departed_names_every_frontend_an_endpoint_left() -> None:
    before = {SID: ServiceState(("127.100.0.1", 80), 30080, frozenset({A, B})),
              "shop/gone/tcp/": ServiceState(("127.100.0.9", 80), None, frozenset({A}))}
    after = {SID: ServiceState(("127.100.0.1", 80), 30080, frozenset({A}))}
    assert departed(before, after) == [
        Stale("127.100.0.9", 80, A),
        Stale("127.100.0.1", 80, B), Stale(None, 30080, B)]
    assert departed(after, after) == []


def test_endpoint_chain_names_parse_back() -> None:
    assert parse_endpoint_chain(endpoint_chain(SID, A)) == (SID, A)
    assert parse_endpoint_chain(f"service-{SID}") is None


def test_a_change_writes_only_what_differs() -> None:
    from corral.proxy.nftrules import change

    keys = [ServicePortKey("bulk", f"s{i}") for i in range(1000)]
    services = {k: Spec(f"127.101.{i // 250}.{i % 250 + 1}", 80) for i, k in enumerate(keys)}
    before = build(services, {k: [Backend(*A)] for k in keys})
    after = build(services, {**{k: [Backend(*A)] for k in keys}, keys[7]: [Backend(*B)]})
    sid = "bulk/s7/tcp/"
    assert change("corral", after, before).splitlines() == [
        f"add chain ip corral {endpoint_chain(sid, B)}",
        (f"add rule ip corral {endpoint_chain(sid, B)} "
        "meta mark set meta mark | 0x200000 meta l4proto tcp dnat to 10.0.0.2:8080"),
        f"flush chain ip corral service-{sid}",
        (f"add rule ip corral service-{sid} numgen inc mod 1 vmap "
        f"{{ 0 : goto {endpoint_chain(sid, B)} }}"),
        f"flush chain ip corral {endpoint_chain(sid, A)}",
        f"delete chain ip corral {endpoint_chain(sid, A)}"]
    assert change("corral", after, after) == "\n"
