"""Liveness, readiness and startup probes with Kubernetes' timing semantics.

One ProbeRunner per probe of a container instance: the first probe runs after
``initial_delay``, then one every ``period``; a probe not answered within
``timeout`` failed. The result flips to success after ``success_threshold``
consecutive successes and to failure after ``failure_threshold`` consecutive
failures; ``on_change`` hears each flip. Initial results are the kubelet's:
readiness starts failed (not ready), liveness succeeded, startup unknown.

ContainerProbes ties the three together: nothing but the startup probe runs until
it succeeds (then it stops); a failed liveness or startup probe calls
``on_unhealthy`` (the agent restarts the container); readiness calls ``on_ready``.

    exec       command exits 0            (run with the container's env and cwd)
    httpGet    status 200-399, no redirect following, TLS not verified (as Kubernetes)
    tcpSocket  the connection is accepted
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from corral.agent.runtime.base import RunAs
from corral.aiotasks import cancel_and_wait
from corral.api.kinds.container import Probe


@dataclass(frozen=True)
class ExecAction:
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    run_as: RunAs | None = None  # the container's user: the probe runs as it


@dataclass(frozen=True)
class HttpAction:
    host: str
    port: int
    path: str = "/"
    scheme: str = "HTTP"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TcpAction:
    host: str
    port: int


Action = ExecAction | HttpAction | TcpAction


@dataclass(frozen=True)
class ProbeSpec:
    """A probe with Kubernetes' defaults; times in seconds (floats, for tests)."""

    action: Action
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


def spec_from_probe(
    probe: Probe, host: str, resolve_port: Callable[[int | str], int],
    env: dict[str, str], working_dir: str | None, run_as: RunAs | None = None,
) -> ProbeSpec:
    """Build a ProbeSpec from a pod's Probe. ``resolve_port`` maps a containerPort
    number or name to the host port the process really listens on."""
    return ProbeSpec(
        action=_action(probe, host, resolve_port, env, working_dir, run_as),
        initial_delay=float(probe.initial_delay_seconds or 0),
        period=float(probe.period_seconds or 10),
        timeout=float(probe.timeout_seconds or 1),
        success_threshold=probe.success_threshold or 1,
        failure_threshold=probe.failure_threshold or 3,
    )


def _action(
    probe: Probe, host: str, resolve_port: Callable[[int | str], int],
    env: dict[str, str], working_dir: str | None, run_as: RunAs | None,
) -> Action:
    if probe.exec is not None:
        return ExecAction(list(probe.exec.command or []), env, working_dir, run_as)
    if probe.http_get is not None:
        get = probe.http_get
        headers = {h.name: h.value for h in get.http_headers or []}
        return HttpAction(get.host or host, resolve_port(get.port), get.path or "/",
                          (get.scheme or "HTTP").upper(), headers)
    if probe.tcp_socket is not None:
        return TcpAction(probe.tcp_socket.host or host, resolve_port(probe.tcp_socket.port))
    raise ValueError(f"unsupported probe handler: {probe.handlers() or 'none'}")


async def run_probe(action: Action, timeout: float) -> tuple[bool, str]:
    """Run one probe: (succeeded, message). Never raises for the target's faults."""
    try:
        return await asyncio.wait_for(_probe_once(action), timeout)
    except TimeoutError:
        return False, f"probe timed out after {timeout:g}s"
    except (OSError, httpx.HTTPError) as exc:
        return False, f"{type(exc).__name__}: {exc}"


async def _probe_once(action: Action) -> tuple[bool, str]:
    if isinstance(action, ExecAction):
        return await _exec(action)
    if isinstance(action, HttpAction):
        return await _http(action)
    _, writer = await asyncio.open_connection(action.host, action.port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, f"connected to {action.host}:{action.port}"


async def _exec(action: ExecAction) -> tuple[bool, str]:
    env = {"PATH": os.environ.get("PATH", os.defpath), **action.env}
    prefix = action.run_as.setpriv() if action.run_as is not None else []
    proc = await asyncio.create_subprocess_exec(
        *prefix, *action.command, env=env, cwd=action.working_dir,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    try:
        output, _ = await proc.communicate()
    except asyncio.CancelledError:  # timed out: take the whole probe group down
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    text = output.decode("utf-8", "replace")[-1024:].strip()
    return proc.returncode == 0, f"exit code {proc.returncode}: {text}"


async def _http(action: HttpAction) -> tuple[bool, str]:
    url = f"{action.scheme.lower()}://{action.host}:{action.port}{action.path}"
    headers = {"User-Agent": "corral-probe/1.0", **action.headers}
    async with httpx.AsyncClient(verify=False, follow_redirects=False) as client:
        response = await client.get(url, headers=headers)
    return 200 <= response.status_code < 400, f"HTTP {response.status_code} from {url}"


ChangeCallback = Callable[[bool, str], None]


class ProbeRunner:
    """Runs one probe periodically and reports result flips."""

    def __init__(
        self, spec: ProbeSpec, initial: bool | None, on_change: ChangeCallback,
    ) -> None:
        self.spec = spec
        self.result = initial  # None: unknown, so either threshold can decide it
        self.on_change = on_change
        self._last: bool | None = None
        self._streak = 0  # consecutive outcomes equal to self._last
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    def cancel(self) -> None:
        """Stop probing without waiting (safe from within on_change)."""
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        await asyncio.sleep(self.spec.initial_delay)
        while True:
            ok, message = await run_probe(self.spec.action, self.spec.timeout)
            self.observe(ok, message)
            await asyncio.sleep(self.spec.period)

    def observe(self, ok: bool, message: str) -> None:
        """Count one outcome toward the thresholds; flip and report if reached."""
        self._streak = self._streak + 1 if ok == self._last else 1
        self._last = ok
        if ok == self.result:
            return
        needed = self.spec.success_threshold if ok else self.spec.failure_threshold
        if self._streak >= needed:
            self.result = ok
            self.on_change(ok, message)


class ContainerProbes:
    """The probes of one container instance, with startup gating the others."""

    def __init__(
        self, startup: ProbeSpec | None, liveness: ProbeSpec | None,
        readiness: ProbeSpec | None, on_ready: Callable[[bool, str], None],
        on_unhealthy: Callable[[str, str], None],
    ) -> None:
        self.on_ready = on_ready
        self.on_unhealthy = on_unhealthy
        self.started = startup is None
        self.startup = ProbeRunner(startup, None, self._startup_changed) if startup else None
        self.liveness = (ProbeRunner(liveness, True, self._liveness_changed)
                         if liveness else None)
        self.readiness = (ProbeRunner(readiness, False, self._readiness_changed)
                          if readiness else None)

    def start(self) -> None:
        """Begin probing; with no readiness probe the container is ready at once
        (once started), as in Kubernetes."""
        if self.startup is not None:
            self.startup.start()
        else:
            self._after_startup()

    def _after_startup(self) -> None:
        self.started = True
        if self.liveness is not None:
            self.liveness.start()
        if self.readiness is not None:
            self.readiness.start()
        else:
            self.on_ready(True, "")

    def _startup_changed(self, ok: bool, message: str) -> None:
        assert self.startup is not None
        if ok:
            self.startup.cancel()  # a started container is never startup-probed again
            self._after_startup()
        else:
            self.on_unhealthy("startup", message)

    def _liveness_changed(self, ok: bool, message: str) -> None:
        if not ok:
            self.on_unhealthy("liveness", message)

    def _readiness_changed(self, ok: bool, message: str) -> None:
        self.on_ready(ok, message)

    @property
    def ready(self) -> bool:
        if not self.started:
            return False
        return self.readiness.result is True if self.readiness is not None else True

    async def stop(self) -> None:
        for runner in (self.startup, self.liveness, self.readiness):
            if runner is not None:
                await runner.stop()
