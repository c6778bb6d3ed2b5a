"""One-time login tickets on a real store (SQLite): good once, also when two
redeem at once, not after they expire, and expired ones do not stay behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from corral.api.login_tickets import LABEL, NAMESPACE, SECRET, LoginTickets
from corral.api.registry import Filter, Registry, list_objects
from corral.api.resources import BY_KIND
from corral.api.session import SessionCookie
from corral.store.open import open_store


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    store = await open_store(f"sqlite:///{tmp_path / 'state.db'}")
    reg = Registry(store)
    await reg.create(BY_KIND["Namespace"], None, {"metadata": {"name": NAMESPACE}})
    try:
        yield reg
    finally:
        await store.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def stored(registry: Registry) -> int:
    page = await list_objects(registry.store, SECRET, NAMESPACE, Filter(SECRET, f"{LABEL}=true"))
    return len(page.items)


async def test_a_ticket_is_good_once_on_any_master(registry: Registry) -> None:
    minted_here, other_master = LoginTickets(registry), LoginTickets(registry)
    ticket = await minted_here.mint('a token; with "odd" characters')
    page = await list_objects(registry.store, SECRET, NAMESPACE, Filter(SECRET, f"{LABEL}=true"))
    assert len(page.items) == 1 and ticket not in str(page.items)  # the link is not stored
    assert await other_master.redeem(ticket) == 'a token; with "odd" characters'
    assert await minted_here.redeem(ticket) is None
    assert await minted_here.redeem("") is None
    assert await minted_here.redeem("never-minted") is None
    assert await stored(registry) == 0


async def test_two_redeemers_at_once_one_wins(registry: Registry) -> None:
    tickets = LoginTickets(registry)
    ticket = await tickets.mint("tok")
    results = await asyncio.gather(*(LoginTickets(registry).redeem(ticket) for _ in range(5)))
    assert results.count("tok") == 1 and results.count(None) == 4


async def test_an_expired_ticket_is_refused_and_swept(registry: Registry) -> None:
    clock = Clock()
    tickets = LoginTickets(registry, ttl=300, clock=clock)
    old = await tickets.mint("old")
    clock.now += timedelta(seconds=299)
    fresh = await tickets.mint("fresh")
    assert await stored(registry) == 2
    clock.now += timedelta(seconds=2)
    await tickets.sweep()
    assert await stored(registry) == 1  # the expired one is gone without being redeemed
    assert await tickets.redeem(old) is None
    assert await tickets.redeem(fresh) == "fresh"


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
