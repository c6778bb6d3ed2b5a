"""One-time login tickets: good once, for a while, and bounded in number."""

from __future__ import annotations

from corral.api.session import SessionCookie
from corral.ui.tickets import MAX_TICKETS, Tickets


def test_a_ticket_is_good_once() -> None:
    tickets = Tickets()
    t = tickets.mint("tok")
    assert tickets.redeem(t) == "tok"
    assert tickets.redeem(t) is None
    assert tickets.redeem("never-minted") is None


def test_a_ticket_expires() -> None:
    now = [100.0]
    tickets = Tickets(ttl=300, clock=lambda: now[0])
    t = tickets.mint("tok")
    now[0] += 299
    other = tickets.mint("tok2")
    now[0] += 2
    assert tickets.redeem(t) is None
    assert tickets.redeem(other) == "tok2"


def test_outstanding_tickets_are_bounded() -> None:
    tickets = Tickets()
    first = tickets.mint("a")
    for _ in range(MAX_TICKETS):
        tickets.mint("b")
    assert tickets.redeem(first) is None


def test_the_session_cookie_round_trips_any_token() -> None:
    session = SessionCookie("abc")
    token = 'odd;token, with "quotes"'
    header = session.set_header(token)
    value = header.split(";")[0].split("=", 1)[1]
    scope = {"type": "http", "headers": [(b"x-corral-csrf", b"1"),
                                         (b"cookie", f"other=1; {session.name}={value}".encode())]}
    assert session.token(scope) == token
    assert session.token({**scope, "type": "websocket"}) is None
    assert session.token({"type": "http", "headers": scope["headers"][1:]}) is None
