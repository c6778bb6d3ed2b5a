"""One-time login links (`corral dashboard`): a ticket is a random secret that
stands for a token for a few minutes and can be exchanged for the session
cookie exactly once.

Tickets live in the memory of the master that minted them (they are for the
person at the terminal, who opens the link at once); a restarted master has
none, and the link then says it has expired.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

TICKET_SECONDS = 300.0
MAX_TICKETS = 256  # outstanding at once; the oldest is dropped beyond it


class Tickets:
    def __init__(self, ttl: float = TICKET_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._tickets: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def mint(self, token: str) -> str:
        """A new ticket for ``token``."""
        self._expire()
        ticket = secrets.token_urlsafe(32)
        self._tickets[ticket] = (token, self.clock() + self.ttl)
        while len(self._tickets) > MAX_TICKETS:
            self._tickets.popitem(last=False)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The token the ticket stands for, once; None if unknown, used or expired."""
        self._expire()
        entry = self._tickets.pop(ticket, None)
        return entry[0] if entry is not None else None

    def _expire(self) -> None:
        now = self.clock()
        for ticket in [t for t, (_, until) in self._tickets.items() if until <= now]:
            del self._tickets[ticket]
