"""One worker per pod: compares the pod with what runs, and converges (level-triggered).

    kick (pod changed, an instance exited, a probe flipped, a back-off ran out)
      or every RESYNC_SECONDS
        ▼
    sync: deletionTimestamp? ──yes──► stop all (pod's grace) → DELETE grace 0,
        │                             uid precondition → clean up → done
        ▼ no
    refresh states from the runtime → stop instances a probe found unhealthy
    → account exits (back-off, probes off) → start what should run:
       init containers one by one, in order; then every container
       (restartPolicy decides restarts; CrashLoopBackOff delays them)
    → compute status → PUT pods/<name>/status if it changed

The master being unreachable never stops the loop: a failed status write is
retried on the next pass while containers keep being supervised.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from corral.agent.config import AgentConfig
from corral.agent.container_env import EnvBuilder, EnvError, ObjectGetter, PodEnv, command_line
from corral.agent.container_track import ContainerTrack, ProbeContext
from corral.agent.metrics import AGENT_METRICS
from corral.agent.pod_events import PodEvents
from corral.agent.pod_ports import PodPorts
from corral.agent.pod_status import (
    PodPhase,
    container_status,
    pod_conditions,
    pod_phase,
    stamp_conditions,
)
from corral.agent.run_as import NodeUsers, RunAsError, fs_group, node_users, run_as_for
from corral.agent.runtime.backoff import CrashLoopBackOff
from corral.agent.runtime.base import (
    ContainerLaunch,
    ContainerState,
    RunAs,
    Runtime,
    container_id,
)
from corral.agent.runtime.ports import PortAllocator, PortsExhausted
from corral.agent.sa_token import MOUNT_PATH, ProjectedToken, TokenError
from corral.agent.sandbox import own_dir, prepare_pod_dir, work_dir_owner
from corral.agent.volumes import VOLUMES_DIR, VolumeError, mount_claims
from corral.aiotasks import cancel_and_wait
from corral.api.errors import APIError, Conflict, NotFound
from corral.api.quantity import bytes_value, cpu_millis
from corral.client.events import EventRecorder
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj, meta, now_rfc3339, spec, status

log = logging.getLogger(__name__)

RESYNC_SECONDS = 2.0
CONFIG_RETRY_SECONDS = 2.0


@dataclass
class NodeContext:
    """What every pod worker on this node shares."""

    cfg: AgentConfig
    client: Client
    runtime: Runtime
    ports: PortAllocator
    backoff: CrashLoopBackOff
    get_object: ObjectGetter
    service_env: PodEnv  # {SVC}_SERVICE_* env of the Services a pod may see
    events: EventRecorder | None = None  # the kubelet's Events about containers
    # Whom containers run as when their securityContext names nobody (run_as.py).
    users: NodeUsers = field(default_factory=lambda: node_users(None))


def _rv(pod: Obj) -> int:
    """The store revision of a copy of the pod (events may lag our own writes)."""
    try:
        return int(meta(pod).get("resourceVersion") or 0)
    except ValueError:
        return 0


class PodWorker:
    def __init__(self, ctx: NodeContext, pod: Obj,
                 adopted: list[ContainerState] | None = None) -> None:
        self.ctx = ctx
        self.pod = pod
        self.uid = str(meta(pod)["uid"])
        self.namespace = str(meta(pod).get("namespace") or "default")
        self.name = str(meta(pod)["name"])
        self.pod_dir = ctx.cfg.pods_dir / self.uid
        self.ports = PodPorts(ctx.ports, self.uid, self.pod_dir)
        self.token = ProjectedToken(ctx.client, self.pod_dir, ctx.cfg.ca_pem)
        spec = pod.get("spec") or {}
        policy = str(spec.get("restartPolicy") or "Always")
        self.inits = [ContainerTrack(c, True, policy) for c in spec.get("initContainers") or []]
        self.mains = [ContainerTrack(c, False, policy) for c in spec.get("containers") or []]
        self.events = PodEvents(ctx.events, lambda: self.pod)
        for track in self.tracks:
            track.adopt([s for s in adopted or [] if s.container_name == track.name])
            track.on_probe_failure = self._probe_failed(track)
        self.gone = False  # the API no longer has the pod: stop everything
        self.finished = asyncio.Event()  # set once the worker has cleaned up
        self._written: Obj | None = None
        self._start_time = status(pod).get("startTime") or now_rfc3339()
        # kubelet_pod_start_duration_seconds: from now to the first Running status
        # written, for pods this agent starts (not ones it adopts after a restart).
        self._seen_at: float | None = None if adopted else time.monotonic()
        self._kick = asyncio.Event()
        self._wake_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def tracks(self) -> list[ContainerTrack]:
        return [*self.inits, *self.mains]

    def _probe_failed(self, track: ContainerTrack) -> Callable[[str, str], None]:
        return lambda kind, message: self.events.unhealthy(track.name, kind, message,
                                                           track.init)

    def log_dir(self, container: str) -> Path:
        return self.pod_dir / "logs" / container

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pod {self.namespace}/{self.name}")

    def update(self, pod: Obj) -> None:
        if str(meta(pod).get("uid")) == self.uid and _rv(pod) >= _rv(self.pod):
            self.pod = pod
            self.kick()

    def mark_gone(self) -> None:
        self.gone = True
        self.kick()

    def kick(self) -> None:
        self._kick.set()

    async def stop(self) -> None:
        """Stop supervising (the agent exits); containers keep running."""
        if self._task is not None:
            await cancel_and_wait(self._task)
        for track in self.tracks:
            track.close_watch()
            await track.stop_probes()

    async def _run(self) -> None:
        while True:
            self._kick.clear()
            try:
                if await self.sync():
                    break
            except (ServerUnreachable, APIError) as err:
                log.warning("pod sync: master not reachable pod=%s/%s error=%s",
                            self.namespace, self.name, err)
            except Exception:
                log.exception("pod sync failed pod=%s/%s", self.namespace, self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self._wait_seconds())
        self.finished.set()

    def _wait_seconds(self) -> float:
        wait = RESYNC_SECONDS
        if self._wake_at is not None:
            wait = min(wait, max(self._wake_at - time.monotonic(), 0.0))
            self._wake_at = None
        return wait

    def _wake_in(self, seconds: float) -> None:
        at = time.monotonic() + seconds
        self._wake_at = at if self._wake_at is None else min(self._wake_at, at)

    # -- one pass ------------------------------------------------------------

    async def sync(self) -> bool:
        """Converge once; True when the pod is finished with (deleted, gone)."""
        if self.gone or meta(self.pod).get("deletionTimestamp"):
            await self._terminate()
            return True
        await self._refresh()
        await self._refresh_token()
        await self._stop_unhealthy()
        await self._account_exits()
        await self._converge()
        await self._write_status()
        return self.gone and await self._terminate()

    async def _refresh(self) -> None:
        for track in self.tracks:
            if track.running and track.current is not None:
                try:
                    track.current = await self.ctx.runtime.status(track.current.container_id)
                except KeyError:  # removed under us (should not happen): start over
                    track.current = None

    async def _refresh_token(self) -> None:
        """Renew the ServiceAccount token of running containers before it expires."""
        if self.token.held and any(t.running for t in self.tracks):
            try:
                await self.token.ensure(self.pod)
            except TokenError as err:
                log.warning("service account token not renewed pod=%s/%s error=%s",
                            self.namespace, self.name, err)

    async def _stop_unhealthy(self) -> None:
        for track in self.tracks:
            if track.unhealthy and track.running and track.current is not None:
                grace = self._liveness_grace(track)
                log.info("restarting unhealthy container pod=%s/%s container=%s",
                         self.namespace, self.name, track.name)
                why = track.unhealthy.partition(", will be restarted")[0]
                self.events.killing(track.name, f"{why}, will be restarted", track.init)
                state = await self.ctx.runtime.stop(track.current.container_id, grace)
                state.message = track.unhealthy
                track.current = state

    async def _account_exits(self) -> None:
        for track in self.tracks:
            cur = track.current
            if cur is None or cur.running or track.exit_seen == cur.container_id:
                continue
            track.exit_seen = cur.container_id
            track.close_watch()
            await track.stop_probes()
            log.info("container exited pod=%s/%s container=%s attempt=%d code=%s reason=%s",
                     self.namespace, self.name, track.name, cur.attempt, cur.exit_code,
                     cur.reason)
            if track.will_restart():
                ran = (cur.finished_at or 0) - (cur.started_at or cur.finished_at or 0)
                self.ctx.backoff.record_exit(self._key(track), max(ran, 0.0))

    def _key(self, track: ContainerTrack) -> str:
        return f"{self.uid}/{track.name}"

    async def _converge(self) -> None:
        for track in self.inits:
            if track.succeeded:
                continue
            await self._run_track(track)
            for main in self.mains:
                if main.current is None:
                    main.waiting = ("PodInitializing", "")
            return  # one init container at a time, in order
        for track in self.mains:
            await self._run_track(track)

    async def _run_track(self, track: ContainerTrack) -> None:
        if track.running:
            self._watch(track)
            return
        if track.exited and not track.will_restart():
            return
        if track.exited:
            remaining = self.ctx.backoff.remaining(self._key(track))
            if remaining > 0:
                delay = self.ctx.backoff.current_delay(self._key(track)) or remaining
                message = (f"back-off {delay:g}s restarting failed container={track.name} "
                           f"pod={self.name}_{self.namespace}({self.uid})")
                track.waiting = ("CrashLoopBackOff", message)
                self.events.back_off(track.name, self.name, self.namespace, self.uid,
                                     track.init)
                self._wake_in(remaining)
                return
        await self._start(track)

    def _watch(self, track: ContainerTrack) -> None:
        track.watch_exit(self.kick)
        track.ensure_probes(self._probe_context(track), self.kick)

    def _probe_context(self, track: ContainerTrack) -> ProbeContext:
        return ProbeContext(self.ctx.cfg.node_ip,
                            lambda port: self.ports.host_port(track.name, port),
                            {}, str(self._working_dir(track)), self._run_as_or_none(track))

    def _run_as(self, track: ContainerTrack) -> RunAs | None:
        return run_as_for(self.pod, track.spec, self.ctx.users)

    def _run_as_or_none(self, track: ContainerTrack) -> RunAs | None:
        """For what runs beside a started container (its probes): it resolved."""
        try:
            return self._run_as(track)
        except RunAsError:
            return None

    def _prepare_dirs(self, track: ContainerTrack, run_as: RunAs | None) -> None:
        """The pod's directories, the shared working dir given to its user(s)."""
        prepare_pod_dir(self.pod_dir)
        if track.spec.get("workingDir"):
            return
        work = self._working_dir(track)
        if run_as is None:
            work.mkdir(parents=True, exist_ok=True)
            return
        users = [u for u in map(self._run_as_or_none, self.tracks) if u is not None]
        own_dir(work, *work_dir_owner(users or [run_as], fs_group(self.pod)))

    # -- starting an instance ------------------------------------------------

    async def _start(self, track: ContainerTrack) -> None:
        try:
            run_as = self._run_as(track)
            await asyncio.to_thread(self._prepare_dirs, track, run_as)
            self.ports.ensure(self.pod)
            pod = self.pod_with_ips()
            env = await EnvBuilder(pod, self.ctx.get_object, self.ctx.service_env(pod)).build(
                track.spec, self._base_env(track))
            own = None if track.spec.get("workingDir") else self._working_dir(track)
            env.update(await asyncio.to_thread(
                mount_claims, pod, track.spec, self.ctx.cfg.state_dir / VOLUMES_DIR, own,
                run_as))
            token_dir = await self.token.ensure(pod)
        except (EnvError, PortsExhausted, VolumeError, RunAsError, TokenError, OSError) as err:
            reason = ("PortsUnavailable" if isinstance(err, PortsExhausted)
                      else "CreateContainerConfigError")
            track.waiting = (reason, str(err))
            self.events.failed(track.name, str(err), track.init)
            self._wake_in(CONFIG_RETRY_SECONDS)
            return
        launch = self._launch(track, env, run_as, token_dir)
        if track.spec.get("workingDir") and not Path(launch.working_dir).is_dir():
            # The node's filesystem is the container's: the agent (root) must not
            # create whatever directory a pod names.
            track.waiting = ("CreateContainerError",
                             f"workingDir {launch.working_dir} does not exist on the node")
            self.events.failed(track.name, track.waiting[1], track.init)
            self._wake_in(CONFIG_RETRY_SECONDS)
            return
        self.events.pulled(track.name, str(track.spec.get("image") or ""), track.init)
        state = await self.ctx.runtime.start(launch)
        track.started_instance(state)
        await self._forget_old(track)
        if state.running:
            self.events.started(track.name, track.init)
            self._watch(track)
        else:
            self.events.failed(track.name, state.message or state.reason or "StartError",
                               track.init)
            self.kick()  # StartError: account it on the next pass

    def pod_with_ips(self) -> Obj:
        pod = copy.copy(self.pod)
        ip = self.ctx.cfg.node_ip
        pod["status"] = {**status(self.pod), "podIP": ip, "hostIP": ip,
                         "podIPs": [{"ip": ip}], "hostIPs": [{"ip": ip}]}
        return pod

    def _base_env(self, track: ContainerTrack) -> dict[str, str]:
        return {**self.ports.env_for(track.name), "HOSTNAME": self.name}

    def _working_dir(self, track: ContainerTrack) -> Path:
        given = track.spec.get("workingDir")
        return Path(given) if given else self.pod_dir / "work"

    def _launch(self, track: ContainerTrack, env: dict[str, str], run_as: RunAs | None,
                token_dir: Path | None = None) -> ContainerLaunch:
        resources = track.spec.get("resources") or {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        return ContainerLaunch(
            pod_uid=self.uid, container_name=track.name,
            command=command_line(track.spec, env), env=env,
            working_dir=str(self._working_dir(track)), log_dir=str(self.log_dir(track.name)),
            attempt=track.next_attempt,
            cpu_request_millis=cpu_millis(requests["cpu"]) if "cpu" in requests else None,
            cpu_limit_millis=cpu_millis(limits["cpu"]) if "cpu" in limits else None,
            memory_limit_bytes=bytes_value(limits["memory"]) if "memory" in limits else None,
            pod_pids_limit=self.ctx.cfg.pod_pids_limit if self.ctx.cfg.pod_pids_limit > 0 else None,
            stop_grace_seconds=float(self.grace()),
            stdin=bool(track.spec.get("stdin")), stdin_once=bool(track.spec.get("stdinOnce")),
            tty=bool(track.spec.get("tty")), run_as=run_as,
            binds=((str(token_dir), MOUNT_PATH),) if token_dir is not None else (),
        )

    async def _forget_old(self, track: ContainerTrack) -> None:
        """Keep the current instance and the one before it (for --previous); the
        one before those is removed (by id: listing every instance is O(pods))."""
        if track.current is None or track.current.attempt < 2:
            return
        old = container_id(self.uid, track.name, track.current.attempt - 2)
        with contextlib.suppress(KeyError, RuntimeError):
            await self.ctx.runtime.remove(old)

    # -- stopping --------------------------------------------------------------

    def grace(self) -> int:
        meta_grace = meta(self.pod).get("deletionGracePeriodSeconds")
        if meta_grace is not None:
            return int(meta_grace)
        return int(spec(self.pod).get("terminationGracePeriodSeconds", 30))

    def _liveness_grace(self, track: ContainerTrack) -> float:
        probe = track.spec.get("livenessProbe") or {}
        return float(probe.get("terminationGracePeriodSeconds") or self.grace())

    async def stop_all(self, grace: float) -> None:
        running = [t.current.container_id for t in self.tracks
                   if t.current is not None and t.current.running]
        for track in self.tracks:
            if track.running and not self.gone:
                self.events.killing(track.name, "", track.init)
        for track in self.tracks:
            track.close_watch()
            await track.stop_probes()
        await asyncio.gather(*(self.ctx.runtime.stop(cid, grace) for cid in running))

    async def _terminate(self) -> bool:
        grace = self.grace()
        log.info("stopping pod pod=%s/%s grace=%ss gone=%s", self.namespace, self.name,
                 grace, self.gone)
        await self.stop_all(grace)
        await self.clean_up()  # first: the object gone means the node is clean
        if not self.gone:  # a failed DELETE raises, and the next pass retries it
            with contextlib.suppress(NotFound, Conflict):
                await self.ctx.client.delete("Pod", self.name, self.namespace,
                                             grace_period_seconds=0,
                                             preconditions={"uid": self.uid})
        return True

    async def clean_up(self) -> None:
        """Forget the pod on this node: instances, ports, back-off, directory."""
        runtime = self.ctx.runtime
        for track in self.tracks:  # by id (see _forget_old); the sweep catches the rest
            top = track.current.attempt if track.current is not None else -1
            for attempt in range(max(top - 2, 0), top + 1):
                cid = container_id(self.uid, track.name, attempt)
                try:
                    if (await runtime.status(cid)).running:
                        await runtime.stop(cid, 0)
                except KeyError:
                    continue
                await runtime.remove(cid)
        await runtime.remove_pod(self.uid)  # else the sweep removes it later
        self.ports.release()
        for track in self.tracks:
            self.ctx.backoff.forget(self._key(track))
        await asyncio.to_thread(shutil.rmtree, self.pod_dir, True)

    # -- status ----------------------------------------------------------------

    def phase(self) -> PodPhase:
        return pod_phase([t.view() for t in self.inits], [t.view() for t in self.mains])

    def compute_status(self) -> Obj:
        inits, mains = [t.view() for t in self.inits], [t.view() for t in self.mains]
        phase = pod_phase(inits, mains)
        old = self.pod.get("status") or {}
        previous = (self._written or old).get("conditions")
        ip = self.ctx.cfg.node_ip
        status: Obj = {k: v for k, v in old.items() if k in ("qosClass", "nominatedNodeName")}
        status.update({
            "phase": phase.value, "hostIP": ip, "hostIPs": [{"ip": ip}], "podIP": ip,
            "podIPs": [{"ip": ip}], "startTime": self._start_time,
            "conditions": stamp_conditions(pod_conditions(phase, inits, mains), previous,
                                           now_rfc3339()),
            "containerStatuses": [container_status(v) for v in mains],
        })
        if inits:
            status["initContainerStatuses"] = [container_status(v) for v in inits]
        if self.ports.mappings:
            status["portMappings"] = self.ports.mappings
        return status

    async def _write_status(self) -> None:
        status = self.compute_status()
        if status == self._written:
            return
        body = {**self.pod, "status": status}
        for _ in range(3):
            try:
                self.pod = await self.ctx.client.update_status(body)
                self._written = status
                self._observe_start(status)
                return
            except Conflict:
                fresh = await self._fresh_pod()
                if fresh is None:
                    return
                self.pod = fresh
                body = {**fresh, "status": status}
            except NotFound:
                self.gone = True
                return

    def _observe_start(self, status: Obj) -> None:
        if self._seen_at is not None and status.get("phase") == PodPhase.RUNNING.value:
            AGENT_METRICS.pod_start.observe(time.monotonic() - self._seen_at)
            self._seen_at = None

    async def _fresh_pod(self) -> Obj | None:
        """The pod as the API has it now; None (and gone) when it is not ours any more."""
        try:
            fresh = await self.ctx.client.get("Pod", self.name, self.namespace)
        except NotFound:
            fresh = None
        if fresh is None or str(meta(fresh).get("uid")) != self.uid:
            self.gone = True  # deleted (and maybe created again under the same name)
            return None
        return fresh
