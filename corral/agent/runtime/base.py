"""The node-local runtime seam: what the agent asks for and what it gets back.

The agent's pod workers speak only this vocabulary. ``ProcessRuntime`` (process.py)
is the implementation that runs each container instance as an OS process under a
per-container supervisor (the shim); a test may put any other ``Runtime`` behind
the seam.

A container *instance* is one run of one container of one pod: a restart is a new
instance with the next ``attempt`` number, so the last terminated instance (for
``kubectl logs --previous``) stays addressable until the agent removes it.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Protocol

# Exit code Kubernetes reports for a container that never ran (StartError).
START_ERROR_EXIT_CODE = 128


def container_id(pod_uid: str, container_name: str, attempt: int) -> str:
    """The instance id: unique per pod, container and attempt; safe as a file name.

    Pod uids and container names (DNS labels) contain no "_", so it is unambiguous."""
    return f"{pod_uid}_{container_name}_{attempt}"


@dataclass(frozen=True)
class RunAs:
    """Whom a container's processes run as: set (setgroups, setgid, setuid) between
    fork and exec, after the chdir into the working directory (so the working
    directory is usable even where the user could not walk the path to it)."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def setpriv(self) -> list[str]:
        """The prefix that runs a command as this user, for the agent's own spawns
        (exec, probes): its event loop (uvloop) takes no user/group arguments, and a
        preexec_fn is unsafe in a threaded process. util-linux's setpriv changes
        user; a shell then looks the command up in $PATH as that user (setpriv's
        own lookup still has root's reach, and would find what the user cannot run)."""
        groups = ["--groups", ",".join(map(str, self.groups))] if self.groups \
            else ["--clear-groups"]
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", *groups, "--",
                "/bin/sh", "-c", 'exec "$@"', "sh"]

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form (dataclasses.asdict's, without its deep copy)."""
        return {"uid": self.uid, "gid": self.gid, "groups": self.groups}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunAs:
        """From its JSON form (to_dict)."""
        return cls(int(data["uid"]), int(data["gid"]),
                   tuple(int(g) for g in data.get("groups") or ()))

    def describe(self) -> str:
        groups = ",".join(str(g) for g in self.groups)
        return f"uid={self.uid} gid={self.gid}" + (f" groups={groups}" if groups else "")


@dataclass(frozen=True)
class ContainerLaunch:
    """Everything needed to start one container instance (already resolved by the
    agent: command+args joined, env with downward API and ports filled in)."""

    pod_uid: str
    container_name: str
    command: list[str]
    env: dict[str, str]
    working_dir: str
    log_dir: str  # this container's log directory; instances write <attempt>.log
    attempt: int = 0
    cpu_request_millis: int | None = None
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None
    pids_limit: int | None = None  # this container's own (the rlimits fallback's, too)
    # The pod's: its group (the parent of its containers' groups) holds it.
    pod_pids_limit: int | None = None
    log_max_bytes: int = 10 * 1024 * 1024
    log_max_files: int = 3
    # Grace used when the shim itself is told to stop (SIGTERM to the shim), e.g.
    # by an operator; the agent passes its own grace to ProcessRuntime.stop().
    stop_grace_seconds: float = 30.0
    # Interactive containers (kubectl attach / run -it): see runtime/stdio.py.
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    # The user the command runs as (pod_security.py resolves it); None: the
    # shim's own (the agent's) user, untouched.
    run_as: RunAs | None = None
    # (directory on the node, path the container sees it at), read-only, in a
    # mount namespace of the container's own (runtime/mounts.py): the
    # ServiceAccount token at /var/run/secrets/kubernetes.io/serviceaccount.
    binds: tuple[tuple[str, str], ...] = ()

    @property
    def container_id(self) -> str:
        return container_id(self.pod_uid, self.container_name, self.attempt)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> ContainerLaunch:
        data = json.loads(text)
        run_as = data.pop("run_as", None)
        if run_as is not None:
            run_as = RunAs.from_dict(run_as)
        data["binds"] = tuple((str(s), str(t)) for s, t in data.get("binds") or [])
        return cls(**data, run_as=run_as)


class RunPhase(str, Enum):
    """Where a container instance is in its life (no way back from EXITED)."""

    # The shim has started the command and recorded its pid.
    RUNNING = "running"
    # The command ended (exit code or signal recorded) or never started (StartError).
    EXITED = "exited"


@dataclass
class ContainerState:
    """What the runtime knows of one instance; times are Unix epoch seconds."""

    container_id: str
    pod_uid: str
    container_name: str
    attempt: int
    phase: RunPhase
    pid: int | None = None
    pgid: int | None = None
    shim_pid: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    # Kubernetes' terminated reasons: Completed, Error, OOMKilled, StartError.
    reason: str | None = None
    message: str | None = None

    @property
    def running(self) -> bool:
        return self.phase is RunPhase.RUNNING

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = self.phase.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerState:
        return cls(**{**data, "phase": RunPhase(data["phase"])})


@dataclass(frozen=True)
class ResourceUsage:
    """Cumulative CPU time and current memory of one instance, for `top`."""

    cpu_usage_ns: int
    memory_bytes: int
    timestamp: float  # Unix epoch seconds when read


@dataclass(frozen=True)
class ExecEnvironment:
    """What a command run inside a container (``kubectl exec``) inherits from it:
    its env, its working directory, and its cgroup (the ``cgroup.procs`` files to
    join, none where the node isolates by rlimits)."""

    env: dict[str, str]
    working_dir: str
    cgroup_procs: tuple[str, ...] = ()
    run_as: RunAs | None = None  # the container's user: exec'd commands run as it too
    # The container's own mount namespace (/proc/<pid>/ns/mnt) when it has bind
    # mounts (runtime/mounts.py): exec'd commands enter it and see what it sees.
    mount_ns: str = ""


@dataclass(frozen=True)
class AttachTarget:
    """Where ``kubectl attach`` reaches an instance's stdio (runtime/stdio.py):
    the FIFO its stdin is read from and the terminal it writes to, when it has them."""

    stdin_fifo: str | None = None
    tty: str | None = None
    stdin_once: bool = False


@dataclass(frozen=True)
class Isolation:
    """Which isolation mechanism is in force on this node, and why; the agent
    reports it in Node status so nobody believes in limits that do not exist."""

    mechanism: str  # "cgroup-v2", "cgroup-v1" or "rlimits"
    reason: str
    enforced: tuple[str, ...] = field(default=())  # e.g. ("memory", "cpu", "pids")


class Runtime(Protocol):
    """Runs container instances on this node. No method raises for a container's
    own failure: a command that cannot start comes back as an EXITED state with
    reason StartError. Unknown ids raise KeyError."""

    def isolation(self) -> Isolation: ...

    async def start(self, launch: ContainerLaunch) -> ContainerState:
        """Start the instance, or return the state of the one already started
        under the same id (never a second copy)."""
        ...

    async def stop(self, container_id: str, grace_seconds: float) -> ContainerState:
        """SIGTERM the instance's process group, SIGKILL after the grace period,
        and return its final (EXITED) state."""
        ...

    async def status(self, container_id: str) -> ContainerState: ...

    def exited(self, container_id: str) -> bool:
        """Synchronously (a log follower asks between reads): whether the instance
        has exited, or is not known here (removed, never started)."""
        ...

    async def list(self) -> builtins.list[ContainerState]:
        """Every instance with state on this node, running or exited."""
        ...

    async def adopt(self) -> builtins.list[ContainerState]:
        """After an agent restart: re-attach to instances whose supervisors still
        run, and settle those whose supervisors died; returns every instance."""
        ...

    async def usage(self, container_id: str) -> ResourceUsage | None: ...

    def exec_environment(self, container_id: str) -> ExecEnvironment:
        """Where a command run in the instance runs (it need not be running)."""
        ...

    def attach_target(self, container_id: str) -> AttachTarget: ...

    def close_stdin(self, container_id: str) -> None:
        """stdinOnce: the instance's stdin ends (its first attach has)."""
        ...

    async def remove(self, container_id: str) -> None:
        """Forget an EXITED instance (its state and cgroup; its logs stay)."""
        ...

    async def remove_pod(self, pod_uid: str) -> bool:
        """Forget what a pod has beside its instances (its cgroup), once its
        instances are removed; False while that cannot go yet (try again)."""
        ...

    def pod_uids(self) -> builtins.list[str]:
        """Pods that have such resources here (after a restart: what to adopt
        or, for pods no longer here, remove)."""
        ...
