"""One-time login tickets for the dashboard (`corral dashboard`), kept where
every master sees them: each is a Secret in kube-system, so a link minted
through one master can be redeemed through another (several masters share one
store behind one address), and exactly once.

    mint(token)    ─► Secret kube-system/login-ticket-<sha256(ticket)>: the token,
                      its expiry; the ticket itself is only in the link
    redeem(ticket) ─► read the Secret, delete it on its resourceVersion (a
                      compare-and-swap: of two redeemers, one wins) ─► its token
                      if it had not expired
    every mint and redeem first deletes the tickets that expired unused

The Secret is named by the ticket's hash, so a reader of Secrets learns no link.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from corral.api.errors import Conflict, NotFound
from corral.api.registry import Filter, Registry, list_objects
from corral.api.resources import BY_KIND
from corral.objects import Obj, annotations_of, parse_time, rfc3339

NAMESPACE = "kube-system"
LABEL = "corral.dev/login-ticket"
EXPIRES = "corral.dev/expires"
SECRET_TYPE = "corral.dev/login-ticket"
TICKET_SECONDS = 300.0
SECRET = BY_KIND["Secret"]


def _name(ticket: str) -> str:
    return "login-ticket-" + hashlib.sha256(ticket.encode()).hexdigest()[:40]


class LoginTickets:
    def __init__(self, registry: Registry, ttl: float = TICKET_SECONDS,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.registry = registry
        self.ttl = ttl
        self.clock = clock

    async def mint(self, token: str) -> str:
        """A new ticket that stands for ``token`` until it expires or is redeemed."""
        await self.sweep()
        ticket = secrets.token_urlsafe(32)
        expires = self.clock() + timedelta(seconds=self.ttl)
        await self.registry.create(SECRET, NAMESPACE, {
            "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": _name(ticket), "namespace": NAMESPACE,
                         "labels": {LABEL: "true"}, "annotations": {EXPIRES: rfc3339(expires)}},
            "data": {"token": base64.b64encode(token.encode()).decode()},
        })
        return ticket

    async def redeem(self, ticket: str) -> str | None:
        """The token, once; None for a ticket unknown, already used or expired."""
        await self.sweep()
        if not ticket:
            return None
        found = await self.registry.find(SECRET, NAMESPACE, _name(ticket))
        if found is None or not await self._take(found) or self._expired(found):
            return None
        try:
            return base64.b64decode(str((found.get("data") or {}).get("token", ""))).decode()
        except (ValueError, UnicodeDecodeError):
            return None

    async def sweep(self) -> None:
        """Delete the tickets that expired unused."""
        page = await list_objects(self.registry.store, SECRET, NAMESPACE,
                                  Filter(SECRET, f"{LABEL}=true"))
        for obj in page.items:
            if self._expired(obj):
                await self._take(obj)

    async def _take(self, obj: Obj) -> bool:
        try:
            await self.registry.remove(SECRET, obj)
        except (NotFound, Conflict):
            return False  # someone else took it first
        return True

    def _expired(self, obj: Obj) -> bool:
        expires = parse_time(annotations_of(obj).get(EXPIRES, ""))
        return expires is None or expires <= self.clock()
