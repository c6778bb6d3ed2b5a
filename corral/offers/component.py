"""The offer allocator as a master component: the Mesos endpoint on its own port,
and the leader-elected master behind it.

    corral master --mesos-listen HOST:PORT
      ├─ HttpServer(MesosEndpoint)        every master serves; standbys answer 307/503
      └─ run_elected(Lease kube-system/corral-mesos-master,
                     identity "<host>_mesos_<endpoint URL>")   the URL is how a
           term: MesosMaster(fenced client)                     standby finds the leader
                 load frameworks, tasks, nodes from the store
                 endpoint.master = it ─► serve calls, offer cycle, task updates
                 lost the Lease ─► streams closed (frameworks re-subscribe to the next)
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from corral.client.clock import RealClock
from corral.client.http import Client
from corral.client.leaderelection import LeaseTiming, run_elected
from corral.objects import Obj
from corral.offers.agentlink import AgentTLS
from corral.offers.auth import FrameworkAuth, ensure_credentials
from corral.offers.capacity import Capacity
from corral.offers.endpoint import LEASE_NAME, MAX_BODY, MesosEndpoint, identity_for
from corral.offers.httpserver import HttpServer
from corral.offers.master import MesosMaster
from corral.offers.offercycle import OfferCycle
from corral.offers.protocol import HEARTBEAT_SECONDS, VERSION

log = logging.getLogger("corral.offers")


@dataclass(frozen=True)
class MesosConfig:
    host: str = "127.0.0.1"
    port: int = 5050
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    weights: dict[str, float] = field(default_factory=dict)  # role → DRF weight
    # Mesos' --authenticate_frameworks and --credentials (auth.py): on unless told
    # otherwise; the file is made with a principal of its own on first start.
    authenticate: bool = True
    credentials: Path | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def master_info(cfg: MesosConfig) -> Obj:
    """MasterInfo as SUBSCRIBED and /master/state carry it (ip: IPv4 as a uint32
    in network order, as Mesos encodes it)."""
    try:
        address = ipaddress.ip_address(cfg.host)
        ip = struct.unpack("<I", address.packed)[0] if address.version == 4 else 0
    except ValueError:
        ip = 0
    netloc = urlsplit(cfg.url).netloc
    return {"id": str(uuid.uuid4()), "ip": ip, "port": cfg.port, "pid": f"master@{netloc}",
            "hostname": cfg.host, "version": VERSION,
            "address": {"hostname": cfg.host, "ip": cfg.host, "port": cfg.port}}


async def serve(endpoint: MesosEndpoint, cfg: MesosConfig, stop: asyncio.Event) -> None:
    server = HttpServer(endpoint.handle, max_body=MAX_BODY)
    await server.start(cfg.host, cfg.port)
    log.info("mesos scheduler api listening url=%s", cfg.url)
    try:
        await stop.wait()
    finally:
        await server.stop()


async def run_in_master(client: Client, stop: asyncio.Event, timing: LeaseTiming,
                        cfg: MesosConfig, agent_tls: AgentTLS | None = None) -> None:
    """Serve the endpoint and, while holding the Lease, be the Mesos master.
    ``client`` is the component's own identity (system:corral-mesos-master);
    ``agent_tls`` how the master process calls agents (None: never directly)."""
    if cfg.authenticate and cfg.credentials is not None:
        ensure_credentials(cfg.credentials)
    auth = FrameworkAuth(client, cfg.credentials, enabled=cfg.authenticate)
    endpoint = MesosEndpoint(client, cfg.url, auth)
    info = master_info(cfg)

    async def lead(fenced: Client) -> None:
        master = MesosMaster(fenced, RealClock(), info, heartbeat_seconds=cfg.heartbeat_seconds)
        capacity = Capacity(fenced)
        cycle = OfferCycle(master, capacity, auth, weights=cfg.weights, agent_tls=agent_tls)
        endpoint.master = master
        try:
            await cycle.ensure_namespace()
            await capacity.start()
            await cycle.tasks.start()
            await master.load()
            await asyncio.gather(master.run(stop), cycle.run(stop))
        finally:
            endpoint.master = None
            await cycle.tasks.stop()
            await capacity.stop()
            await cycle.reservations.close()

    identity = identity_for(cfg.url, socket.gethostname())
    await asyncio.gather(serve(endpoint, cfg, stop),
                         run_elected(client, stop, LEASE_NAME, identity, lead, timing))
