"""Services end to end: a real master (scheduler, controllers incl. Endpoints) and
two real agents, each a node on its own loopback address, running the proxy and
DNS. Three HTTP server pods that answer with their name sit behind a NodePort
Service; every request is a new TCP connection through the proxy. The same
cluster serves the EndpointSlice tests (the endpointslice controller, kubectl's
table and describe, the Python client's DiscoveryV1Api)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from dnslib import QTYPE, RCODE, DNSRecord  # type: ignore[import-untyped]
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from corral.objects import Obj, status
from tests import manifests
from tests.cluster import Agent, Master, start_agents
from tests.integration.services import web
from tests.kubectl import Kubectl
from tests.poll import wait_for

NS = "default"
CIDR = f"127.{random.randint(101, 199)}.0.0/16"  # its own, so parallel runs never meet
REPLICAS = ("web-0", "web-1", "web-2")


@dataclass
class Cluster:
    master: Master
    agents: list[Agent]
    http: httpx.Client

    def get(self, path: str) -> Obj:
        r = self.http.get(path)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def create(self, path: str, body: Obj) -> Obj:
        r = self.http.post(path, json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def service(self, name: str) -> Obj:
        return self.get(f"/api/v1/namespaces/{NS}/services/{name}")

    def pod(self, name: str) -> Obj:
        return self.get(f"/api/v1/namespaces/{NS}/pods/{name}")


def is_ready(pod: Obj) -> bool:
    conditions = status(pod).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def host_port(pod: Obj) -> tuple[str, int]:
    """Where the pod really listens (the agent allocated the port)."""
    mapping = pod["status"]["portMappings"][0]
    return mapping["hostIP"], int(mapping["hostPort"])


def ready_endpoints(c: Cluster, name: str) -> int:
    r = c.http.get(f"/api/v1/namespaces/{NS}/endpoints/{name}")
    if r.status_code != 200:
        return 0
    return sum(len(s.get("addresses") or []) for s in r.json().get("subsets") or [])


def cluster_address(svc: Obj) -> tuple[str, int]:
    return svc["spec"]["clusterIP"], int(svc["spec"]["ports"][0]["port"])


def node_addresses(c: Cluster, svc: Obj) -> list[tuple[str, int]]:
    node_port = int(svc["spec"]["ports"][0]["nodePort"])
    return [(agent.node_ip, node_port) for agent in c.agents]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base: Path = tmp_path_factory.mktemp("services")
    master = Master(base / "master", extra_args=["--service-cidr", CIDR])
    agents: list[Agent] = []
    try:
        master.start()
        for i, last in enumerate(random.sample(range(2, 250), 2)):
            agent = Agent(master, f"svc-node-{i}", base / "agents" / f"svc-node-{i}",
                          f"127.0.1.{last}")
            agents.append(agent)
        start_agents(agents)
        with master.http() as http:
            yield Cluster(master, agents, http)
    finally:
        for agent in agents:
            agent.cleanup()
        master.stop()


@pytest.fixture(scope="module")
def backends(cluster: Cluster) -> Obj:
    """Service "web" first, then its three pods spread over both nodes (so their
    env carries the Service); returns the Service once traffic reaches all three."""
    svc = cluster.create(f"/api/v1/namespaces/{NS}/services", web.service("web", "web"))
    for i, name in enumerate(REPLICAS):
        node = cluster.agents[i % len(cluster.agents)].name
        cluster.create(f"/api/v1/namespaces/{NS}/pods", web.pod(name, "web", node))
    wait_for(lambda: all(is_ready(cluster.pod(n)) for n in REPLICAS), what="three ready pods")
    wait_for(lambda: ready_endpoints(cluster, "web") == 3,
               what="Endpoints web with 3 ready addresses (the endpoints controller)")
    host, port = cluster_address(svc)
    assert web.reach_all(host, port, set(REPLICAS)) == set(REPLICAS)
    return svc


def test_cluster_ip_and_every_node_port_reach_all_replicas(cluster: Cluster,
                                                           backends: Obj) -> None:
    for host, port in [cluster_address(backends), *node_addresses(cluster, backends)]:
        seen = web.reach_all(host, port, set(REPLICAS), timeout=10.0)
        assert seen == set(REPLICAS), f"{host}:{port} reached only {sorted(seen)}"
        # Once everything is up, no request through the proxy fails.
        assert set(web.names_seen(host, port, 12)) <= set(REPLICAS)


def test_not_ready_replica_stops_receiving_traffic_within_a_second(cluster: Cluster,
                                                                   backends: Obj) -> None:
    host, port = cluster_address(backends)
    pod_host, pod_port = host_port(cluster.pod("web-1"))
    web.fetch(pod_host, pod_port, "/unready")
    try:
        wait_for(lambda: not is_ready(cluster.pod("web-1")), what="web-1 reported not ready",
                   timeout=15.0)
        time.sleep(1.0)  # the budget: from Ready=False in the API to out of rotation
        answered = web.names_seen(host, port, 30)
        for node_host, node_port in node_addresses(cluster, backends):
            answered += web.names_seen(node_host, node_port, 15)
        assert "web-1" not in answered
        assert set(answered) == {"web-0", "web-2"}
    finally:
        web.fetch(pod_host, pod_port, "/reready")
    assert web.reach_all(host, port, set(REPLICAS)) == set(REPLICAS)


def test_scale_up_starts_receiving_traffic(cluster: Cluster, backends: Obj) -> None:
    cluster.create(f"/api/v1/namespaces/{NS}/pods",
                   web.pod("web-3", "web", cluster.agents[1].name))
    try:
        host, port = cluster_address(backends)
        wanted = {*REPLICAS, "web-3"}
        assert web.reach_all(host, port, wanted, timeout=60.0) == wanted
        node_host, node_port = node_addresses(cluster, backends)[0]
        assert web.reach_all(node_host, node_port, wanted, timeout=10.0) == wanted
    finally:
        cluster.http.delete(f"/api/v1/namespaces/{NS}/pods/web-3")
    wait_for(lambda: ready_endpoints(cluster, "web") == 3, what="web-3 out of the Endpoints")


def test_env_vars_name_services_that_existed_at_start(cluster: Cluster, backends: Obj) -> None:
    env = web.env_of(*host_port(cluster.pod("web-0")))
    ip = backends["spec"]["clusterIP"]
    assert env["WEB_SERVICE_HOST"] == ip
    assert env["WEB_SERVICE_PORT"] == "80"
    assert env["WEB_PORT"] == f"tcp://{ip}:80"
    assert env["WEB_PORT_80_TCP_ADDR"] == ip
    dns_host, _, dns_port = env["CORRAL_DNS"].partition(":")
    assert dns_host.startswith("127.0.2.") and dns_port.isdigit()
    resolv = Path(env["CORRAL_RESOLV_CONF"]).read_text()
    assert f"nameserver {dns_host}" in resolv
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv


def dns_query(server: str, name: str) -> DNSRecord:
    host, _, port = server.partition(":")
    return DNSRecord.parse(DNSRecord.question(name).send(host, int(port), timeout=3.0))


def a_records(reply: DNSRecord) -> set[str]:
    return {str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A}


def test_dns_names_resolve_on_every_node(cluster: Cluster, backends: Obj) -> None:
    headless = web.service("web-direct", "web", kind="ClusterIP", cluster_ip="None")
    cluster.create(f"/api/v1/namespaces/{NS}/services", headless)
    ip = backends["spec"]["clusterIP"]
    node_ips = {agent.node_ip for agent in cluster.agents}
    for name in ("web-0", "web-1"):  # one pod on each node: each node's own DNS server
        server = web.env_of(*host_port(cluster.pod(name)))["CORRAL_DNS"]
        assert a_records(dns_query(server, "web.default.svc.cluster.local")) == {ip}
        assert a_records(dns_query(server, "web.default")) == {ip}
        missing = dns_query(server, "nothing-here.default.svc.cluster.local")
        assert missing.header.rcode == RCODE.NXDOMAIN
        wait_for(lambda s=server: a_records(  # type: ignore[misc]
            dns_query(s, "web-direct.default.svc.cluster.local")) == node_ips,
            what="headless Service resolving to the ready pods' addresses", timeout=15.0)


class Hammer(threading.Thread):
    """Requests through one address back to back until stopped; counts outcomes."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.names: dict[str, int] = {}
        self.failures: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                name = web.fetch(self.host, self.port, timeout=5.0)
                self.names[name] = self.names.get(name, 0) + 1
            except web.RequestFailed as err:
                self.failures.append(str(err))

    def finish(self) -> None:
        self._stop_event.set()
        self.join(30.0)


def rolled_out(c: Cluster, name: str, generation: int, replicas: int) -> bool:
    deploy = c.get(f"/apis/apps/v1/namespaces/{NS}/deployments/{name}")
    status = deploy.get("status") or {}
    return (status.get("observedGeneration", 0) >= generation
            and status.get("updatedReplicas") == replicas
            and status.get("readyReplicas") == replicas
            and status.get("replicas") == replicas)


def app_pods(c: Cluster, app: str) -> list[Obj]:
    listing = c.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3D{app}")
    return listing["items"]  # type: ignore[no-any-return]


def test_rolling_update_loses_no_request(cluster: Cluster) -> None:
    """Needs the deployment and replicaset controllers (and the scheduler)."""
    svc = cluster.create(f"/api/v1/namespaces/{NS}/services", web.service("roll", "roll"))
    created = cluster.create(f"/apis/apps/v1/namespaces/{NS}/deployments",
                             web.deployment("roll", 3))
    wait_for(lambda: rolled_out(cluster, "roll", created["metadata"]["generation"], 3),
               what="Deployment roll with 3 ready replicas (deployment controller)")
    wait_for(lambda: ready_endpoints(cluster, "roll") == 3, what="Endpoints roll with 3 addresses")
    first = {p["metadata"]["name"] for p in app_pods(cluster, "roll")}
    host, port = cluster_address(svc)
    assert web.reach_all(host, port, first) == first
    hammer = Hammer(host, port)
    hammer.start()
    try:
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "VERSION", "value": "2"}]}]}}}}
        r = cluster.http.patch(f"/apis/apps/v1/namespaces/{NS}/deployments/roll", json=patch,
                               headers={"Content-Type": "application/strategic-merge-patch+json"})
        assert r.status_code == 200, r.text
        generation = r.json()["metadata"]["generation"]
        wait_for(lambda: rolled_out(cluster, "roll", generation, 3)
                   and not first & {p["metadata"]["name"] for p in app_pods(cluster, "roll")},
                   what="the rollout to finish and the old pods to go", timeout=120.0)
        time.sleep(1.0)  # traffic keeps flowing to the new set
    finally:
        hammer.finish()
    new = set(hammer.names) - first
    assert hammer.failures == [], hammer.failures[:5]
    assert len(new) == 3, f"new replicas answering: {sorted(new)}"
    assert sum(hammer.names.values()) > 50


# ---- EndpointSlices (the endpointslice controller, discovery.k8s.io/v1) ---------------

SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"


def slices_of(c: Cluster, service: str) -> list[Obj]:
    listing = c.get(f"{SLICES}?labelSelector=kubernetes.io%2Fservice-name%3D{service}")
    return listing["items"]  # type: ignore[no-any-return]


def endpoint_states(c: Cluster, service: str) -> dict[str, tuple[bool, bool, bool]]:
    """(ready, serving, terminating) by pod name, over every slice of the Service."""
    return {e["targetRef"]["name"]: (e["conditions"]["ready"], e["conditions"]["serving"],
                                     e["conditions"]["terminating"])
            for s in slices_of(c, service) for e in s["endpoints"]}


def ready_pod_names(c: Cluster, app: str) -> set[str]:
    return {p["metadata"]["name"] for p in app_pods(c, app)
            if is_ready(p) and not p["metadata"].get("deletionTimestamp")}


def scale(c: Cluster, name: str, replicas: int) -> None:
    r = c.http.patch(f"/apis/apps/v1/namespaces/{NS}/deployments/{name}/scale",
                     json={"spec": {"replicas": replicas}},
                     headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text


def slices_match_ready_pods(c: Cluster, replicas: int) -> list[Obj] | None:
    """The Service's one slice once it lists exactly the Deployment's ready pods
    (and the never-ready pod, as not ready)."""
    pods = ready_pod_names(c, "sliced")
    if len(pods) != replicas:
        return None
    want = {**{p: (True, True, False) for p in pods}, "sliced-unready": (False, False, False)}
    found = slices_of(c, "sliced")
    return found if len(found) == 1 and endpoint_states(c, "sliced") == want else None


@pytest.fixture(scope="module")
def sliced(cluster: Cluster) -> Obj:
    """Service "sliced" over a Deployment's pods and one pod that is never ready.
    The pods declare no ports, so all serve the targetPort itself: one set of
    ports, one slice (pods on host ports of their own would each get their own)."""
    svc = cluster.create(f"/api/v1/namespaces/{NS}/services", manifests.service(
        "sliced", {"tier": "sliced"}, ports=[{"name": "http", "port": 80, "targetPort": 8080}]))
    template = manifests.pod_template({"app": "sliced", "tier": "sliced"})
    cluster.create(f"/apis/apps/v1/namespaces/{NS}/deployments",
                   manifests.deployment("sliced", 2, template=template))
    never_ready = manifests.container(readinessProbe={"exec": {"command": ["false"]},
                                                      "periodSeconds": 1})
    cluster.create(f"/api/v1/namespaces/{NS}/pods", manifests.pod(
        "sliced-unready", labels={"tier": "sliced"}, containers=[never_ready]))
    return svc


def test_endpointslice_follows_the_deployment(cluster: Cluster, sliced: Obj) -> None:
    [eps] = wait_for(lambda: slices_match_ready_pods(cluster, 2), timeout=60.0,
                     what="one slice of the 2 ready pods and the unready one")
    assert eps["metadata"]["name"].startswith("sliced-")
    assert eps["metadata"]["labels"] == {
        "kubernetes.io/service-name": "sliced",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert eps["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Service", "name": "sliced",
        "uid": sliced["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert eps["addressType"] == "IPv4"
    assert eps["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    pods = {p["metadata"]["name"]: p for p in app_pods(cluster, "sliced")}
    for endpoint in eps["endpoints"]:
        name = endpoint["targetRef"]["name"]
        pod = pods.get(name) or cluster.pod(name)
        assert endpoint["addresses"] == [pod["status"]["podIP"]]
        assert endpoint["nodeName"] == pod["spec"]["nodeName"]
        assert endpoint["targetRef"]["uid"] == pod["metadata"]["uid"]
    scale(cluster, "sliced", 3)
    [grown] = wait_for(lambda: slices_match_ready_pods(cluster, 3), timeout=60.0,
                       what="the slice following the scale up to 3")
    assert grown["metadata"]["name"] == eps["metadata"]["name"]  # updated in place
    scale(cluster, "sliced", 1)
    wait_for(lambda: slices_match_ready_pods(cluster, 1), timeout=60.0,
             what="the slice following the scale down to 1")


def test_kubectl_shows_endpointslices(cluster: Cluster, sliced: Obj,
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    kubectl = Kubectl(cluster.master, tmp_path_factory.mktemp("kubecache"))
    [eps] = wait_for(lambda: slices_match_ready_pods(cluster, 1), timeout=60.0,
                     what="the slice of one ready pod and the unready one")
    ready_ip = next(e["addresses"][0] for e in eps["endpoints"] if e["conditions"]["ready"])
    table = kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=sliced")
    header, row = table.splitlines()
    assert header.split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    name, address_type, ports, endpoints, _ = row.split()
    assert (name, address_type, ports) == (eps["metadata"]["name"], "IPv4", "8080")
    assert set(endpoints.split(",")) == {e["addresses"][0] for e in eps["endpoints"]}
    described = kubectl("describe", "service", "sliced")
    endpoints_line = next(line for line in described.splitlines()
                          if line.startswith("Endpoints:"))
    # describe lists the ready endpoints of the Service's slices.
    assert endpoints_line.split()[1:] == [f"{ready_ip}:8080"]


def test_python_client_lists_endpointslices(cluster: Cluster, sliced: Obj) -> None:
    api = k8s_client.DiscoveryV1Api(
        k8s_config.new_client_from_config(config_file=str(cluster.master.kubeconfig)))
    listing = api.list_namespaced_endpoint_slice(
        NS, label_selector="kubernetes.io/service-name=sliced")
    [eps] = listing.items
    assert eps.address_type == "IPv4"
    assert eps.ports[0].port == 8080
    assert {e.target_ref.name for e in eps.endpoints} >= {"sliced-unready"}
    assert eps.metadata.owner_references[0].uid == sliced["metadata"]["uid"]


def test_deleting_the_service_removes_its_slices(cluster: Cluster, sliced: Obj) -> None:
    wait_for(lambda: slices_of(cluster, "sliced"), what="the slices of sliced")
    r = cluster.http.delete(f"/api/v1/namespaces/{NS}/services/sliced")
    assert r.status_code == 200, r.text
    wait_for(lambda: slices_of(cluster, "sliced") == [], timeout=30.0,
             what="the garbage collector deleting the slices with their Service")
    for path in (f"/apis/apps/v1/namespaces/{NS}/deployments/sliced",
                 f"/api/v1/namespaces/{NS}/pods/sliced-unready"):
        cluster.http.delete(path)


def test_user_endpoints_are_mirrored(cluster: Cluster) -> None:
    """A Service without a selector, its Endpoints written by hand: the mirroring
    controller makes the slice, follows the Endpoints, and drops it with them."""
    cluster.create(f"/api/v1/namespaces/{NS}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "outside"},
        "spec": {"ports": [{"port": 5432}]}})
    endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                 "metadata": {"name": "outside", "labels": {"team": "data"}},
                 "subsets": [{"addresses": [{"ip": "127.0.9.1"}],
                              "notReadyAddresses": [{"ip": "127.0.9.2"}],
                              "ports": [{"port": 5432}]}]}
    cluster.create(f"/api/v1/namespaces/{NS}/endpoints", endpoints)
    [eps] = wait_for(lambda: slices_of(cluster, "outside"), what="the mirrored slice")
    assert eps["metadata"]["labels"] == {
        "team": "data", "kubernetes.io/service-name": "outside",
        "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}
    assert eps["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
    assert [(e["addresses"], e["conditions"]) for e in eps["endpoints"]] == [
        (["127.0.9.1"], {"ready": True}), (["127.0.9.2"], {"ready": False})]
    assert eps["ports"] == [{"name": "", "port": 5432, "protocol": "TCP"}]
    endpoints["subsets"][0]["addresses"] = [{"ip": "127.0.9.3"}]
    r = cluster.http.put(f"/api/v1/namespaces/{NS}/endpoints/outside", json=endpoints)
    assert r.status_code == 200, r.text
    wait_for(lambda: [e["addresses"][0] for s in slices_of(cluster, "outside")
                      for e in s["endpoints"]] == ["127.0.9.3", "127.0.9.2"],
             what="the slice following the Endpoints")
    assert cluster.http.delete(f"/api/v1/namespaces/{NS}/endpoints/outside").status_code == 200
    wait_for(lambda: slices_of(cluster, "outside") == [], what="the mirrored slice gone")
    cluster.http.delete(f"/api/v1/namespaces/{NS}/services/outside")
    # The masters' own Endpoints (default/kubernetes) are mirrored the same way.
    [api] = wait_for(lambda: slices_of(cluster, "kubernetes"), what="the kubernetes slice")
    master_ep = cluster.get(f"/api/v1/namespaces/{NS}/endpoints/kubernetes")
    assert [e["addresses"][0] for e in api["endpoints"]] == [
        a["ip"] for a in master_ep["subsets"][0]["addresses"]]
    assert api["ports"][0]["name"] == "https"


def test_a_refused_slice_is_an_event_on_the_service(cluster: Cluster) -> None:
    """Quota allows no EndpointSlice in the namespace: the controller says why on
    the Service, as Kubernetes' does (FailedToUpdateEndpointSlices)."""
    cluster.create("/api/v1/namespaces", manifests.namespace("noslices"))
    cluster.create("/api/v1/namespaces/noslices/resourcequotas", {
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "none"},
        "spec": {"hard": {"count/endpointslices.discovery.k8s.io": "0"}}})
    cluster.create("/api/v1/namespaces/noslices/services",
                   manifests.service("quiet", {"app": "quiet"}))

    def refusal() -> str:
        events = cluster.get("/api/v1/namespaces/noslices/events")["items"]
        return next((e["message"] for e in events
                     if e.get("reason") == "FailedToUpdateEndpointSlices"
                     and e["involvedObject"]["name"] == "quiet"), "")

    message = wait_for(refusal, what="a FailedToUpdateEndpointSlices event")
    assert message.startswith("Error updating Endpoint Slices for Service noslices/quiet:")
    assert "exceeded quota" in message
    cluster.http.delete("/api/v1/namespaces/noslices")


def test_pods_on_host_ports_of_their_own_get_a_slice_each(cluster: Cluster,
                                                          backends: Obj) -> None:
    """The web pods each listen on the host port their agent allocated: a slice's
    ports hold for all its endpoints, so each pod is in a slice of its own."""
    def published() -> dict[str, tuple[str, int]]:
        return {e["targetRef"]["name"]: (e["addresses"][0], s["ports"][0]["port"])
                for s in slices_of(cluster, "web") for e in s["endpoints"]
                if e["conditions"]["ready"]}

    wanted = {name: host_port(cluster.pod(name)) for name in REPLICAS}
    wait_for(lambda: published() == wanted, what="a slice per web pod at its host port")
    assert len(slices_of(cluster, "web")) == len(REPLICAS)
