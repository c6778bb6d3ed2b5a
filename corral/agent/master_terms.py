"""Which Mesos master the agent takes framework tasks from: the newest term it
has heard of.

The leading Mesos master sends its fence with its feed request and with every
launch, in the header the API server reads too (corral/api/fencing.py):

    corral-leader-fence: kube-system/corral-mesos-master <holder> <term>

the term being the Lease's leaseTransitions when that master took it. The
agent keeps, per Lease, the highest term it has been sent and refuses (409) a
request of a lower term, or of the same term from another holder: a master
stopped past its Lease (SIGSTOP, a long pause, a partition) while a standby
took over launches nothing here when it wakes — as a Mesos agent ignores any
master but the one it detected. The agent hears of a new term from the new
leader's own requests and from its watch on the Lease (``observe``; nodes may
list and watch that one Lease), whichever comes first. The refused launch then
goes the store's way, where the API's own fence refuses it too. A request
without the header (a master without election, a test) is judged by the
certificate alone.
"""

from __future__ import annotations

import logging

from starlette.types import Scope

from corral.agent.framework_lane import Answer
from corral.api.errors import APIError
from corral.api.fencing import FENCE_HEADER, Fence
from corral.api.rbac_policy import MESOS_MASTER_LEASE
from corral.client.http import Client
from corral.client.informer import Informer, key_of
from corral.client.leaderelection import LEASE_NAMESPACE
from corral.objects import Obj, spec

log = logging.getLogger(__name__)

_HEADER = FENCE_HEADER.encode()


class MasterTerms:
    def __init__(self) -> None:
        self._newest: dict[str, tuple[int, str]] = {}  # "ns/lease" → (term, holder)
        self._lease: Informer | None = None

    def watch(self, client: Client) -> None:
        """Follow the Mesos master's Lease (until ``stop``)."""
        self._lease = Informer(client, "Lease", LEASE_NAMESPACE,
                               field_selector=f"metadata.name={MESOS_MASTER_LEASE}")
        self._lease.add_handler(self.observe, lambda _old, new: self.observe(new))
        self._lease.start()

    async def stop(self) -> None:
        if self._lease is not None:
            await self._lease.stop()

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
        if self._learn(lease, fence.term, fence.holder):
            return None
        term, holder = self._newest[lease]
        return 409, (f"Conflict: {fence.holder!r} led {lease} in term {fence.term}, but "
                     f"{holder!r} leads it in term {term}: a deposed master")

    def observe(self, lease: Obj) -> None:
        """The Lease as the agent's watch shows it: a newer term there deposes the
        old holder here before the new one has called."""
        holder = str(spec(lease).get("holderIdentity") or "")
        if holder:  # "" : given up, nobody leads; the last holder's term stands
            self._learn(key_of(lease), int(spec(lease).get("leaseTransitions") or 0), holder)

    def _learn(self, lease: str, term: int, holder: str) -> bool:
        """Whether (term, holder) is the newest of ``lease`` (now, if newer)."""
        newest, by = self._newest.get(lease, (-1, ""))
        if term > newest:
            if newest >= 0:
                log.info("a new master term lease=%s term=%d holder=%s (was %d, %s)",
                         lease, term, holder, newest, by)
            self._newest[lease] = (term, holder)
            return True
        return term == newest and holder == by
