"""Bearer tokens: the token file, the authenticator, and the ASGI middleware."""

from __future__ import annotations

import asyncio
import csv
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from corral.api.auth import (
    ANONYMOUS,
    DEFAULT_OPEN_PATHS,
    AuthMiddleware,
    TokenAuthenticator,
    User,
    ensure_admin_token,
)

UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


async def _whoami(request: Request) -> Response:
    user: User = request.scope["user"]
    return JSONResponse({"name": user.name, "groups": list(user.groups)})


def _app(authenticator: TokenAuthenticator) -> ASGIApp:
    routes = [Route(path, _whoami) for path in ("/healthz", "/version", "/api/v1/pods")]
    return AuthMiddleware(Starlette(routes=routes), authenticator,
                          open_paths=DEFAULT_OPEN_PATHS)


@pytest.fixture
def token_file(tmp_path: Path) -> tuple[Path, str]:
    return tmp_path / "token", ensure_admin_token(tmp_path)


@pytest.fixture
async def client(token_file: tuple[Path, str]) -> AsyncIterator[httpx.AsyncClient]:
    app = _app(TokenAuthenticator(token_file[0]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://corral") as c:
        yield c


def test_admin_token_is_made_once_private_and_reused(tmp_path: Path) -> None:
    token = ensure_admin_token(tmp_path)
    path = tmp_path / "token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 43  # 32 random bytes, base64url
    assert ensure_admin_token(tmp_path) == token
    assert ensure_admin_token(tmp_path / "elsewhere") != token


def test_token_file_is_kube_apiserver_token_auth_csv(token_file: tuple[Path, str]) -> None:
    path, token = token_file
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows == [[token, "admin", "admin", "system:masters,system:authenticated"]]


def test_authenticator_maps_bearer_tokens_to_users(token_file: tuple[Path, str]) -> None:
    path, token = token_file
    auth = TokenAuthenticator(path)
    user = auth.authenticate(f"Bearer {token}")
    assert user == User("admin", "admin", ("system:masters", "system:authenticated"))
    assert auth.authenticate(f"bearer  {token} ") == user
    for bad in (None, "", "Bearer", f"Basic {token}", token, f"Bearer {token}x",
                f"Bearer {token[:-1]}", "Bearer wrong"):
        assert auth.authenticate(bad) is None, bad


def test_tokens_added_to_the_file_later_are_picked_up(token_file: tuple[Path, str]) -> None:
    path, _ = token_file
    auth = TokenAuthenticator(path)
    assert auth.authenticate("Bearer agent-secret") is None
    with path.open("a") as f:
        f.write('# agents\nagent-secret,node-1,uid-1,"system:nodes,x"\n')
    assert auth.authenticate("Bearer agent-secret") == User("node-1", "uid-1",
                                                           ("system:nodes", "x"))
    assert ensure_admin_token(path.parent) != "agent-secret"  # admin still found by name


def test_a_missing_token_file_authenticates_nobody(tmp_path: Path) -> None:
    assert TokenAuthenticator(tmp_path / "absent").authenticate("Bearer x") is None


def test_a_rewritten_token_file_drops_old_tokens(token_file: tuple[Path, str]) -> None:
    path, token = token_file
    auth = TokenAuthenticator(path)
    assert auth.authenticate(f"Bearer {token}") is not None
    os.replace(_write(path.with_name("new"), "other,bob,,\n"), path)
    assert auth.authenticate(f"Bearer {token}") is None
    assert auth.authenticate("Bearer other") == User("bob", "", ())


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


async def test_requests_without_a_valid_token_get_a_401_status(
        client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YTpi"}):
        r = await client.get("/api/v1/pods", headers=headers)
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/json"
        assert r.json() == UNAUTHORIZED
        r = await client.post("/api/v1/pods", headers=headers, json={"kind": "Pod"})
        assert r.status_code == 401


async def test_a_valid_token_reaches_the_app_with_its_user(
        client: httpx.AsyncClient, token_file: tuple[Path, str]) -> None:
    r = await client.get("/api/v1/pods", headers={"Authorization": f"Bearer {token_file[1]}"})
    assert r.status_code == 200
    assert r.json()["name"] == "admin"


async def test_open_paths_serve_anonymous_and_known_users(
        client: httpx.AsyncClient, token_file: tuple[Path, str]) -> None:
    for path in ("/healthz", "/version"):
        r = await client.get(path)
        assert r.status_code == 200
        assert r.json() == {"name": ANONYMOUS.name, "groups": ["system:unauthenticated"]}
    r = await client.get("/version", headers={"Authorization": f"Bearer {token_file[1]}"})
    assert r.json()["name"] == "admin"


async def test_streamed_responses_are_not_buffered(token_file: tuple[Path, str]) -> None:
    release = asyncio.Event()

    async def stream(request: Request) -> Response:
        async def events() -> AsyncIterator[bytes]:
            yield b'{"type":"ADDED"}\n'
            await release.wait()
            yield b'{"type":"MODIFIED"}\n'
        return StreamingResponse(events())

    path, token = token_file
    app = AuthMiddleware(Starlette(routes=[Route("/api/v1/pods", stream)]),
                         TokenAuthenticator(path))
    sent: asyncio.Queue[Message] = asyncio.Queue()
    scope = _http_scope("/api/v1/pods", [(b"authorization", f"Bearer {token}".encode())])
    task = asyncio.create_task(app(scope, _no_body_then_wait(), sent.put))
    # A buffering middleware would hold these until the stream ends: never, here.
    assert (await asyncio.wait_for(sent.get(), 10))["status"] == 200
    assert (await asyncio.wait_for(sent.get(), 10))["body"] == b'{"type":"ADDED"}\n'
    release.set()
    assert (await sent.get())["body"] == b'{"type":"MODIFIED"}\n'
    await task


async def test_websocket_without_token_is_closed_before_the_app(tmp_path: Path) -> None:
    reached: list[str] = []

    async def app(scope: object, receive: object, send: object) -> None:
        reached.append("app")

    auth = AuthMiddleware(app, TokenAuthenticator(tmp_path / "token"))
    sent: list[Message] = []

    async def record(message: Message) -> None:
        sent.append(message)

    scope = _http_scope("/api/v1/namespaces/d/pods/p/exec", []) | {"type": "websocket"}
    await auth(scope, _no_body_then_wait(), record)
    assert sent == [{"type": "websocket.close", "code": 1008}] and reached == []


def _no_body_then_wait() -> Callable[[], Awaitable[Message]]:
    """An ASGI receive: an empty body, then nothing until the test ends (a client
    that keeps its connection open)."""
    calls = 0

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


def _http_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 6443)}
