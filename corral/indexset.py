"""Sets of task indices as sorted, disjoint intervals.

A task array of 100,000 indices must cost the master a handful of objects, so
indices travel and live as ranges, never as one entry per task. The text form is
Kubernetes' ``completedIndexes`` form: "1,3-5,7" (ascending, merged).

Like corral/objects.py this imports nothing of corral's, so the API (validation),
the controllers and the agent share it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator


class IndexFormatError(ValueError):
    """Text that is not an ascending list of indices and ranges ("1,3-5")."""


class IndexSet:
    """Mutable set of non-negative ints held as [start, end) intervals."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, intervals: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in intervals:
            self.add_range(start, end)

    # -- building -------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str | None) -> IndexSet:
        """From "1,3-5,7"; raises IndexFormatError on anything else."""
        out = cls()
        for part in (text or "").split(","):
            part = part.strip()
            if not part:
                continue
            low, dash, high = part.partition("-")
            try:
                start, end = int(low), int(high) if dash else int(low)
            except ValueError:
                raise IndexFormatError(f"{part!r} is not an index or a range of indices") from None
            if start < 0 or end < start:
                raise IndexFormatError(f"{part!r} is not an ascending range of "
                                       "non-negative indices")
            out.add_range(start, end + 1)
        return out

    @classmethod
    def span(cls, start: int, end: int) -> IndexSet:
        return cls([(start, end)]) if end > start else cls()

    def copy(self) -> IndexSet:
        out = IndexSet()
        out._starts, out._ends = list(self._starts), list(self._ends)
        return out

    def add(self, index: int) -> None:
        self.add_range(index, index + 1)

    def add_range(self, start: int, end: int) -> None:
        """Add [start, end), merging with touching intervals."""
        if end <= start:
            return
        i = bisect.bisect_left(self._ends, start)  # first interval ending at/after start
        j = bisect.bisect_right(self._starts, end)  # intervals starting after end stay
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def update(self, other: IndexSet) -> None:
        for start, end in other.intervals():
            self.add_range(start, end)

    def remove_range(self, start: int, end: int) -> None:
        if end <= start:
            return
        i = bisect.bisect_right(self._ends, start)
        j = bisect.bisect_left(self._starts, end)
        keep: list[tuple[int, int]] = []
        for k in range(i, j):
            if self._starts[k] < start:
                keep.append((self._starts[k], start))
            if self._ends[k] > end:
                keep.append((end, self._ends[k]))
        self._starts[i:j] = [s for s, _ in keep]
        self._ends[i:j] = [e for _, e in keep]

    def discard(self, index: int) -> None:
        self.remove_range(index, index + 1)

    def difference_update(self, other: IndexSet) -> None:
        for start, end in other.intervals():
            self.remove_range(start, end)

    def __sub__(self, other: IndexSet) -> IndexSet:
        out = self.copy()
        out.difference_update(other)
        return out

    def __or__(self, other: IndexSet) -> IndexSet:
        out = self.copy()
        out.update(other)
        return out

    def __and__(self, other: IndexSet) -> IndexSet:
        return self - (self - other)

    def take_first(self, count: int) -> IndexSet:
        """Remove and return the lowest ``count`` indices (fewer if it holds fewer)."""
        taken = IndexSet()
        while count > 0 and self._starts:
            start, end = self._starts[0], self._ends[0]
            stop = min(end, start + count)
            taken.add_range(start, stop)
            self.remove_range(start, stop)
            count -= stop - start
        return taken

    def take_last(self, count: int) -> IndexSet:
        """Remove and return the highest ``count`` indices."""
        taken = IndexSet()
        while count > 0 and self._starts:
            start, end = self._starts[-1], self._ends[-1]
            first = max(start, end - count)
            taken.add_range(first, end)
            self.remove_range(first, end)
            count -= end - first
        return taken

    # -- reading --------------------------------------------------------------------

    def intervals(self) -> Iterator[tuple[int, int]]:
        return zip(list(self._starts), list(self._ends), strict=True)

    def __iter__(self) -> Iterator[int]:
        for start, end in self.intervals():
            yield from range(start, end)

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int):
            return False
        i = bisect.bisect_right(self._starts, index) - 1
        return i >= 0 and index < self._ends[i]

    def __len__(self) -> int:
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IndexSet) and (self._starts, self._ends) == (
            other._starts, other._ends)

    def first(self) -> int | None:
        return self._starts[0] if self._starts else None

    def max(self) -> int | None:
        return self._ends[-1] - 1 if self._ends else None

    def format(self) -> str:
        """Kubernetes' compressed form: "1,3-5,7" ("" when empty)."""
        return ",".join(str(s) if e == s + 1 else f"{s}-{e - 1}"
                        for s, e in zip(self._starts, self._ends, strict=True))

    def __repr__(self) -> str:
        return f"IndexSet({self.format()!r})"
