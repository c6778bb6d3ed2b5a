"""The SQLite schema (kine's one log table) and how connections are opened.

    log      one row per revision, append-only except for compaction:
             id = the revision; created/deleted flags; create_revision and
             prev_revision; value (for a delete: the last value) and old_value
             (the value before this change) so every row is a complete Event
    current  the live value of each key, rewritten in the same transaction as
             the log row; serves get/list at the current revision without
             scanning history
    meta     name -> integer: 'compacted' (history at and below it is gone)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL,
    old_value BLOB
);
CREATE INDEX IF NOT EXISTS log_name_id ON log (name, id);
CREATE TABLE IF NOT EXISTS current (
    name TEXT PRIMARY KEY,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('compacted', 0);
"""

# Revision as the readers see it: compaction can delete the newest log rows
# (tombstones), so the compacted mark is a floor for the current revision.
REVISIONS_SQL = """
SELECT MAX(COALESCE((SELECT MAX(id) FROM log), 0), value), value
FROM meta WHERE name = 'compacted'
"""


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT ourselves), WAL
    journal, synchronous=FULL so a commit is on disk before it returns, and
    secure_delete."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    # Deleted content (compacted history: old values of Secrets among them) is
    # overwritten with zeros, not left in free pages of the file.
    conn.execute("PRAGMA secure_delete=ON")
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def read_revisions(conn: sqlite3.Connection) -> tuple[int, int]:
    """(current revision, compacted revision)."""
    current, compacted = conn.execute(REVISIONS_SQL).fetchone()
    return int(current), int(compacted)
