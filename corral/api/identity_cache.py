"""A small cache keyed by object identity, for work that every watcher of one
event would otherwise repeat (decoding the stored value, encoding the line).

With 1,000 watchers on a prefix, one write is one store event shared by all of
them; decoding and serialising it once instead of 1,000 times is most of the
watch fan-out cost. Entries hold a reference to their key object, so an ``id``
is never reused while its entry lives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class IdentityCache(Generic[V]):
    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[int, Any], tuple[object, V]] = OrderedDict()

    def get(self, key_object: object, variant: Any, compute: Callable[[], V]) -> V:
        """The value for (key_object, variant), computing it on first use."""
        slot = (id(key_object), variant)
        entry = self._entries.get(slot)
        if entry is not None and entry[0] is key_object:
            return entry[1]
        value = compute()
        self._entries[slot] = (key_object, value)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return value
