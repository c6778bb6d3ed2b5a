"""What the pod worker knows of one container: its instances, probes, and waits.

The runtime is the truth about instances (ContainerState, on disk); a track
adds what lives only in the agent: which instance is current, the probes
running against it, the readiness they found, and why it waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from corral.agent.exits import ExitWatch
from corral.agent.pod_status import ContainerView
from corral.agent.runtime.base import ContainerState, RunAs
from corral.agent.runtime.probes import ContainerProbes, ProbeSpec, spec_from_probe
from corral.api.kinds.container import Probe
from corral.objects import Obj

log = logging.getLogger(__name__)



@dataclass
class ProbeContext:
    """How probes reach the container: the node IP, its ports and env."""

    host: str
    resolve_port: Callable[[int | str], int]
    env: dict[str, str]
    working_dir: str
    run_as: RunAs | None = None


class ContainerTrack:
    def __init__(self, spec: Obj, init: bool, restart_policy: str) -> None:
        self.spec = spec
        self.init = init
        self.restart_policy = restart_policy
        self.current: ContainerState | None = None
        self.previous: ContainerState | None = None  # the terminated one before current
        self.waiting: tuple[str, str] | None = None
        self.ready = False
        self.exit_seen: str | None = None  # the instance whose exit was accounted
        self.unhealthy: str | None = None  # a probe asked for a restart: why
        # (probe kind, its answer) for each probe failure the pod's events report
        self.on_probe_failure: Callable[[str, str], None] = lambda kind, message: None
        self._probes: ContainerProbes | None = None
        self._probes_for: str | None = None
        self._watch: ExitWatch | None = None

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.running

    @property
    def exited(self) -> bool:
        return self.current is not None and not self.current.running

    @property
    def succeeded(self) -> bool:
        return self.exited and self.current is not None and self.current.exit_code == 0

    @property
    def next_attempt(self) -> int:
        return self.current.attempt + 1 if self.current is not None else 0

    def will_restart(self) -> bool:
        """Whether the exited current instance is to be started again."""
        if not self.exited:
            return False
        if self.init:
            return not self.succeeded and self.restart_policy != "Never"
        if self.restart_policy == "Always":
            return True
        return self.restart_policy == "OnFailure" and not self.succeeded

    def adopt(self, instances: list[ContainerState]) -> None:
        """Take the runtime's instances of this container after an agent restart."""
        ordered = sorted(instances, key=lambda s: s.attempt)
        self.current = ordered[-1] if ordered else None
        older = [s for s in ordered[:-1] if not s.running]
        self.previous = older[-1] if older else None

    def started_instance(self, state: ContainerState) -> None:
        if self.current is not None and not self.current.running:
            self.previous = self.current
        self.current = state
        self.waiting = None
        self.ready = False
        self.unhealthy = None

    def view(self) -> ContainerView:
        return ContainerView(
            name=self.name, image=str(self.spec.get("image") or ""),
            restart_count=self.current.attempt if self.current else 0,
            current=self.current, last_terminated=self.previous, waiting=self.waiting,
            ready=self.ready, started=self._probes.started if self._probes else False,
            will_restart=self.will_restart())

    # -- watching the running instance --------------------------------------

    def watch_exit(self, on_exit: Callable[[], None]) -> None:
        cur = self.current
        if cur is None or not cur.running or cur.shim_pid is None:
            return
        if self._watch is None or self._watch.pid != cur.shim_pid:
            self.close_watch()
            self._watch = ExitWatch(cur.shim_pid, on_exit)

    def close_watch(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def ensure_probes(self, ctx: ProbeContext, kick: Callable[[], None]) -> None:
        """Probe the current instance once it runs (fresh probes per instance)."""
        cur = self.current
        if cur is None or not cur.running or cur.started_at is None:
            return
        if self._probes_for == cur.container_id:
            return
        cid = cur.container_id

        def on_ready(ok: bool, message: str) -> None:
            if self._probes_for == cid:
                if not ok:
                    self.on_probe_failure("readiness", message)
                self.ready = ok
                kick()

        def on_unhealthy(kind: str, message: str) -> None:
            if self._probes_for == cid and self.unhealthy is None:
                self.on_probe_failure(kind, message)
                self.unhealthy = f"Container {self.name} failed {kind} probe, will be " \
                                 f"restarted: {message}"
                kick()

        self._probes = ContainerProbes(self._spec("startupProbe", ctx),
                                       self._spec("livenessProbe", ctx),
                                       self._spec("readinessProbe", ctx), on_ready, on_unhealthy)
        self._probes_for = cid
        self._probes.start()

    def _spec(self, field: str, ctx: ProbeContext) -> ProbeSpec | None:
        raw = self.spec.get(field)
        if not raw or self.init:
            return None
        try:
            return spec_from_probe(Probe.model_validate(raw), ctx.host, ctx.resolve_port,
                                   ctx.env, ctx.working_dir, ctx.run_as)
        except ValueError as err:
            log.warning("probe ignored container=%s probe=%s error=%s", self.name, field, err)
            return None

    async def stop_probes(self) -> None:
        if self._probes is not None:
            await self._probes.stop()
        self._probes = None
        self._probes_for = None
        self.ready = False
