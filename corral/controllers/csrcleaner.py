"""Old CertificateSigningRequests removed, as kube-controller-manager's csrcleaner
(pkg/controller/certificates/cleaner) removes them:

    approved and issued ─► 1 h after the Approved condition's lastUpdateTime
    denied, failed      ─► 1 h after that condition's lastUpdateTime
    pending (no condition at all) ─► 24 h after its creation
    issued, and the certificate's notAfter has passed ─► then
    (approved but never issued: kept, as Kubernetes keeps it)

Kubernetes lists every request once an hour; here each request is looked at when
it appears or changes and queued again for the moment it becomes removable
(``removable_at``), so a node whose certificates rotate every few minutes leaves
no trail of them. Times come from the injected Clock, so the rules are tested
without waiting an hour.
"""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import datetime, timedelta

from cryptography import x509

from corral.api.errors import Conflict, NotFound
from corral.client.clock import Clock, RealClock
from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller
from corral.controllers.informers import SharedInformers
from corral.objects import Obj, meta, name_of, parse_time, status, uid_of

log = logging.getLogger("corral.controllers")

DECIDED_KEPT = timedelta(hours=1)  # approvedExpiration, deniedExpiration, failedExpiration
PENDING_KEPT = timedelta(hours=24)  # pendingExpiration


def certificate_end(csr: Obj) -> datetime | None:
    """The issued certificate's notAfter; None without one or when it does not parse
    (Kubernetes' isExpired is false for those)."""
    encoded = status(csr).get("certificate")
    if not encoded:
        return None
    try:
        pem = base64.b64decode(str(encoded), validate=True)
        return x509.load_pem_x509_certificate(pem).not_valid_after_utc
    except (binascii.Error, ValueError):
        return None


def removable_at(csr: Obj) -> datetime | None:
    """When the cleaner deletes this request, or None if it never does."""
    st = status(csr)
    conditions = st.get("conditions") or []
    issued = bool(st.get("certificate"))
    times: list[datetime] = []
    if not conditions:
        created = parse_time(meta(csr).get("creationTimestamp"))
        if created is not None:
            times.append(created + PENDING_KEPT)
    for cond in conditions:
        kind = cond.get("type")
        updated = parse_time(cond.get("lastUpdateTime"))
        decided = kind in ("Denied", "Failed") or (kind == "Approved" and issued)
        if decided and updated is not None:
            times.append(updated + DECIDED_KEPT)
        if kind == "Approved" and issued and (end := certificate_end(csr)) is not None:
            times.append(end)
    return min(times, default=None)


class CsrCleanerController(Controller):
    name = "csrcleaner"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 clock: Clock | None = None) -> None:
        super().__init__(client, informers, recorder, workers=1)
        self.clock = clock or RealClock()
        self.requests = informers.get("CertificateSigningRequest")
        self.requests.add_handler(self.enqueue, lambda old, new: self.enqueue(new))

    async def reconcile(self, key: str) -> None:
        csr = self.requests.get_by_key(key)
        if csr is None:
            return
        when = removable_at(csr)
        if when is None:
            return
        left = (when - self.clock.now()).total_seconds()
        if left > 0:
            self.requeue_after(key, left)
            return
        try:
            await self.client.delete("CertificateSigningRequest", name_of(csr),
                                     preconditions={"uid": uid_of(csr)})
        except (NotFound, Conflict):
            return  # gone already, or a namesake made since
        log.info("certificate signing request cleaned csr=%s", name_of(csr))
