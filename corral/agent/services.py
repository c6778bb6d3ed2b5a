"""The node's side of Services: kube-proxy and the cluster DNS, fed from the API.

    Informer(Services) ─┐  any change marks the table dirty; one sync loop
    Informer(Endpoints) ┴► rebuilds what the data plane is told (once both listed):
                           DnsServer.update(records)      <svc>.<ns>[.svc.cluster.local]
                           data plane .apply(ports, backends), by --proxy-mode:
                             nftables  NftProxy: one table per host network namespace,
                                       written by one agent of the host (the kernel forwards),
                                       and each agent's SocketLB (--socket-lb): TCP clusterIP
                                       connects rewritten to an endpoint by an eBPF hook
                             userspace ProxyTable: listeners on clusterIP:port
                                       (SO_REUSEPORT: every agent on a host binds it) and
                                       node_ip:nodePort (NodePort and LoadBalancer Services)
    pod_env(pod) ──► {SVC}_SERVICE_HOST/_PORT… of the pod's namespace (Services that
                     exist when a container starts), CORRAL_DNS=ip:port, and
                     CORRAL_RESOLV_CONF=<pod dir>/resolv.conf

The DNS server listens on a loopback address of its own per node (127.0.2.N for
node IP 127.x.y.N) on port 53, or on a free port when 53 cannot be had (another
agent on the same address, or no privilege); a resolv.conf cannot name a port,
so pods are told the port in CORRAL_DNS.

Proxy behaviour per Service: ``sessionAffinity: ClientIP`` keeps a client on one
backend; the annotation ``corral.dev/proxy-algorithm: least-connections``
replaces round-robin.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from pathlib import Path
from typing import Protocol

from corral.agent.config import AgentConfig
from corral.aiotasks import cancel_and_wait
from corral.client.http import Client
from corral.client.informer import Informer
from corral.objects import Obj, meta, name_of, namespace_of, uid_of
from corral.proxy.dns import DnsServer, upstreams_from_resolv_conf
from corral.proxy.env import service_env
from corral.proxy.mode import ProxyMode, choose, table_name
from corral.proxy.model import (
    Algorithm,
    Backend,
    ClientIPAffinity,
    ServiceDnsRecord,
    ServicePortKey,
    ServiceProxySpec,
)
from corral.proxy.nftables import NftProxy
from corral.proxy.resolvconf import resolv_conf
from corral.proxy.socklb import SocketLB, SocketLBError
from corral.proxy.table import ProxyTable

log = logging.getLogger(__name__)

ALGORITHM_ANNOTATION = "corral.dev/proxy-algorithm"
DNS_ADDRESS_PREFIX = "127.0.2."
# How long a starting agent waits for the Services before pods start (their env
# vars); with the master away the pods' own informer cannot start any either.
SYNC_WAIT_SECONDS = 2.0
DNS_ENV = "CORRAL_DNS"
RESOLV_CONF_ENV = "CORRAL_RESOLV_CONF"


# ---- Kubernetes objects → the proxy's model ---------------------------------------

def _algorithm(svc: Obj) -> Algorithm:
    asked = (meta(svc).get("annotations") or {}).get(ALGORITHM_ANNOTATION, "")
    try:
        return Algorithm(asked)
    except ValueError:
        return Algorithm.ROUND_ROBIN


def _affinity(spec: Obj) -> ClientIPAffinity | None:
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    timeout = config.get("timeoutSeconds")
    return ClientIPAffinity(float(timeout)) if timeout else ClientIPAffinity()


def service_ports(svc: Obj) -> dict[ServicePortKey, ServiceProxySpec]:
    """One entry per port of the Service, in spec.ports order (env vars need it)."""
    spec = svc.get("spec") or {}
    cluster_ip = spec.get("clusterIP") if spec.get("type") != "ExternalName" else None
    affinity, algorithm = _affinity(spec), _algorithm(svc)
    ports: dict[ServicePortKey, ServiceProxySpec] = {}
    for port in spec.get("ports") or []:
        key = ServicePortKey(namespace_of(svc), name_of(svc),
                             str(port.get("name") or ""))
        ports[key] = ServiceProxySpec(
            cluster_ip=cluster_ip or None, port=int(port["port"]),
            protocol=str(port.get("protocol") or "TCP"),
            node_port=int(port["nodePort"]) if port.get("nodePort") else None,
            session_affinity=affinity, algorithm=algorithm)
    return ports


def endpoint_backends(endpoints: Obj | None,
                      publish_not_ready: bool = False) -> dict[ServicePortKey, list[Backend]]:
    """Where each Service port's traffic may go: every ready address × its subset's port."""
    if endpoints is None:
        return {}
    backends: dict[ServicePortKey, list[Backend]] = {}
    for subset in endpoints.get("subsets") or []:
        addresses = list(subset.get("addresses") or [])
        if publish_not_ready:
            addresses += subset.get("notReadyAddresses") or []
        for port in subset.get("ports") or []:
            if (port.get("protocol") or "TCP") != "TCP":
                continue
            key = ServicePortKey(namespace_of(endpoints), name_of(endpoints),
                                 str(port.get("name") or ""))
            backends.setdefault(key, []).extend(
                Backend(str(a["ip"]), int(port["port"])) for a in addresses)
    return backends


def ready_ips(endpoints: Obj | None) -> tuple[str, ...]:
    if endpoints is None:
        return ()
    ips = [str(a["ip"]) for s in endpoints.get("subsets") or [] for a in s.get("addresses") or []]
    return tuple(dict.fromkeys(ips))  # one pod per address, first seen first


def ready_hosts(endpoints: Obj | None) -> tuple[tuple[str, str], ...]:
    """(hostname, IP) of the ready addresses that carry a hostname."""
    if endpoints is None:
        return ()
    return tuple((str(a["hostname"]).lower(), str(a["ip"]))
                 for s in endpoints.get("subsets") or [] for a in s.get("addresses") or []
                 if a.get("hostname"))


def dns_record(svc: Obj, endpoints: Obj | None) -> ServiceDnsRecord | None:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return None  # a CNAME would be needed; not served
    return ServiceDnsRecord(namespace_of(svc), name_of(svc),
                            spec.get("clusterIP") or None, ready_ips(endpoints),
                            ready_hosts(endpoints))


def dns_host_for(node_ip: str) -> str:
    """127.0.2.N for a node whose address ends in N: its own, as every 127/8 is local."""
    try:
        last = ipaddress.IPv4Address(node_ip).packed[-1]
    except ValueError:
        last = 1
    return f"{DNS_ADDRESS_PREFIX}{last or 1}"


# ---- the node's Services ----------------------------------------------------------

class DataPlane(Protocol):
    """What forwards Service traffic: the user-space ProxyTable or the NftProxy."""

    async def apply(self, services: dict[ServicePortKey, ServiceProxySpec],
                    endpoints: dict[ServicePortKey, list[Backend]]) -> None: ...

    async def close(self) -> None: ...


def data_plane(cfg: AgentConfig) -> DataPlane:
    """The data plane --proxy-mode asks for (or the default), logged with the reason."""
    choice = choose(cfg.proxy_mode)
    if choice.mode is ProxyMode.USERSPACE:
        log.info("proxy mode=userspace reason=%r", choice.reason)
        return ProxyTable(cfg.node_ip)
    table = table_name(cfg.ca_pem, cfg.servers)
    log.info("proxy mode=nftables table=ip %s reason=%r", table, choice.reason)
    return NftProxy(table, cfg.node_ip, run_dir=cfg.proxy_run_dir,
                    socket_lb=open_socket_lb(cfg.socket_lb))


def open_socket_lb(asked: bool) -> SocketLB | None:
    """The connect() hook where the kernel lets it run; which data path, and why."""
    if not asked:
        log.info("proxy data path=nftables-only socket_lb=off reason='asked for "
                 "(--socket-lb=false)': every Service connection is DNATed by nftables")
        return None
    try:
        lb = SocketLB.open()
    except SocketLBError as err:
        log.warning("proxy data path=nftables-only socket_lb=off reason=%r: every "
                    "Service connection is DNATed by nftables", f"the fallback: {err}")
        return None
    log.info("proxy data path=socket-lb+nftables socket_lb=on cgroup=%s: connect() to a TCP "
             "clusterIP goes straight to an endpoint (eBPF at cgroup connect4); nftables "
             "DNATs NodePorts, sessionAffinity ClientIP and the rest", lb.cgroup)
    return lb


class NodeServices:
    """Proxy data plane, DNS and env vars of one node, kept current from the API."""

    def __init__(self, client: Client, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.table = data_plane(cfg)
        self.dns = DnsServer(cfg.dns_address or dns_host_for(cfg.node_ip), cfg.dns_port,
                             upstreams=_upstreams())
        self.services = Informer(client, "Service")
        self.endpoints = Informer(client, "Endpoints")
        for informer in (self.services, self.endpoints):
            informer.add_handler(on_add=self._changed, on_update=self._changed,
                                 on_delete=self._changed)
        self._dirty = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._start_dns()
        self.services.start()
        self.endpoints.start()
        self._loop = asyncio.create_task(self._sync_loop(), name="services-sync")

    async def wait_synced(self, timeout: float = SYNC_WAIT_SECONDS) -> bool:
        """Until both caches listed once (False on timeout: the master may be away)."""
        try:
            await asyncio.wait_for(asyncio.gather(self.services.wait_synced(),
                                                  self.endpoints.wait_synced()), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        if self._loop is not None:
            await cancel_and_wait(self._loop)
        await self.services.stop()
        await self.endpoints.stop()
        await self.table.close()
        await self.dns.close()

    @property
    def dns_address(self) -> str:
        return f"{self.dns.host}:{self.dns.port}"

    def pod_env(self, pod: Obj) -> dict[str, str]:
        """What a container of ``pod`` learns about Services; writes its resolv.conf."""
        spec = pod.get("spec") or {}
        namespace = namespace_of(pod) or "default"
        env: dict[str, str] = {}
        if spec.get("enableServiceLinks", True) is not False:
            ports: dict[ServicePortKey, ServiceProxySpec] = {}
            for svc in self.services.list():
                ports.update(service_ports(svc))
            env.update(service_env(ports, namespace))
        # Every pod learns where the API is, service links or not, as the kubelet
        # does: KUBERNETES_SERVICE_HOST/PORT are what in-cluster clients read.
        master = self.services.get("default", "kubernetes")
        if master is not None:
            env.update(service_env(service_ports(master), "default"))
        env[DNS_ENV] = self.dns_address
        path = self._write_resolv_conf(uid_of(pod), namespace)
        if path is not None:
            env[RESOLV_CONF_ENV] = str(path)
        return env

    def _write_resolv_conf(self, uid: str, namespace: str) -> Path | None:
        if not uid:
            return None
        path = self.cfg.pods_dir / uid / "resolv.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(resolv_conf(self.dns.host, namespace))
        return path

    # -- keeping the data plane current -----------------------------------------------

    def _changed(self, *_: Obj) -> None:
        self._dirty.set()

    async def _sync_loop(self) -> None:
        # A partial view (Services listed, Endpoints not yet) would take every
        # Service out of rotation; a restarted agent keeps the old rules until then.
        await asyncio.gather(self.services.wait_synced(), self.endpoints.wait_synced())
        self._dirty.set()  # reconcile once even when there is nothing (a table to empty)
        while True:
            await self._dirty.wait()
            self._dirty.clear()  # changes arriving during the sync mark it again
            try:
                await self.sync()
            except Exception:
                log.exception("service proxy sync failed")

    async def sync(self) -> None:
        ports: dict[ServicePortKey, ServiceProxySpec] = {}
        backends: dict[ServicePortKey, list[Backend]] = {}
        records: list[ServiceDnsRecord] = []
        for svc in self.services.list():
            spec = svc.get("spec") or {}
            endpoints = self.endpoints.get(meta(svc).get("namespace"), name_of(svc))
            mine = service_ports(svc)
            ports.update(mine)
            found = endpoint_backends(endpoints, bool(spec.get("publishNotReadyAddresses")))
            backends.update({key: found[key] for key in mine if key in found})
            record = dns_record(svc, endpoints)
            if record is not None:
                records.append(record)
        self.dns.update(records)
        await self.table.apply(ports, backends)

    async def _start_dns(self) -> None:
        try:
            await self.dns.start()
        except OSError as err:
            log.info("dns port taken or not permitted address=%s:%d error=%s; using a free "
                     "port", self.dns.host, self.dns.port, err)
            self.dns.port = 0
            await self.dns.start()


def _upstreams() -> list[tuple[str, int]]:
    """The host's resolvers for names outside the cluster (never another agent's DNS)."""
    try:
        found = upstreams_from_resolv_conf()
    except OSError:
        return []
    return [u for u in found if not u[0].startswith(DNS_ADDRESS_PREFIX)]
