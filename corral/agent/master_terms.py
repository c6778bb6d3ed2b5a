"""Which Mesos master the agent takes framework tasks from: the newest term it
has heard of.

The leading Mesos master sends its fence with its feed request and with every
launch, in the header the API server reads too (corral/api/fencing.py):

    corral-leader-fence: kube-system/corral-mesos-master <holder> <term>

the term being the Lease's leaseTransitions when that master took it. The
agent keeps, per Lease, the highest term it has been sent and refuses (409) a
request of a lower term, or of the same term from another holder: a master
stopped past its Lease (SIGSTOP, a long pause, a partition) while a standby
took over launches nothing here when it wakes, once the new leader has opened
its line to this node (its first act as leader for every node it offers or has
framework tasks on) — as a Mesos agent ignores any master but the one it
detected. The refused launch then goes the store's way, where the API's own
fence refuses it too. A request without the header (a master without election,
a test) is judged by the certificate alone.
"""

from __future__ import annotations

import logging

from starlette.types import Scope

from corral.agent.framework_lane import Answer
from corral.api.errors import APIError
from corral.api.fencing import FENCE_HEADER, Fence

log = logging.getLogger(__name__)

_HEADER = FENCE_HEADER.encode()


class MasterTerms:
    def __init__(self) -> None:
        self._newest: dict[str, tuple[int, str]] = {}  # "ns/lease" → (term, holder)

    def refusal(self, scope: Scope) -> Answer | None:
        """None: a request of the newest term (or one without a fence)."""
        token = next((value for name, value in scope.get("headers") or ()
                      if name == _HEADER), None)
        if token is None:
            return None
        try:
            fence = Fence.parse(token.decode("latin-1"))
        except APIError as err:
            return 400, str(err)
        lease = f"{fence.namespace}/{fence.lease}"
        term, holder = self._newest.get(lease, (-1, ""))
        if fence.term > term:
            if term >= 0:
                log.info("a new master term lease=%s term=%d holder=%s (was %d, %s)",
                         lease, fence.term, fence.holder, term, holder)
            self._newest[lease] = (fence.term, fence.holder)
            return None
        if fence.term == term and fence.holder == holder:
            return None
        return 409, (f"Conflict: {fence.holder!r} led {lease} in term {fence.term}, but "
                     f"{holder!r} leads it in term {term}: a deposed master")
