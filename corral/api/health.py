"""/livez and /readyz: named checks of real things, answered as kube-apiserver does.

    GET /readyz            200 "ok", or 500 with every check's line
    GET /readyz?verbose    200 with every check's line, then "readyz check passed"
    GET /readyz/etcd       one check: 200 "ok" or 500
    ?exclude=NAME          leave a check out

    [+]ping ok
    [+]etcd ok
    [-]leader/corral-scheduler failed: reason withheld
    readyz check failed

livez asks whether the process should be restarted (its loop answers, its store
answers); readyz adds whether it should get traffic: the control-plane namespaces
exist and every component this master runs is led by some master, whose Lease is
fresh (a component nobody leads means nothing schedules or reconciles).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from corral.api.registry import Registry
from corral.api.registry.delete import IMMORTAL_NAMESPACES
from corral.api.resources import BY_KIND
from corral.objects import parse_time, spec

log = logging.getLogger("corral.api.health")

Check = Callable[[], Awaitable[None]]  # raises HealthError (or anything) when failing
CHECK_TIMEOUT = 5.0  # a store that takes longer than this is not answering


class HealthError(Exception):
    """A check failed; the message is logged, never served (kube-apiserver withholds it)."""


@dataclass
class Health:
    """The checks of one API server; components add their own (``leader``)."""

    registry: Registry
    live: dict[str, Check] = field(default_factory=dict)
    ready: dict[str, Check] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.live["ping"] = _ping
        self.live["etcd"] = self._store
        self.ready.update(self.live)
        self.ready["bootstrap-namespaces"] = self._namespaces

    def leader(self, namespace: str, name: str) -> None:
        """readyz also requires the Lease ``namespace/name`` to be held and fresh."""
        async def check() -> None:
            lease = await self.registry.find(BY_KIND["Lease"], namespace, name)
            if lease is None or not _fresh(spec(lease)):
                raise HealthError(f"no master leads {namespace}/{name}")
        self.ready[f"leader/{name}"] = check

    async def _store(self) -> None:
        await self.registry.store.get(BY_KIND["Namespace"].storage_key(None, "default"))

    async def _namespaces(self) -> None:
        ns = BY_KIND["Namespace"]
        for name in IMMORTAL_NAMESPACES:
            if await self.registry.find(ns, None, name) is None:
                raise HealthError(f"namespace {name} is missing")

    async def livez(self, request: Request) -> Response:
        return await _answer(request, "livez", self.live)

    async def readyz(self, request: Request) -> Response:
        return await _answer(request, "readyz", self.ready)


async def _ping() -> None:
    return None


def _fresh(lease_spec: dict[str, object]) -> bool:
    holder = lease_spec.get("holderIdentity")
    renewed = parse_time(str(lease_spec.get("renewTime") or ""))
    duration = lease_spec.get("leaseDurationSeconds")
    if not holder or renewed is None or not isinstance(duration, int):
        return False
    return datetime.now(UTC) < renewed + timedelta(seconds=duration)


async def _run(name: str, check: Check) -> bool:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except Exception as err:  # noqa: BLE001 - a failing check is an answer, not a crash
        log.warning("health check failed check=%s error=%s", name, err or type(err).__name__)
        return False
    return True


async def _answer(request: Request, kind: str, checks: dict[str, Check]) -> Response:
    one = request.path_params.get("check")
    if one:
        if one not in checks:
            return PlainTextResponse(f"{kind}/{one} not found\n", status_code=404)
        ok = await _run(one, checks[one])
        return PlainTextResponse("ok" if ok else f"[-]{one} failed: reason withheld\n"
                                 f"{kind} check failed\n", status_code=200 if ok else 500)
    excluded = set(request.query_params.getlist("exclude"))
    names = [n for n in checks if n not in excluded]
    results = await asyncio.gather(*(_run(n, checks[n]) for n in names))
    lines = "".join(f"[+]{n} ok\n" if ok else f"[-]{n} failed: reason withheld\n"
                    for n, ok in zip(names, results, strict=True))
    lines += "".join(f"[+]{n} excluded: ok\n" for n in checks if n in excluded)
    if not all(results):
        return PlainTextResponse(f"{lines}{kind} check failed\n", status_code=500)
    if "verbose" in request.query_params:
        return PlainTextResponse(f"{lines}{kind} check passed\n")
    return PlainTextResponse("ok")
