"""Probes against real local servers and commands; runner thresholds and gating."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.agent.runtime.probes import (
    ContainerProbes,
    ExecAction,
    HttpAction,
    ProbeRunner,
    ProbeSpec,
    TcpAction,
    run_probe,
    spec_from_probe,
)
from corral.api.kinds.container import Probe
from tests.poll import eventually

HOST = "127.0.0.1"


async def _http_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = (await reader.readline()).decode()
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    path = request.split(" ")[1]
    status = {"/healthz": "200 OK", "/moved": "302 Found"}.get(path, "500 Oops")
    if path == "/slow":
        await asyncio.sleep(5)
    writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    writer.close()


@pytest.fixture
async def http_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_http_handler, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_exec_probe() -> None:
    assert (await run_probe(ExecAction(["true"]), 5))[0]
    ok, message = await run_probe(ExecAction(["sh", "-c", "echo sick; exit 3"]), 5)
    assert not ok and message == "exit code 3: sick"
    ok, message = await run_probe(ExecAction(["sleep", "10"]), 0.2)
    assert not ok and "timed out" in message
    ok, _ = await run_probe(ExecAction(["no-such-probe-command"]), 5)
    assert not ok
    env_ok, _ = await run_probe(ExecAction(["sh", "-c", 'test "$X" = y'], env={"X": "y"}), 5)
    assert env_ok


async def test_http_probe(http_port: int) -> None:
    assert (await run_probe(HttpAction(HOST, http_port, "/healthz"), 5))[0]
    assert (await run_probe(HttpAction(HOST, http_port, "/moved"), 5))[0]  # 3xx passes
    ok, message = await run_probe(HttpAction(HOST, http_port, "/broken"), 5)
    assert not ok and message.startswith("HTTP 500")
    ok, message = await run_probe(HttpAction(HOST, http_port, "/slow"), 0.2)
    assert not ok and "timed out" in message


async def test_tcp_probe(http_port: int) -> None:
    assert (await run_probe(TcpAction(HOST, http_port), 5))[0]
    server = await asyncio.start_server(lambda r, w: None, HOST, 0)
    closed_port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    ok, message = await run_probe(TcpAction(HOST, closed_port), 5)
    assert not ok and "ConnectionRefused" in message


def test_thresholds_flip_only_after_consecutive_outcomes() -> None:
    flips: list[bool] = []
    spec = ProbeSpec(TcpAction(HOST, 1), success_threshold=2, failure_threshold=3)
    runner = ProbeRunner(spec, initial=False, on_change=lambda ok, _: flips.append(ok))
    for outcome in (True, False, True, True, False, False, True, False, False, False):
        runner.observe(outcome, "")
    assert flips == [True, False] and runner.result is False


def test_startup_unknown_fails_after_failure_threshold() -> None:
    flips: list[bool] = []
    spec = ProbeSpec(TcpAction(HOST, 1), failure_threshold=2)
    runner = ProbeRunner(spec, initial=None, on_change=lambda ok, _: flips.append(ok))
    runner.observe(False, "")
    runner.observe(False, "")
    assert flips == [False]


async def test_runner_timing_and_transitions(tmp_path: Path) -> None:
    flag = tmp_path / "healthy"
    flips: list[bool] = []
    spec = ProbeSpec(ExecAction(["test", "-e", str(flag)]), initial_delay=0.05, period=0.05,
                     timeout=2, failure_threshold=2)
    runner = ProbeRunner(spec, initial=False, on_change=lambda ok, _: flips.append(ok))
    runner.start()
    try:
        flag.touch()
        await eventually(lambda: flips == [True])
        flag.unlink()
        await eventually(lambda: flips == [True, False])
    finally:
        await runner.stop()


async def test_startup_gates_liveness_and_readiness(http_port: int) -> None:
    events: list[str] = []
    probes = ContainerProbes(
        startup=ProbeSpec(TcpAction(HOST, http_port), period=0.05),
        liveness=ProbeSpec(HttpAction(HOST, http_port, "/broken"), period=0.05,
                           failure_threshold=2),
        readiness=ProbeSpec(HttpAction(HOST, http_port, "/healthz"), period=0.05),
        on_ready=lambda ready, why: events.append(f"ready={ready}"),
        on_unhealthy=lambda kind, msg: events.append(f"unhealthy={kind}"),
    )
    assert not probes.ready
    probes.start()
    try:
        await eventually(lambda: "unhealthy=liveness" in events and "ready=True" in events)
        assert probes.started and probes.ready
        assert probes.startup is not None and probes.startup.result is True
    finally:
        await probes.stop()


async def test_failed_startup_probe_reports_unhealthy() -> None:
    events: list[str] = []
    probes = ContainerProbes(
        startup=ProbeSpec(ExecAction(["false"]), period=0.02, failure_threshold=3),
        liveness=ProbeSpec(ExecAction(["true"]), period=0.02), readiness=None,
        on_ready=lambda ready, why: events.append(f"ready={ready}"),
        on_unhealthy=lambda kind, msg: events.append(f"unhealthy={kind}"),
    )
    probes.start()
    try:
        await eventually(lambda: events == ["unhealthy=startup"])
        assert not probes.started and not probes.ready
    finally:
        await probes.stop()


async def test_no_readiness_probe_means_ready_once_started() -> None:
    events: list[bool] = []
    probes = ContainerProbes(None, None, None, lambda ready, why: events.append(ready),
                             lambda k, m: None)
    probes.start()
    assert events == [True] and probes.ready
    await probes.stop()


def test_spec_from_a_pod_probe_resolves_named_ports() -> None:
    probe = Probe.model_validate({
        "httpGet": {"port": "web", "path": "/healthz",
                    "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
        "initialDelaySeconds": 3, "periodSeconds": 5, "failureThreshold": 4,
    })
    ports: dict[int | str, int] = {"web": 20001, 8080: 20001}
    spec = spec_from_probe(probe, HOST, ports.__getitem__, {}, None)
    assert spec.action == HttpAction(HOST, 20001, "/healthz", "HTTP", {"X-Probe": "1"})
    assert (spec.initial_delay, spec.period, spec.timeout) == (3, 5, 1)
    assert (spec.success_threshold, spec.failure_threshold) == (1, 4)
    tcp = spec_from_probe(Probe.model_validate({"tcpSocket": {"port": 8080}}), HOST,
                          ports.__getitem__, {}, None)
    assert tcp.action == TcpAction(HOST, 20001) and tcp.period == 10


