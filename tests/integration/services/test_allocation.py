"""clusterIP and nodePort allocation through a real master: ranges, user-chosen
values, Kubernetes' 422 wording with the field named, keep-on-update, freeing
on delete and update, no claim kept by a dry run, atomic concurrent creates."""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from corral.objects import Obj
from tests import manifests
from tests.cluster import Master
from tests.kubectl import kubectl_binary
from tests.poll import wait_for

SERVICES = "/api/v1/namespaces/default/services"
CIDR = f"127.{random.randint(101, 199)}.0.0/16"  # its own, so parallel runs never meet
NET = ipaddress.ip_network(CIDR)
PORTS = (31000, 31999)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    m = Master(tmp_path_factory.mktemp("alloc"), extra_args=[
        "--disable", "scheduler", "--disable", "controllers", "--service-cidr", CIDR,
        "--service-node-port-range", f"{PORTS[0]}-{PORTS[1]}"]).start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def http(api: Master) -> Iterator[httpx.Client]:
    with api.http() as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{random.randint(0, 10**8):08d}"


def service(name: str, kind: str = "ClusterIP", *, cluster_ip: str | None = None,
            node_ports: list[int | None] | None = None, ports: int = 1) -> Obj:
    listed: list[Obj] = [{"name": f"p{i}", "port": 80 + i} for i in range(ports)]
    for port, node_port in zip(listed, node_ports or [], strict=False):
        if node_port is not None:
            port["nodePort"] = node_port
    extra = {"clusterIP": cluster_ip} if cluster_ip is not None else {}
    return manifests.service(name, type=kind, ports=listed, **extra)


def create(http: httpx.Client, body: Obj, **params: str) -> httpx.Response:
    return http.post(SERVICES, json=body, params=params)


def created(http: httpx.Client, body: Obj) -> Obj:
    r = create(http, body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def spec_of(obj: Obj) -> Obj:
    return obj["spec"]  # type: ignore[no-any-return]


def node_ports(obj: Obj) -> list[int]:
    return [p["nodePort"] for p in spec_of(obj)["ports"]]


def free_ip() -> str:
    return str(NET.network_address + random.randint(1000, 60000))


def free_port(http: httpx.Client) -> int:
    """A random node port of PORTS no Service holds now (the master also hands
    out ports from that range to the other tests' Services)."""
    items = http.get("/api/v1/services").json()["items"]
    taken = {p.get("nodePort") for svc in items for p in spec_of(svc).get("ports") or []}
    return random.choice([p for p in range(PORTS[0], PORTS[1] + 1) if p not in taken])


def causes(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["reason"] == "Invalid"
    return {c["field"]: c["message"] for c in body["details"]["causes"]}


# ---- allocation ------------------------------------------------------------------

def test_cluster_ip_from_the_range_and_shown_by_kubectl(http: httpx.Client, api: Master,
                                                        tmp_path: Path) -> None:
    svc = created(http, service(unique("np"), "NodePort"))
    ip = spec_of(svc)["clusterIP"]
    assert ipaddress.ip_address(ip) in NET
    assert spec_of(svc)["clusterIPs"] == [ip]
    (port,) = node_ports(svc)
    assert PORTS[0] <= port <= PORTS[1]
    out = subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(api.kubeconfig), "get", "svc", svc["metadata"]["name"]],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "KUBECACHEDIR": str(tmp_path / "cache")}).stdout
    header, row = out.splitlines()[:2]
    assert "CLUSTER-IP" in header and "PORT(S)" in header
    assert ip in row.split() and f"80:{port}/TCP" in row.split()


def test_load_balancer_is_treated_as_node_port(http: httpx.Client) -> None:
    svc = created(http, service(unique("lb"), "LoadBalancer", ports=2))
    assert all(PORTS[0] <= p <= PORTS[1] for p in node_ports(svc))
    assert len(set(node_ports(svc))) == 2


def test_headless_and_external_name_get_nothing(http: httpx.Client) -> None:
    headless = created(http, service(unique("hl"), cluster_ip="None"))
    assert spec_of(headless)["clusterIP"] == "None"
    external = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": unique("ext")},
                "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    ext = created(http, external)
    assert "clusterIP" not in spec_of(ext)


# ---- user-chosen values and clashes ----------------------------------------------

def test_chosen_values_are_honoured(http: httpx.Client) -> None:
    ip, port = free_ip(), free_port(http)
    svc = created(http, service(unique("mine"), "NodePort", cluster_ip=ip, node_ports=[port]))
    assert spec_of(svc)["clusterIP"] == ip and node_ports(svc) == [port]


def test_clashes_are_422_naming_the_field(http: httpx.Client) -> None:
    taken = created(http, service(unique("taken"), "NodePort"))
    ip, port = spec_of(taken)["clusterIP"], node_ports(taken)[0]
    r = create(http, service(unique("clash"), cluster_ip=ip))
    assert causes(r) == {"spec.clusterIP": f'Invalid value: "{ip}": failed to allocate IP '
                                           f"{ip}: provided IP is already allocated"}
    assert 'Service "' in r.json()["message"] and "is invalid" in r.json()["message"]
    r = create(http, service(unique("clash"), "NodePort", node_ports=[port]))
    assert causes(r) == {"spec.ports[0].nodePort":
                         f"Invalid value: {port}: provided port is already allocated"}


def test_out_of_range_values_are_422(http: httpx.Client) -> None:
    r = create(http, service(unique("far"), cluster_ip="10.0.0.10"))
    assert causes(r)["spec.clusterIP"] == (
        'Invalid value: "10.0.0.10": failed to allocate IP 10.0.0.10: provided IP is not in '
        f"the valid range. The range of valid IPs is {CIDR}")
    r = create(http, service(unique("far"), "NodePort", node_ports=[None, 30000], ports=2))
    assert causes(r) == {"spec.ports[1].nodePort":
                         "Invalid value: 30000: provided port is not in the valid range. "
                         f"The range of valid ports is {PORTS[0]}-{PORTS[1]}"}


def test_refused_create_keeps_nothing(http: httpx.Client) -> None:
    """The first port's claim is given back when the second port clashes."""
    taken = created(http, service(unique("taken"), "NodePort"))
    wanted, clash = free_port(http), node_ports(taken)[0]
    ip = free_ip()
    r = create(http, service(unique("half"), "NodePort", cluster_ip=ip, node_ports=[wanted, clash],
                             ports=2))
    assert set(causes(r)) == {"spec.ports[1].nodePort"}
    created(http, service(unique("after"), "NodePort", cluster_ip=ip, node_ports=[wanted]))


def test_one_node_port_twice_in_a_service_is_a_duplicate(http: httpx.Client) -> None:
    port = free_port(http)
    r = create(http, service(unique("dup"), "NodePort", node_ports=[port, port], ports=2))
    assert causes(r) == {"spec.ports[1].nodePort": f"Duplicate value: {port}"}


def test_bad_specs_are_422_naming_the_field(http: httpx.Client) -> None:
    r = create(http, service(unique("cip"), "ClusterIP", node_ports=[31500]))
    assert "spec.ports[0].nodePort" in causes(r)
    bad_port = service(unique("bad"))
    bad_port["spec"]["ports"][0]["port"] = 70000
    assert "spec.ports[0].port" in causes(create(http, bad_port))
    no_ports = service(unique("none"))
    del no_ports["spec"]["ports"]
    assert "spec.ports" in causes(create(http, no_ports))
    assert "spec.clusterIP" in causes(create(http, service(unique("ip"), cluster_ip="nope")))
    assert "spec.type" in causes(create(http, service(unique("t"), "Balloon")))


# ---- update and delete --------------------------------------------------------------

def test_update_that_omits_allocated_values_keeps_them(http: httpx.Client) -> None:
    svc = created(http, service(unique("keep"), "NodePort", ports=2))
    ip, ports = spec_of(svc)["clusterIP"], node_ports(svc)
    body = service(svc["metadata"]["name"], "NodePort", ports=2)
    body["metadata"]["resourceVersion"] = svc["metadata"]["resourceVersion"]
    body["spec"]["selector"] = {"app": "changed"}
    r = http.put(f"{SERVICES}/{svc['metadata']['name']}", json=body)
    assert r.status_code == 200, r.text
    assert spec_of(r.json())["clusterIP"] == ip and node_ports(r.json()) == ports


def test_changing_the_cluster_ip_is_refused(http: httpx.Client) -> None:
    svc = created(http, service(unique("imm")))
    r = http.patch(f"{SERVICES}/{svc['metadata']['name']}", json={"spec": {"clusterIP": free_ip()}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert "spec.clusterIP" in causes(r)


def test_delete_frees_both_at_once(http: httpx.Client) -> None:
    svc = created(http, service(unique("gone"), "NodePort"))
    ip, port = spec_of(svc)["clusterIP"], node_ports(svc)[0]
    assert http.delete(f"{SERVICES}/{svc['metadata']['name']}").status_code == 200
    again = created(http, service(unique("reuse"), "NodePort", cluster_ip=ip, node_ports=[port]))
    assert spec_of(again)["clusterIP"] == ip


def test_update_frees_a_dropped_node_port(http: httpx.Client) -> None:
    svc = created(http, service(unique("move"), "NodePort"))
    old, new = node_ports(svc)[0], free_port(http)
    patch = {"spec": {"ports": [{"name": "p0", "port": 80, "nodePort": new}]}}
    r = http.patch(f"{SERVICES}/{svc['metadata']['name']}", json=patch,
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert node_ports(r.json()) == [new]
    body = service(unique("takes-old"), "NodePort", node_ports=[old])
    wait_for(lambda: create(http, body).status_code == 201, timeout=5.0)


def test_type_change_to_node_port_allocates_and_back_frees(http: httpx.Client) -> None:
    svc = created(http, service(unique("flip")))
    name = svc["metadata"]["name"]
    r = http.patch(f"{SERVICES}/{name}", json={"spec": {"type": "NodePort"}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    (port,) = node_ports(r.json())
    assert http.delete(f"{SERVICES}/{name}").status_code == 200
    created(http, service(unique("after-flip"), "NodePort", node_ports=[port]))


def test_create_of_an_existing_name_claims_nothing(http: httpx.Client) -> None:
    svc = created(http, service(unique("twice")))
    ip = free_ip()
    r = create(http, service(svc["metadata"]["name"], cluster_ip=ip))
    assert r.status_code == 409, r.text
    created(http, service(unique("other"), cluster_ip=ip))


def test_dry_run_leaves_no_lasting_claim(http: httpx.Client) -> None:
    name, ip, port = unique("dry"), free_ip(), free_port(http)
    body = service(name, "NodePort", cluster_ip=ip, node_ports=[port])
    r = create(http, body, dryRun="All")
    assert r.status_code == 201, r.text
    assert http.get(f"{SERVICES}/{name}").status_code == 404
    created(http, body)  # the same name, asking again, gets its values at once
    assert http.delete(f"{SERVICES}/{name}").status_code == 200
    other_ip = free_ip()
    assert create(http, service(unique("dry2"), cluster_ip=other_ip), dryRun="All"
                  ).status_code == 201
    stranger = service(unique("stranger"), cluster_ip=other_ip)
    assert create(http, stranger).status_code == 201  # the dry run kept nothing


def test_concurrent_creates_of_one_address_have_one_winner(api: Master) -> None:
    ip = free_ip()

    def attempt(i: int) -> int:
        with api.http() as client:
            return create(client, service(unique(f"race{i}"), cluster_ip=ip)).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(attempt, range(8)))
    assert sorted(codes) == [201] + [422] * 7


def test_a_full_range_says_so_and_refills_on_delete(tmp_path: Path) -> None:
    m = Master(tmp_path / "small", extra_args=[
        "--disable", "scheduler", "--disable", "controllers",
        "--service-cidr", "127.98.0.0/29", "--service-node-port-range", "30000-30002"]).start()
    try:
        def attempt(i: int) -> Obj:
            with m.http() as client:
                return created(client, service(f"s{i}"))

        # The master's own default/kubernetes Service holds the range's first address.
        with m.http() as client:
            master_svc = client.get("/api/v1/namespaces/default/services/kubernetes")
            assert spec_of(master_svc.json())["clusterIP"] == "127.98.0.1", master_svc.text
        with ThreadPoolExecutor(5) as pool:
            made = list(pool.map(attempt, range(5)))
        ips = {spec_of(s)["clusterIP"] for s in made}
        assert ips == {f"127.98.0.{i}" for i in range(2, 7)}
        with m.http() as client:
            r = create(client, service("s7"))
            assert r.status_code == 500 and "range is full" in r.json()["message"], r.text
            assert client.delete(f"{SERVICES}/s3").status_code == 200
            assert spec_of(created(client, service("s7")))["clusterIP"] == spec_of(
                made[3])["clusterIP"]
    finally:
        m.stop()


def test_type_change_to_cluster_ip_frees_node_ports(http: httpx.Client) -> None:
    name = unique("tc")
    port = node_ports(created(http, service(name, "NodePort")))[0]
    r = http.patch(f"{SERVICES}/{name}", content=b'{"spec":{"type":"ClusterIP"}}',
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert "nodePort" not in spec_of(r.json())["ports"][0]
    # The dropped port is freed once the write has landed.
    wait_for(lambda: create(http, service(unique("tc2"), "NodePort", node_ports=[port]))
             .status_code == 201, timeout=20, what=f"nodePort {port} free again")
