"""The validated model of each object this server last wrote, by key and revision.

An update validates the new object against the old one, which meant decoding the
stored object into its model once more on every write — for a framework's Alloc
(every task of it in spec and status, written every half second) as much work as
decoding the new one. The model the previous write validated is that same
object, when the bytes it was stored as are exactly its encoding (no admission
plugin changed the object after validation), so it is kept here and used as
the old model while the key's revision is still the one it was stored at. A
revision another writer (another master) made is simply not found: decoded, as
before.

Parts of a new object equal to the old one's (the status an update of the main
resource keeps, the spec a status write keeps) take the old model's part as it
is rather than being validated again: the same stored, validated values. Models
are shared this way and must not be changed after validation (validators read
them; defaulting runs before, and is idempotent on a stored object).
"""

from __future__ import annotations

from collections import OrderedDict

from corral.api.kinds.base import TypedObject

CAPACITY = 512  # objects; the busiest writes hit
MAX_BYTES = 256 * 1024  # a larger object is decoded again rather than held
# The stored size of all the objects held: a model costs ~10× its JSON, so this
# bounds the cache near 100 MB however large the objects written are.
MAX_TOTAL_BYTES = 8 * 1024 * 1024


class ModelCache:
    def __init__(self, capacity: int = CAPACITY, max_total: int = MAX_TOTAL_BYTES) -> None:
        self._capacity = capacity
        self._max_total = max_total
        self._total = 0
        self._entries: OrderedDict[str, tuple[int, TypedObject, int]] = OrderedDict()

    def get(self, key: str, revision: int) -> TypedObject | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != revision:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: str, revision: int, model: TypedObject | None, size: int) -> None:
        """``model`` as stored at ``revision`` in ``size`` bytes (None, or too
        large: forget the key). The least recently used go past the bounds."""
        self.forget(key)
        if model is None or size > MAX_BYTES:
            return
        self._entries[key] = (revision, model, size)
        self._total += size
        while len(self._entries) > self._capacity or self._total > self._max_total:
            _, (_, _, gone) = self._entries.popitem(last=False)
            self._total -= gone

    def forget(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._total -= entry[2]
