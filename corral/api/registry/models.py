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

CAPACITY = 512  # objects; the busiest writes hit, a model costs ~10× its JSON
MAX_BYTES = 256 * 1024  # a larger object is decoded again rather than held


class ModelCache:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[int, TypedObject]] = OrderedDict()

    def get(self, key: str, revision: int) -> TypedObject | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != revision:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: str, revision: int, model: TypedObject | None, size: int) -> None:
        """``model`` as stored at ``revision`` (None, or too large: forget the key)."""
        if model is None or size > MAX_BYTES:
            self._entries.pop(key, None)
            return
        self._entries[key] = (revision, model)
        self._entries.move_to_end(key)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
