"""Room held for preemptors: pods (or Allocs) nominated to a node after their
victims were evicted, as kube-scheduler holds it for nominated pods.

Without it, whatever is pending when the victims leave may take their room
first — a Job's replacement for the very Alloc that was preempted, say — and the
preemptor preempts again, round after round. So while a lower-priority pod is
decided, every higher-priority nominee sits in the snapshot on its nominated node
(keyed by its own key, removed right after: decisions are synchronous, nothing
else sees the snapshot meanwhile).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from corral.scheduler.requirements import PodRequirements
from corral.scheduler.snapshot import ClusterSnapshot


class Nominees:
    def __init__(self) -> None:
        self._by_key: dict[str, tuple[str, PodRequirements]] = {}  # key → (node, req)

    def set(self, key: str, node: str | None, req: PodRequirements) -> None:
        if node:
            self._by_key[key] = (node, req)
        else:
            self._by_key.pop(key, None)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)

    @contextmanager
    def held(self, snapshot: ClusterSnapshot, req: PodRequirements) -> Iterator[None]:
        """The snapshot with the room of nominees that outrank ``req``."""
        placed: list[str] = []
        for key, (node, nominee) in self._by_key.items():
            if key == req.key or nominee.priority <= req.priority:
                continue
            if snapshot.node(node) is None or snapshot.pod(key) is not None:
                continue
            snapshot.add_pod(nominee, node)
            placed.append(key)
        try:
            yield
        finally:
            for key in placed:
                snapshot.remove_pod(key)
