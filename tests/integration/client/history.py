"""Test helper: change a stopped master's store directly, to create situations
the API cannot (history compacted away, objects gone while nobody watched)."""

from __future__ import annotations

from corral.api.resources import BY_KIND
from corral.store.open import open_store
from tests.cluster import Master


async def offline_delete_and_compact(master: Master, deletes: list[tuple[str, str, str]]) -> int:
    """With the master stopped: delete (kind, namespace, name) keys, then compact
    all history. Returns the compacted revision."""
    assert master.proc is None, "stop the master first"
    store = await open_store(f"sqlite:///{(master.data_dir / 'state.db').resolve()}")
    try:
        for kind, namespace, name in deletes:
            await store.delete(BY_KIND[kind].storage_key(namespace, name))
        revision = await store.current_revision()
        await store.compact(revision)
        return revision
    finally:
        await store.close()
