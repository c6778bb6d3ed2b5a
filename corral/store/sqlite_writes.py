"""Write operations as the writer thread applies them: a batch per transaction.

Each operation's compare-and-swap is checked inside the batch's transaction, so
it sees the operations queued before it; a failed check is that operation's
error alone and writes nothing. Everything here runs on the writer thread.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from corral.store.base import Event, EventType, Guard, KeyValue
from corral.store.errors import GuardFailed, KeyExists, KeyNotFound, RevisionMismatch, StoreError


@dataclass(frozen=True, slots=True)
class Create:
    key: str
    value: bytes
    guard: Guard | None = None


@dataclass(frozen=True, slots=True)
class Update:
    key: str
    value: bytes
    expected_revision: int
    guard: Guard | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    key: str
    expected_revision: int  # 0: whatever the key holds
    guard: Guard | None = None


Op = Create | Update | Delete

# What one operation came to: the event it caused, or the error for its caller.
Outcome = Event | StoreError

_INSERT_LOG = """
INSERT INTO log (id, name, created, deleted, create_revision, prev_revision, value, old_value)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
_UPSERT_CURRENT = """
INSERT INTO current (name, create_revision, mod_revision, value) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET mod_revision = excluded.mod_revision, value = excluded.value
"""


def apply_batch(conn: sqlite3.Connection, ops: list[Op], revision: int) -> list[Outcome]:
    """Apply ``ops`` in one transaction, numbering changes from ``revision`` + 1.
    Commits before returning (on disk, as synchronous=FULL). If SQLite itself
    fails, the whole batch is rolled back and the error propagates."""
    outcomes: list[Outcome] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for op in ops:
            outcome = _apply(conn, op, revision + 1)
            if isinstance(outcome, Event):
                revision += 1
            outcomes.append(outcome)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return outcomes


def _apply(conn: sqlite3.Connection, op: Op, revision: int) -> Outcome:
    if op.guard is not None:
        guard = _current(conn, op.guard.key)
        actual = guard.mod_revision if guard is not None else 0
        if actual != op.guard.mod_revision:
            return GuardFailed(op.guard.key, op.guard.mod_revision, actual)
    live = _current(conn, op.key)
    if isinstance(op, Create):
        if live is not None:
            return KeyExists(op.key)
        return _put(conn, KeyValue(op.key, op.value, revision, revision), None)
    if live is None:
        return KeyNotFound(op.key)
    if op.expected_revision and op.expected_revision != live.mod_revision:
        return RevisionMismatch(op.key, op.expected_revision, live.mod_revision)
    if isinstance(op, Update):
        return _put(conn, KeyValue(op.key, op.value, live.create_revision, revision), live)
    return _delete(conn, live, revision)


def _current(conn: sqlite3.Connection, key: str) -> KeyValue | None:
    row = conn.execute(
        "SELECT create_revision, mod_revision, value FROM current WHERE name = ?", (key,)
    ).fetchone()
    return None if row is None else KeyValue(key, row[2], row[0], row[1])


def _put(conn: sqlite3.Connection, kv: KeyValue, prev: KeyValue | None) -> Event:
    conn.execute(_INSERT_LOG, (
        kv.mod_revision, kv.key, prev is None, False, kv.create_revision,
        0 if prev is None else prev.mod_revision, kv.value,
        None if prev is None else prev.value,
    ))
    conn.execute(_UPSERT_CURRENT, (kv.key, kv.create_revision, kv.mod_revision, kv.value))
    return Event(EventType.PUT, kv, prev)


def _delete(conn: sqlite3.Connection, live: KeyValue, revision: int) -> Event:
    conn.execute(_INSERT_LOG, (
        revision, live.key, False, True, live.create_revision, live.mod_revision,
        live.value, live.value,
    ))
    conn.execute("DELETE FROM current WHERE name = ?", (live.key,))
    gone = KeyValue(live.key, live.value, live.create_revision, revision)
    return Event(EventType.DELETE, gone, live)


# Rows at or below the step's top that a newer row (at or below it) supersedes,
# and tombstones that are the newest row: neither is needed to rebuild the state
# at any revision above the top. Only keys written inside the step can have such
# rows — earlier steps already cleaned the others.
_COMPACT_STEP = """
DELETE FROM log WHERE id IN (
    SELECT l.id FROM log AS l
    JOIN (SELECT name, MAX(id) AS top FROM log WHERE id > ? AND id <= ? GROUP BY name) AS t
      ON l.name = t.name
    WHERE l.id < t.top OR (l.id = t.top AND l.deleted)
)
"""


def compact_step(conn: sqlite3.Connection, after: int, upto: int) -> int:
    """Forget history in (after, upto]; returns the number of log rows removed."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        removed = conn.execute(_COMPACT_STEP, (after, upto)).rowcount
        # A kept row's previous value is history too: no watch replays a row at or
        # below the compacted revision, and an old Secret must not linger there.
        conn.execute("UPDATE log SET old_value = NULL WHERE id > ? AND id <= ? "
                     "AND old_value IS NOT NULL", (after, upto))
        conn.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (upto,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(removed)
