"""Certificate rotation, as the kubelet's certificate manager does it
(client-go's util/certificate): each of the agent's certificates — its client
certificate toward the master and its serving certificate — is renewed once
70–90 % (jittered, so a fleet does not renew at once) of its lifetime has passed:
a new key, a CertificateSigningRequest the master auto-approves for the node's
own name, the files replaced, and the new certificate in use without a restart.

    deadline = notBefore + (0.7 + 0.2·rand) · (notAfter − notBefore)
    sleep until the deadline (the Clock) ─► renew() ─► the new certificate's deadline
         renew() fails ─► again after a back-off; the old certificate holds meanwhile

The lifetime is the master's (`corral master --cluster-signing-duration`, a year
by default); with a short one rotation is seen within a minute.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography import x509

from corral.aiotasks import cancel_and_wait
from corral.client.backoff import Backoff
from corral.client.clock import Clock, RealClock

log = logging.getLogger(__name__)

LOW, SPREAD = 0.7, 0.2  # renew between 70 % and 90 % of the lifetime


def rotation_deadline(cert: x509.Certificate, rand: float) -> dt.datetime:
    """When to renew ``cert``; ``rand`` in [0, 1) is its jitter."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * (LOW + SPREAD * rand)


def load_certificate(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


class Rotation:
    """Keeps one certificate renewed. ``current`` reads the certificate in use
    (None: there is none, renew at once); ``renew`` gets, stores and puts to use
    a new one."""

    def __init__(self, what: str, current: Callable[[], x509.Certificate | None],
                 renew: Callable[[], Awaitable[None]], *, clock: Clock | None = None,
                 rand: Callable[[], float] = random.random) -> None:
        self.what = what
        self.current = current
        self.renew = renew
        self.clock = clock or RealClock()
        self.rand = rand
        self.rotations = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"rotate-{self.what}")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def run(self) -> None:
        backoff = Backoff(initial=0.5, maximum=10.0)
        deadlines: dict[int, dt.datetime] = {}  # by serial: one jitter per certificate
        while True:
            cert = self.current()
            if cert is not None:
                deadline = deadlines.setdefault(cert.serial_number,
                                                rotation_deadline(cert, self.rand()))
                wait = (deadline - self.clock.now()).total_seconds()
                if wait > 0:
                    log.info("certificate rotation scheduled what=%s at=%s in=%.0fs",
                             self.what, deadline.isoformat(), wait)
                    await self.clock.sleep(wait)
            try:
                await self.renew()
            except Exception as err:  # noqa: BLE001 - any failure: the old one holds, retry
                delay = backoff.next_delay()
                log.warning("certificate rotation failed what=%s error=%s retry_in=%.1fs",
                            self.what, err, delay)
                await self.clock.sleep(delay)
                continue
            backoff.reset()
            deadlines.clear()
            self.rotations += 1
            fresh = self.current()
            log.info("certificate rotated what=%s serial=%x not_after=%s", self.what,
                     fresh.serial_number if fresh else 0,
                     fresh.not_valid_after_utc.isoformat() if fresh else "?")
