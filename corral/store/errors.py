"""Errors a Store raises.

    StoreError
     ├── KeyExists          create() of a key that is present. Retrying will not help.
     ├── KeyNotFound        update()/delete() of a key that is absent.
     ├── RevisionMismatch   compare-and-swap lost: the key changed since it was read.
     │                      Re-read and retry.
     ├── GuardFailed        a write's guard key changed (a leader Lease renewed or
     │                      taken over). Re-check what the guard stood for.
     ├── Compacted          watch/list at a revision that compaction removed. Re-list.
     ├── WatcherTooSlow     a watcher's buffer overflowed and it was dropped. Re-watch
     │                      from the last revision seen (or re-list on Compacted).
     └── StoreUnavailable   the backend cannot be reached or is closed. Retry later.

Only the API layer maps these to HTTP Status objects.
"""

from __future__ import annotations


class StoreError(Exception):
    pass


class KeyExists(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFound(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionMismatch(StoreError):
    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"revision mismatch on {key}: expected {expected}, is {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class GuardFailed(StoreError):
    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"guard {key} changed: expected revision {expected}, is {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class Compacted(StoreError):
    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted (oldest available {compacted + 1})"
        )
        self.requested = requested
        self.compacted = compacted


class WatcherTooSlow(StoreError):
    def __init__(self, last_revision: int) -> None:
        super().__init__(f"watcher fell behind and was dropped after revision {last_revision}")
        self.last_revision = last_revision


class StoreUnavailable(StoreError):
    pass
