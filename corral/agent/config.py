"""What one node agent is told: who it is, where the master is, what it offers.

Every field has the default ``corral agent`` uses; the CLI (corral/cli/agent.py)
only parses flags into an AgentConfig, and tests build one directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from corral.agent.runtime.cgroups import node_parent
from corral.proxy.hostlock import DEFAULT_RUN_DIR

# The unprivileged user scripts/install.sh creates for pods that name none.
DEFAULT_POD_USER = "corral-pod"


@dataclass(frozen=True)
class Reservation:
    """What the node keeps for itself (kubelet's system-reserved + kube-reserved):
    allocatable = capacity − reservation."""

    cpu_millis: int = 0
    memory_bytes: int = 0
    ephemeral_storage_bytes: int = 0


@dataclass
class AgentConfig:
    name: str
    servers: list[str]  # the master's URLs; the first that answers is used
    token: str | None = None
    ca_pem: bytes | None = None
    # TLS bootstrapping (bootstrap.py): a bootstrap token that asks for the node's
    # client certificate, then the certificate (and key) files it uses.
    bootstrap_token: str | None = None
    client_cert: tuple[str, str] | None = None
    node_ip: str = "127.0.0.1"
    port: int = 0  # the agent's own HTTP server (logs, stats); 0 = any free port
    state_dir: Path = Path(".corral-agent")
    cpus: float | None = None  # advertise this many CPUs instead of the machine's
    memory_bytes: int | None = None
    max_pods: int = 110  # Kubernetes' default --max-pods
    # Processes each container of a pod may have (the kubelet's podPidsLimit; -1:
    # none). One pod forking without end must not use up the host's pids.
    pod_pids_limit: int = 1024
    # Whom pods run as when their securityContext names no runAsUser (run_as.py):
    # a user name, UID or UID:GID on this node; None or "": the agent's own user.
    pod_user: str | None = DEFAULT_POD_USER
    reservation: Reservation = field(default_factory=Reservation)
    heartbeat_seconds: float = 1.0  # Lease renewal period
    lease_duration_seconds: int = 40  # what the Lease promises (kubelet's default)
    # Each Lease renewal or status post gives up after this long, so a master that
    # accepts connections but never answers (stopped, wedged) costs one short wait
    # before the client moves to the next master, well inside the node controller's
    # grace period. The kubelet's heartbeat client has its own short timeout too.
    heartbeat_timeout_seconds: float = 2.0
    status_interval_seconds: float = 10.0  # Node status re-posted at least this often
    # CrashLoopBackOff: Kubernetes' 10 s doubling to 5 min; tests shorten it.
    backoff_initial_seconds: float = 10.0
    backoff_cap_seconds: float = 300.0
    # Stop every pod when the agent exits (corral up); by default pods outlive it.
    stop_pods_on_exit: bool = False
    allow_cgroups: bool = True
    # The host's parent group; each agent's groups go in one of its own below
    # (node_cgroup_parent), so agents sharing a host (corral up --agents N)
    # sweep only their own pods' groups.
    cgroup_parent: str = "corral"
    # The node's DNS server for pods: "" = 127.0.2.N for node IP 127.x.y.N; a port
    # that cannot be bound (taken, no privilege) falls back to a free one.
    dns_address: str = ""
    dns_port: int = 53
    # Service data plane: "nftables", "userspace", or None for nftables where nft
    # works and the agent is root (corral/proxy/mode.py).
    proxy_mode: str | None = None
    # nftables mode: steer TCP clusterIP connects at connect() with an eBPF cgroup
    # hook where the kernel allows it (corral/proxy/socklb.py); False: nft only.
    socket_lb: bool = True
    # Where agents sharing a host coordinate who writes the nftables table.
    proxy_run_dir: Path = DEFAULT_RUN_DIR

    @property
    def node_cgroup_parent(self) -> str:
        return node_parent(self.cgroup_parent, self.name, self.state_dir)

    @property
    def runtime_dir(self) -> Path:
        return self.state_dir / "runtime"

    @property
    def pods_dir(self) -> Path:
        return self.state_dir / "pods"

    @property
    def sandboxes_dir(self) -> Path:
        """Framework tasks' sandboxes (sandbox.py)."""
        return self.state_dir / "sandboxes"
