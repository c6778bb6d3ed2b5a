"""The node agent: every part composed, and every task owned by ``Agent``.

    start: pick a master ─► runtime (adopts the shims' state) ─► Services (proxy,
           DNS; waits briefly for the first list) ─► event recorder (the kubelet's
           Events about containers, pod_events.py) ─► own server's port bound (with
           --port 0 the port it had before, when free) ─► own HTTPS server, when the
           certificate on disk will do (a restart: reachable before anything is
           adopted) ─► pods (informer + workers; adopted instances re-attached)
           ─► allocs (informer + workers; running executors re-adopted), and a
              watch on the Mesos master's Lease (master_terms.py: whose launches to take)
           ─► (retried until the master answers) serving certificate
              (serving_cert.py) and own HTTPS server, if not serving yet
              ─► register Node ─► heartbeat
           ─► certificate rotations (cert_rotation.py): the client certificate's
              (when bootstrapped) and the serving certificate's
    stop:  rotations ─► heartbeat ─► pods, allocs (workers stop supervising; containers and
           executors keep running unless stop_pods_on_exit) ─► Services ─► events
           ─► server ─► client

The master may be down at start or at any time after: nothing on the node waits
for it except the writes, which are retried.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

import httpx

from corral.agent.alloc_worker import AllocContext
from corral.agent.allocs import AllocManager
from corral.agent.bootstrap import client_cert_path, ensure_client_cert, renew_client_cert
from corral.agent.cert_rotation import Rotation, load_certificate
from corral.agent.config import AgentConfig
from corral.agent.csr import CertificateRefused
from corral.agent.framework_feed import TaskFeed
from corral.agent.heartbeat import Heartbeat
from corral.agent.metrics import AGENT_METRICS
from corral.agent.node import allocatable, machine_capacity, node_status, register_node
from corral.agent.pod_events import COMPONENT as KUBELET
from corral.agent.pod_worker import NodeContext
from corral.agent.pods import PodManager
from corral.agent.run_as import node_users
from corral.agent.runtime.backoff import CrashLoopBackOff
from corral.agent.runtime.executors import ExecutorRuntime
from corral.agent.runtime.ports import PortAllocator
from corral.agent.runtime.process import ProcessRuntime
from corral.agent.sandbox import secure_state_dir
from corral.agent.server import AgentServer
from corral.agent.services import NodeServices
from corral.agent.serving_cert import (
    ServingFiles,
    ensure_serving_cert,
    renew_serving_cert,
    serving_cert_on_disk,
)
from corral.agent.stats import StatsCollector
from corral.agent.volumes import VOLUMES_DIR
from corral.aiotasks import cancel_and_wait
from corral.api.errors import APIError
from corral.client.backoff import Backoff
from corral.client.events import EventRecorder
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj

log = logging.getLogger(__name__)

CLIENT_ATTEMPTS = 3  # a write must not hold a pod worker for long while the master is away


async def order_servers(cfg: AgentConfig) -> list[str]:
    """The master URLs, one answering /readyz first (the client fails over from
    there); as given if none answers yet."""
    verify: ssl.SSLContext | bool = (ssl.create_default_context(cadata=cfg.ca_pem.decode())
                                     if cfg.ca_pem else True)
    if len(cfg.servers) == 1:
        return list(cfg.servers)
    async with httpx.AsyncClient(verify=verify, timeout=2.0) as http:
        for i, url in enumerate(cfg.servers):
            try:
                if (await http.get(f"{url.rstrip('/')}/readyz")).status_code == 200:
                    return cfg.servers[i:] + cfg.servers[:i]
            except httpx.HTTPError:
                continue
    return list(cfg.servers)


class Agent:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.runtime = ProcessRuntime(cfg.runtime_dir, cfg.node_cgroup_parent,
                                      allow_cgroups=cfg.allow_cgroups)
        self.users = node_users(cfg.pod_user)  # an unknown --pod-user fails here, loudly
        self.registered = asyncio.Event()
        self.client: Client | None = None
        self.heartbeat_client: Client | None = None
        self.pods: PodManager | None = None
        self.allocs: AllocManager | None = None
        self.server: AgentServer | None = None
        self.heartbeat: Heartbeat | None = None
        self.services: NodeServices | None = None
        self.events: EventRecorder | None = None
        self._register_task: asyncio.Task[None] | None = None
        self.rotations: list[Rotation] = []

    def _weigh_cgroups(self) -> None:
        """The node's pods and Allocs weigh their allocatable CPU against the host's
        own processes (cgroups.CgroupSystem.weigh)."""
        cgroups = self.runtime.cgroups
        if cgroups is None:
            return
        cpu_millis = allocatable(machine_capacity(self.cfg), self.cfg).cpu_millis
        try:
            cgroups.weigh(cpu_millis)
        except OSError as exc:
            log.warning("could not weigh the node's cgroups for %dm CPU: %s", cpu_millis, exc)

    async def start(self) -> None:
        cfg = self.cfg
        secure_state_dir(cfg.state_dir, cfg.pods_dir, cfg.state_dir / VOLUMES_DIR,
                         cfg.sandboxes_dir)
        self._weigh_cgroups()
        await ensure_client_cert(cfg)  # TLS bootstrap, or renewal, when it has a certificate
        servers = await order_servers(cfg)
        self.client = client = self._client(servers)
        self.heartbeat_client = self._client(servers, timeout=cfg.heartbeat_timeout_seconds)
        # Services first: a pod started now sees the Services that exist (env vars).
        self.services = NodeServices(client, cfg)
        await self.services.start()
        await self.services.wait_synced()
        self.events = EventRecorder(client, instance=cfg.name, component=KUBELET, host=cfg.name)
        self.events.start()
        ctx = NodeContext(cfg, client, self.runtime, PortAllocator(cfg.node_ip),
                          CrashLoopBackOff(initial=cfg.backoff_initial_seconds,
                                           cap=cfg.backoff_cap_seconds),
                          self._get_object, self.services.pod_env, self.events, self.users)
        self.pods = PodManager(ctx)
        self.server = AgentServer(cfg, self.pods, StatsCollector(self.pods, cfg.name))
        self.allocs = AllocManager(AllocContext(
            cfg, client, ExecutorRuntime(cfg.runtime_dir, self.runtime.cgroups,
                                         cfg.sandboxes_dir, self.runtime.launcher),
            self.users, TaskFeed(cfg.name)))
        self.server.allocs = self.allocs
        self.server.terms.watch(client)
        ready, files = serving_cert_on_disk(cfg)
        if ready:  # a restart: reachable before the workers report what they adopt
            await self._serve(files)
        await self.pods.start()
        await self.allocs.start()
        port = self.server.port
        self.heartbeat = Heartbeat(
            self.heartbeat_client, cfg, lambda: node_status(cfg, self.runtime.isolation(), port),
            register=lambda: register_node(client, cfg, self.runtime.isolation()))
        pods, heartbeat = self.pods, self.heartbeat
        AGENT_METRICS.bind(lambda: len(pods.workers), heartbeat.age)
        self._register_task = asyncio.create_task(self._register())
        if cfg.client_cert is not None:  # the node's own certificate: keep it renewed
            self._rotate(Rotation("client", lambda: load_certificate(client_cert_path(cfg)),
                                  self._renew_client_cert))
        log.info("agent started node=%s master=%s isolation=%s dns=%s", cfg.name,
                 client.current_server,
                 self.runtime.isolation().mechanism, self.services.dns_address)

    def _client(self, servers: list[str], timeout: float = 30.0) -> Client:
        return Client(servers, self.cfg.token, self.cfg.ca_pem, attempts=CLIENT_ATTEMPTS,
                      timeout=timeout, user_agent=f"corral-agent/{self.cfg.name}",
                      client_cert=self.cfg.client_cert, light=True)

    def _rotate(self, rotation: Rotation) -> None:
        self.rotations.append(rotation)
        rotation.start()

    async def _renew_client_cert(self) -> None:
        await renew_client_cert(self.cfg)
        assert self.cfg.client_cert is not None
        for client in (self.client, self.heartbeat_client):
            if client is not None:
                client.use_client_cert(self.cfg.client_cert)

    def _rotate_serving(self, files: ServingFiles) -> None:
        assert self.client is not None and self.server is not None
        client, server = self.client, self.server

        async def renew() -> None:
            await renew_serving_cert(client, self.cfg, files)
            server.reload_tls()

        self._rotate(Rotation("serving", lambda: load_certificate(files.cert), renew))

    async def _get_object(self, kind: str, namespace: str, name: str) -> Obj:
        assert self.client is not None
        return await self.client.get(kind, name, namespace)

    async def _serve(self, files: ServingFiles | None) -> None:
        assert self.server is not None
        await self.server.start(files)
        if files is not None:
            self._rotate_serving(files)

    async def _register(self) -> None:
        assert self.client is not None and self.heartbeat is not None
        assert self.server is not None
        backoff = Backoff(initial=0.2, maximum=10.0)
        while True:
            try:
                if not self.server.started:
                    await self._serve(await ensure_serving_cert(self.client, self.cfg))
                await register_node(self.client, self.cfg, self.runtime.isolation())
                await self.heartbeat.post_status()
                break
            except (ServerUnreachable, APIError, CertificateRefused) as err:
                delay = backoff.next_delay()
                log.warning("node registration failed node=%s error=%s retry_in=%.1fs",
                            self.cfg.name, err, delay)
                await asyncio.sleep(delay)
        log.info("node registered node=%s", self.cfg.name)
        self.registered.set()
        self.heartbeat.start()

    async def stop(self) -> None:
        for rotation in self.rotations:
            await rotation.stop()
        if self._register_task is not None:
            await cancel_and_wait(self._register_task)
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        if self.pods is not None:
            await self.pods.stop(stop_pods=self.cfg.stop_pods_on_exit)
        if self.allocs is not None:
            await self.allocs.stop(stop_allocs=self.cfg.stop_pods_on_exit)
        if self.cfg.stop_pods_on_exit:
            self.runtime.remove_parent()
        if self.services is not None:
            await self.services.stop()
        if self.events is not None:
            await self.events.stop()
        if self.server is not None:
            await self.server.terms.stop()
            await self.server.stop()
        for client in (self.client, self.heartbeat_client):
            if client is not None:
                await client.aclose()
        log.info("agent stopped node=%s", self.cfg.name)


async def run_agent(cfg: AgentConfig, stop: asyncio.Event) -> None:
    """Run an agent until ``stop`` is set."""
    agent = Agent(cfg)
    await agent.start()
    try:
        await stop.wait()
    finally:
        await agent.stop()
