"""Secrets at rest on every backend: EncryptingStore (corral/api/encryption) over
the real SQLite file and the real etcd. What the backend holds is read from the
backend itself (and, for SQLite, from the file's tables) — never through the
layer under test."""

from __future__ import annotations

import base64
import sqlite3
import uuid

import pytest

from corral.api.encryption.config import EncryptionConfig, parse_config
from corral.api.encryption.store import EncryptingStore, KeyUnavailable
from corral.api.metrics import API_METRICS
from corral.store.base import EventType, Store
from corral.store.errors import Compacted
from corral.store.etcd import EtcdStore
from corral.store.sqlite import SqliteStore
from tests.cluster import EtcdCluster
from tests.poll import eventually

KEY = "/registry/core/secrets/default/db"
PLAIN = b'{"data":{"password":"aHVudGVyMg=="},"kind":"Secret"}'
MARK = b"aHVudGVyMg=="  # the value that must never be stored in clear


def config(*providers: str) -> EncryptionConfig:
    """A config for secrets with the given provider entries (YAML flow mappings)."""
    body = "\n".join(f"      - {p}" for p in providers)
    return parse_config(f"""
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
{body}
""".encode())


def key(name: str, size: int = 32, fill: int = 1) -> str:
    return f"{{name: {name}, secret: {base64.b64encode(bytes([fill]) * size).decode()}}}"


SECRETBOX = f"secretbox: {{keys: [{key('key1')}]}}"
AESGCM = f"aesgcm: {{keys: [{key('k2', 16, 2)}]}}"
AESCBC = f"aescbc: {{keys: [{key('k3', 32, 3)}]}}"
IDENTITY = "identity: {}"


@pytest.mark.parametrize("provider, prefix", [
    (SECRETBOX, b"k8s:enc:secretbox:v1:key1:"),
    (AESGCM, b"k8s:enc:aesgcm:v1:k2:"),
    (AESCBC, b"k8s:enc:aescbc:v1:k3:"),
])
async def test_secret_values_are_only_ciphertext_in_the_backend(
        store: Store, provider: str, prefix: bytes) -> None:
    enc = EncryptingStore(store, config(provider, IDENTITY))
    rev = await enc.create(KEY, PLAIN)
    await enc.update(KEY, PLAIN.replace(b"}", b'},"x":"eQ=="', 1), rev)
    raw = await store.get(KEY)
    assert raw is not None and raw.value.startswith(prefix) and MARK not in raw.value
    old = await store.list(KEY, revision=rev)  # the history holds ciphertext too
    assert old.items[0].value.startswith(prefix) and MARK not in old.items[0].value
    got = await enc.get(KEY)
    assert got is not None and MARK in got.value and b'"x"' in got.value
    listed = await enc.list("/registry/core/secrets/")
    assert [kv.value for kv in listed.items] == [got.value]


async def test_other_resources_pass_through(store: Store) -> None:
    enc = EncryptingStore(store, config(SECRETBOX))
    await enc.create("/registry/core/configmaps/default/c", PLAIN)
    raw = await store.get("/registry/core/configmaps/default/c")
    assert raw is not None and raw.value == PLAIN


async def test_watch_events_carry_opened_values_and_previous_values(store: Store) -> None:
    enc = EncryptingStore(store, config(SECRETBOX))
    start = await store.create("/registry/core/secrets/default/before", b"{}")  # not 0: "now"
    rev = await enc.create(KEY, PLAIN)
    await enc.update(KEY, b'{"v":2}', rev)
    await enc.delete(KEY)
    events = enc.watch("/registry/core/secrets/", start)
    got = [await anext(events) for _ in range(3)]
    await events.aclose()  # type: ignore[attr-defined]
    assert [e.type for e in got] == [EventType.PUT, EventType.PUT, EventType.DELETE]
    assert got[0].kv.value == PLAIN and got[1].prev is not None and got[1].prev.value == PLAIN
    assert got[1].kv.value == b'{"v":2}' and got[2].kv.value == b'{"v":2}'


async def test_identity_data_reads_after_encryption_is_turned_on(store: Store) -> None:
    await EncryptingStore(store, config(IDENTITY)).create(KEY, PLAIN)
    raw = await store.get(KEY)
    assert raw is not None and raw.value == PLAIN  # identity stores it as it is
    enc = EncryptingStore(store, config(SECRETBOX, IDENTITY))
    kv = await enc.get(KEY)
    assert kv is not None and kv.value == PLAIN
    await enc.update(KEY, kv.value, kv.mod_revision)  # re-written: sealed now
    raw = await store.get(KEY)
    assert raw is not None and MARK not in raw.value


def failed_reads() -> float:
    return API_METRICS.registry.get_sample_value(
        "apiserver_storage_transformation_operations_total",
        {"transformation_type": "from_storage", "transformer_prefix": "unknown",
         "status": "Failed"}) or 0.0


async def test_a_missing_key_is_a_clear_503_naming_the_key(store: Store) -> None:
    await EncryptingStore(store, config(SECRETBOX)).create(KEY, PLAIN)
    without = EncryptingStore(store, config(AESGCM, IDENTITY))
    before = failed_reads()
    with pytest.raises(KeyUnavailable, match="written with key 'key1' of secretbox") as err:
        await without.get(KEY)
    assert err.value.code == 503 and failed_reads() == before + 1  # counted, as Kubernetes
    with pytest.raises(KeyUnavailable):
        await without.list("/registry/core/secrets/")
    # Same name, different secret: the value does not open, and says so.
    other = f"secretbox: {{keys: [{key('key1', 32, 9)}]}}"
    with pytest.raises(KeyUnavailable, match="key 'key1' of secretbox did not open it"):
        await EncryptingStore(store, config(other)).get(KEY)


async def test_plaintext_without_identity_is_refused(store: Store) -> None:
    await store.create(KEY, PLAIN)
    with pytest.raises(KeyUnavailable, match="identity provider is not"):
        await EncryptingStore(store, config(SECRETBOX)).get(KEY)


async def test_aesgcm_binds_a_value_to_its_key(store: Store) -> None:
    enc = EncryptingStore(store, config(AESGCM))
    await enc.create(KEY, PLAIN)
    raw = await store.get(KEY)
    assert raw is not None
    await store.create(KEY + "-copy", raw.value)  # ciphertext moved under another name
    with pytest.raises(KeyUnavailable, match="authentication failed"):
        await enc.get(KEY + "-copy")


async def test_sqlite_file_holds_no_secret_in_clear(tmp_path: object) -> None:
    from pathlib import Path
    path = Path(str(tmp_path)) / "state.db"
    inner = await SqliteStore.open(path, compact_interval=0)
    enc = EncryptingStore(inner, config(SECRETBOX))
    try:
        rev = await enc.create(KEY, PLAIN)
        rev = await enc.update(KEY, PLAIN + b" ", rev)
        await enc.delete(KEY, rev)
    finally:
        await enc.close()
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT value, old_value FROM log").fetchall()
        rows += db.execute("SELECT value, NULL FROM current").fetchall()
    finally:
        db.close()
    assert rows and not any(MARK in (v or b"") or MARK in (o or b"") for v, o in rows)
    for name in ("state.db", "state.db-wal"):
        if (path.parent / name).exists():
            assert MARK not in (path.parent / name).read_bytes()


async def test_sqlite_compacts_an_overwritten_secret_away_within_the_age(
        tmp_path: object) -> None:
    from pathlib import Path
    path = Path(str(tmp_path)) / "state.db"
    inner = await SqliteStore.open(path, compact_interval=0.05, history_seconds=0.3)
    enc = EncryptingStore(inner, config(SECRETBOX))
    try:
        rev = await enc.create(KEY, PLAIN)
        first = await inner.get(KEY)
        assert first is not None
        await enc.update(KEY, b'{"v":2}', rev)

        def old_rows() -> int:
            db = sqlite3.connect(path)
            try:
                return int(db.execute("SELECT COUNT(*) FROM log WHERE value = ? OR old_value = ?",
                                      (first.value, first.value)).fetchone()[0])
            finally:
                db.close()

        assert old_rows() > 0  # the history held it, sealed
        await eventually(lambda: old_rows() == 0, what="the old value compacted away")
        got = await enc.get(KEY)
        assert got is not None and got.value == b'{"v":2}'
        with pytest.raises(Compacted):
            await inner.list(KEY, revision=rev)
    finally:
        await enc.close()


async def test_etcd_compacts_an_overwritten_secret_away_within_the_age(
        etcd: EtcdCluster) -> None:
    inner = await EtcdStore.open(etcd.local.endpoints, root=f"/t-{uuid.uuid4().hex[:8]}",
                                 compact_interval=0.05, history_seconds=0.3)
    enc = EncryptingStore(inner, config(SECRETBOX))
    try:
        rev = await enc.create(KEY, PLAIN)
        await enc.update(KEY, b'{"v":2}', rev)

        async def gone() -> bool:
            try:
                await inner.list(KEY, revision=rev)
            except Compacted:
                return True
            return False

        await eventually(gone, what="the old revision compacted away")
        got = await enc.get(KEY)
        assert got is not None and got.value == b'{"v":2}'
    finally:
        await enc.close()
