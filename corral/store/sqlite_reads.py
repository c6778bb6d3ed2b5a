"""Read queries, each in one read transaction so its rows and the revision it
reports come from the same snapshot. These run on reader threads.

Key ranges: a prefix p selects names in [p, prefix_end(p)). SQLite compares TEXT
as UTF-8 bytes, which orders like Python compares str (by code point).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from corral.store.base import Event, EventType, KeyValue, ListResult
from corral.store.errors import Compacted
from corral.store.sqlite_schema import read_revisions

_MAX_CHAR = 0x10FFFF
_INT64_MAX = 2**63 - 1
_SURROGATES = range(0xD800, 0xE000)


def prefix_end(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix``; None if
    there is none (the prefix is empty or all maximal characters)."""
    trimmed = prefix.rstrip(chr(_MAX_CHAR))
    if not trimmed:
        return None
    nxt = ord(trimmed[-1]) + 1
    if nxt in _SURROGATES:  # not encodable in UTF-8; the next valid character
        nxt = _SURROGATES.stop
    return trimmed[:-1] + chr(nxt)


@dataclass(frozen=True, slots=True)
class KeyRange:
    low: str  # inclusive, or exclusive when ``after`` is set
    high: str | None  # exclusive; None: unbounded
    after: bool

    @classmethod
    def of(cls, prefix: str, start_after: str | None = None) -> KeyRange:
        if start_after is not None and start_after >= prefix:
            return cls(start_after, prefix_end(prefix), True)
        return cls(prefix, prefix_end(prefix), False)

    def where(self, column: str) -> tuple[str, list[Any]]:
        sql = f"{column} {'>' if self.after else '>='} ?"
        params: list[Any] = [self.low]
        if self.high is not None:
            sql += f" AND {column} < ?"
            params.append(self.high)
        return sql, params


def get(conn: sqlite3.Connection, key: str) -> KeyValue | None:
    row = conn.execute(
        "SELECT create_revision, mod_revision, value FROM current WHERE name = ?", (key,)
    ).fetchone()
    return None if row is None else KeyValue(key, row[2], row[0], row[1])


def revisions(conn: sqlite3.Connection) -> tuple[int, int]:
    """(current revision, compacted revision)."""
    with _snapshot(conn):
        return read_revisions(conn)


def list_range(conn: sqlite3.Connection, keys: KeyRange, limit: int,
               revision: int) -> ListResult:
    with _snapshot(conn):
        current, compacted = read_revisions(conn)
        if revision <= 0 or revision >= current:
            rows = _list_current(conn, keys, limit)
            revision = current
        elif revision < compacted:
            raise Compacted(revision, compacted)
        else:
            rows = _list_at(conn, keys, limit, revision)
    items = [KeyValue(name, value, create, mod) for name, value, create, mod in rows]
    more = bool(limit) and len(items) > limit
    return ListResult(items[:limit] if more else items, revision, more)


def _one_more(limit: int) -> int:
    """The rows to read for a page of ``limit``: one more, to know whether another
    page follows, never past SQLite's int64 (limit may be int64's largest)."""
    return min(limit, _INT64_MAX - 1) + 1


def _list_current(conn: sqlite3.Connection, keys: KeyRange, limit: int) -> list[Any]:
    where, params = keys.where("name")
    sql = (f"SELECT name, value, create_revision, mod_revision FROM current "
           f"WHERE {where} ORDER BY name")
    if limit:
        sql += " LIMIT ?"
        params.append(_one_more(limit))
    return conn.execute(sql, params).fetchall()


def _list_at(conn: sqlite3.Connection, keys: KeyRange, limit: int,
             revision: int) -> list[Any]:
    # The newest row of each key at or below ``revision``; keys whose newest row
    # is a tombstone did not exist then. Compaction keeps exactly these rows.
    where, params = keys.where("name")
    sql = (f"SELECT l.name, l.value, l.create_revision, l.id FROM log AS l "
           f"JOIN (SELECT MAX(id) AS id FROM log WHERE {where} AND id <= ? GROUP BY name) AS t "
           f"ON l.id = t.id WHERE NOT l.deleted ORDER BY l.name")
    params.append(revision)
    if limit:
        sql += " LIMIT ?"
        params.append(_one_more(limit))
    return conn.execute(sql, params).fetchall()


def history_page(conn: sqlite3.Connection, prefix: str, after: int, limit: int, *,
                 first: bool) -> list[Event]:
    """Up to ``limit`` events under ``prefix`` with revision > ``after``, in order.
    Raises Compacted when history above ``after`` may be gone (``after`` below
    the compacted revision; at it, every later event is still there)."""
    where, params = KeyRange.of(prefix).where("name")
    with _snapshot(conn):
        _, compacted = read_revisions(conn)
        if after < compacted:
            raise Compacted(after, compacted)
        rows = conn.execute(
            f"SELECT id, name, created, deleted, create_revision, prev_revision, value, "
            f"old_value FROM log WHERE id > ? AND {where} ORDER BY id LIMIT ?",
            [after, *params, limit],
        ).fetchall()
    return [_event(*row) for row in rows]


def _event(rev: int, name: str, created: int, deleted: int, create_rev: int,
           prev_rev: int, value: bytes, old_value: bytes | None) -> Event:
    prev = None if created else KeyValue(name, old_value or b"", create_rev, prev_rev)
    kind = EventType.DELETE if deleted else EventType.PUT
    return Event(kind, KeyValue(name, value, create_rev, rev), prev)


@contextlib.contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction: every statement inside sees the same committed state."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")
