"""The node-lifecycle controller's timing rules, apart from its I/O (as nomad's
heartbeat.go keeps its TTL timers apart): when a node counts as unreachable,
when its pods are due for eviction, when a deleted pod counts as stuck.

Every duration is measured on the injected Clock, from the moment WE saw
something (a Lease renewal, a node going silent, a delete), never by comparing
the agent's timestamps with ours. Tests drive it with a FakeClock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.client.clock import Clock


@dataclass
class NodeHealth:
    clock: Clock
    grace_period: float  # silence after which a node is unreachable
    eviction_timeout: float  # unreachable this long: its pods go
    _seen: dict[str, tuple[str, float]] = field(default_factory=dict)  # renewTime, seen at
    _unreachable_since: dict[str, float] = field(default_factory=dict)
    _deleted_at: dict[str, float] = field(default_factory=dict)  # pod uid → our delete

    # -- renewals ------------------------------------------------------------------

    def renewed(self, node: str, renew_time: str) -> bool:
        """Note the Lease's renewTime; True when it changed since we last looked."""
        if self._seen.get(node, ("", 0.0))[0] == renew_time:
            return False
        self._seen[node] = (renew_time, self.clock.monotonic())
        return True

    def silent_for(self, node: str) -> float:
        """Seconds since we saw the node's Lease renewed; a node never seen
        renewing starts its grace period now (no false alarm after a restart)."""
        seen = self._seen.get(node)
        if seen is None:
            seen = self._seen[node] = ("", self.clock.monotonic())
        return self.clock.monotonic() - seen[1]

    def is_unreachable(self, node: str) -> bool:
        return self.silent_for(node) > self.grace_period

    def forget(self, node: str) -> None:
        self._seen.pop(node, None)
        self._unreachable_since.pop(node, None)

    # -- an unreachable node ---------------------------------------------------------

    def unreachable_for(self, node: str) -> float:
        """Seconds the node has been unreachable, counted from the first look
        that found it so."""
        since = self._unreachable_since.setdefault(node, self.clock.monotonic())
        return self.clock.monotonic() - since

    def was_unreachable(self, node: str) -> bool:
        """Whether the node counted as unreachable at our last look (``back`` not
        yet called)."""
        return node in self._unreachable_since

    def back(self, node: str) -> bool:
        """The node is reachable again; True if it had been unreachable."""
        return self._unreachable_since.pop(node, None) is not None

    def eviction_due(self, unreachable_for: float, tolerated: float | None) -> bool:
        """Whether a pod that tolerates the unreachable taint for ``tolerated``
        seconds (None: not at all) must go now; never before eviction_timeout."""
        allowed = self.eviction_timeout if tolerated is None else max(
            tolerated, self.eviction_timeout)
        return unreachable_for >= allowed

    # -- pods we deleted -----------------------------------------------------------

    def deleted(self, uid: str) -> None:
        self._deleted_at[uid] = self.clock.monotonic()

    def stuck(self, uid: str) -> bool:
        """A deleting pod on an unreachable node still there a grace period after
        we first saw it deleting: no agent will ever confirm it stopped."""
        deleted = self._deleted_at.setdefault(uid, self.clock.monotonic())
        return self.clock.monotonic() - deleted >= self.grace_period

    def gone(self, uid: str) -> None:
        """The pod is deleted for good (or forced): stop timing it."""
        self._deleted_at.pop(uid, None)
