"""The master's own certificates renewed and reloaded while it runs, as
kube-apiserver reloads its serving certificate files without a restart.

Agents renew theirs through CSRs (agent/cert_rotation.py); the master issues its
own from the CA on disk, so it only has to ask again in time:

    every interval ─► renew()  (tls.ensure_pki, Signer.ensure_client_cert: a
                                certificate within 30 days of its end is re-issued)
                  ─► a pair whose files differ from what a context holds is
                     loaded into that same SSLContext: new handshakes show it,
                     open connections keep theirs

The same check picks up a pair an operator put in place of the files. A pair
that cannot be loaded (half written, key and certificate not matching) is logged
and the context keeps the pair it has; the next pass tries again.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("corral.api.cert_reload")

DEFAULT_INTERVAL_SECONDS = 3600.0


@dataclass
class LoadedPair:
    """A certificate and key as one SSLContext holds them."""

    name: str  # for the log: "serving", "kubelet-client"
    cert_path: Path
    key_path: Path
    context: ssl.SSLContext
    loaded: tuple[bytes, bytes] = field(default=(b"", b""))

    def _files(self) -> tuple[bytes, bytes]:
        return self.cert_path.read_bytes(), self.key_path.read_bytes()

    def mark_loaded(self) -> None:
        """The context was built from the files as they are now."""
        self.loaded = self._files()

    def reload_if_changed(self) -> bool:
        try:
            files = self._files()
        except OSError as err:
            log.warning("certificate unreadable name=%s error=%s", self.name, err)
            return False
        if files == self.loaded:
            return False
        try:
            self.context.load_cert_chain(str(self.cert_path), str(self.key_path))
        except (OSError, ssl.SSLError) as err:
            log.warning("certificate not reloaded name=%s cert=%s error=%s; the one in "
                        "use stays", self.name, self.cert_path, err)
            return False
        self.loaded = files
        log.info("certificate reloaded name=%s cert=%s", self.name, self.cert_path)
        return True


class CertificateReloader:
    def __init__(self, renew: Callable[[], None], pairs: list[LoadedPair],
                 interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self.renew = renew
        self.pairs = pairs
        self.interval = interval

    def _renew(self) -> None:
        try:
            self.renew()
        except (OSError, ValueError, TypeError) as err:
            log.warning("certificate renewal failed error=%s; retried in %.0fs", err,
                        self.interval)

    def _reload(self) -> list[str]:
        return [pair.name for pair in self.pairs if pair.reload_if_changed()]

    async def check(self) -> list[str]:
        """One pass: renew what is due, reload what changed; the names reloaded."""
        # Key generation and signing run off the event loop; the contexts are
        # changed on it, between handshakes (an SSLContext is not safe to change
        # while another thread makes connections from it).
        await asyncio.to_thread(self._renew)
        return self._reload()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()
