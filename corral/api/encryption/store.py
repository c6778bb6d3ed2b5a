"""The Store the API writes through: values of the configured resources are
sealed on their way in and opened on their way out, so SQLite and etcd (and
their history, and their backups) only ever hold ciphertext for them.

    registry ─► FencingStore ─► EncryptingStore ─► SqliteStore | EtcdStore
                                 │ create/update: rule_for(key) → first key seals
                                 │ get/list/watch: the value's prefix picks the key
                                 └ other keys pass through untouched

A value no configured key opens (its key was removed, or the key under its name
changed) fails the read with a 503 Status that names the key it needs, never a
500: the operator puts the key back and it reads again. The configuration may be
replaced while serving (``reload``): masters pick up a rotation step from the file.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from corral.api.encryption.config import ConfigError, EncryptionConfig, Rule, load_config
from corral.api.encryption.providers import ENCRYPTED, KEYED, DecryptError
from corral.api.errors import ServiceUnavailable
from corral.api.metrics import API_METRICS
from corral.store.base import Event, Guard, KeyValue, ListResult, Store
from corral.store.passthrough import PassThroughStore

log = logging.getLogger("corral.api.encryption")


class KeyUnavailable(ServiceUnavailable):
    """A stored value cannot be opened with the keys configured now."""


class EncryptingStore(PassThroughStore):
    def __init__(self, inner: Store, config: EncryptionConfig | None,
                 path: Path | None = None) -> None:
        super().__init__(inner)
        self.config = config  # None: nothing is encrypted
        self.path = path  # the file ``reload`` reads again
        self._mtime = path.stat().st_mtime_ns if path is not None else 0

    @property
    def digest(self) -> str:
        return self.config.digest if self.config is not None else ""

    def reload(self) -> bool:
        """Read the file again if it changed; a bad file is logged and the
        configuration in force stays. True when a new one took effect."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self._mtime:
                return False
            self._mtime = mtime
            config = load_config(self.path)
        except (OSError, ConfigError) as err:
            log.error("encryption config not reloaded path=%s error=%s", self.path, err)
            return False
        if config.digest == self.digest:
            return False
        self.config = config
        log.info("encryption config reloaded path=%s digest=%s", self.path, config.digest)
        return True

    # -- sealing -------------------------------------------------------------------

    def rule_for(self, key: str) -> Rule | None:
        return self.config.rule_for(key) if self.config is not None else None

    def seal(self, key: str, value: bytes) -> bytes:
        rule = self.rule_for(key)
        if rule is None:
            return value
        writer = rule.transformers[0]
        sealed = writer.prefix + writer.seal(value, key.encode())
        _count("to_storage", writer.provider, "OK")
        return sealed

    def unseal(self, key: str, stored: bytes) -> bytes:
        rule = self.rule_for(key)
        if rule is None:
            return stored
        encrypted = stored.startswith(ENCRYPTED)
        for t in rule.transformers:
            if t.prefix and stored.startswith(t.prefix):
                try:
                    opened = t.unseal(stored[len(t.prefix):], key.encode())
                except DecryptError as err:
                    _count("from_storage", t.provider, "Failed")
                    raise _unavailable(key, f"key {t.key_name!r} of {t.provider} did not "
                                       f"open it: {err}") from None
                _count("from_storage", t.provider, "OK")
                return opened
            if not t.prefix and not encrypted:
                _count("from_storage", "identity", "OK")
                return stored  # identity: stored before encryption was on
        _count("from_storage", "unknown", "Failed")
        return _missing(key, stored, encrypted)

    def opened(self, kv: KeyValue) -> KeyValue:
        return KeyValue(kv.key, self.unseal(kv.key, kv.value), kv.create_revision,
                        kv.mod_revision)

    # -- reads -------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        kv = await self.inner.get(key)
        return self.opened(kv) if kv is not None and self.rule_for(key) else kv

    async def list(self, prefix: str, *, limit: int = 0, start_after: str | None = None,
                   revision: int = 0) -> ListResult:
        page = await self.inner.list(prefix, limit=limit, start_after=start_after,
                                     revision=revision)
        if self.config is None:
            return page
        return ListResult([self.opened(kv) if self.rule_for(kv.key) else kv for kv in page.items],
                          page.revision, page.more)

    def watch(self, prefix: str, after_revision: int = 0) -> AsyncIterator[Event]:
        return _OpenedEvents(self, self.inner.watch(prefix, after_revision))

    # -- writes ----------------------------------------------------------------------

    async def create(self, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        return await self.inner.create(key, self.seal(key, value), guard=guard)

    async def update(self, key: str, value: bytes, expected_revision: int, *,
                     guard: Guard | None = None) -> int:
        return await self.inner.update(key, self.seal(key, value), expected_revision,
                                       guard=guard)


class _OpenedEvents:
    """A watch whose events carry opened values; closing it closes the store's."""

    def __init__(self, store: EncryptingStore, events: AsyncIterator[Event]) -> None:
        self._store = store
        self._events = events

    def __aiter__(self) -> _OpenedEvents:
        return self

    async def __anext__(self) -> Event:
        ev = await self._events.__anext__()
        if self._store.rule_for(ev.kv.key) is None:
            return ev
        prev = self._store.opened(ev.prev) if ev.prev is not None else None
        return Event(ev.type, self._store.opened(ev.kv), prev)

    async def aclose(self) -> None:
        close = getattr(self._events, "aclose", None)
        if close is not None:
            await close()


def _count(direction: str, provider: str, status: str) -> None:
    """Kubernetes' apiserver_storage_transformation_operations_total."""
    prefix = f"k8s:enc:{provider}:v1" if provider in KEYED else provider
    API_METRICS.transformations.labels(direction, prefix, status).inc()


def _unavailable(key: str, why: str) -> KeyUnavailable:
    return KeyUnavailable(f'unable to transform key "{key}": {why}; the object cannot be '
                          "read until the encryption provider config has its key again")


def _missing(key: str, stored: bytes, encrypted: bool) -> bytes:
    if not encrypted:
        raise _unavailable(key, "it is stored unencrypted and the identity provider is not "
                           "in the encryption provider config")
    # k8s:enc:<provider>:v1:<key name>:...
    parts = stored.split(b":", 5)
    provider = parts[2].decode(errors="replace") if len(parts) > 2 else "?"
    name = parts[4].decode(errors="replace") if len(parts) > 4 else "?"
    raise _unavailable(key, f"it was written with key {name!r} of {provider}, which the "
                       "encryption provider config does not have")
