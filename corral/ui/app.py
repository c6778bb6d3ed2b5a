"""The dashboard's server side: the page, its static modules, and the login.

    GET  /ui/                     the single page (hash routes: #/nodes/x, #/pods/ns/x, ...)
    GET  /ui/static/...           ES modules, styles, vendored preact + htm
    POST /ui/login                {"token": ...} + X-Corral-Csrf: 1 → session cookie
    GET  /ui/login?ticket=T       one-time link from `corral dashboard` → cookie, → /ui/
    POST /ui/logout               clears the cookie
    POST /ui/tickets              (authenticated) mint a one-time login link for the
                                  caller's own token (corral/api/login_tickets.py:
                                  good once, on any master, for 5 minutes)

Everything here is open (the page holds no data); the data comes from the
ordinary API paths, which the page calls with the session cookie
(corral/api/session.py).
"""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from corral.api.auth import ANONYMOUS, TokenAuthenticator, User
from corral.api.errors import APIError, BadRequest, Unauthorized
from corral.api.login_tickets import LoginTickets
from corral.api.session import CSRF_HEADER, SessionCookie

STATIC = Path(__file__).parent / "static"
# The page runs only its own modules, talks only to its own origin, and is
# never framed; no referrer carries a ticket anywhere.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
EXPIRED_PAGE = ("<!doctype html><title>corral</title><p>This login link was already used or "
                "has expired. Run <code>corral dashboard</code> again, or "
                "<a href=\"/ui/\">log in with a token</a>.</p>")


def _status(err: APIError) -> Response:
    return Response(orjson.dumps(err.to_status()), status_code=err.code,
                    media_type="application/json")


class _Static(StaticFiles):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])  # type: ignore[call-overload]
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, with_headers)  # type: ignore[arg-type]


class Dashboard:
    """The /ui/ application. ``authenticator`` and ``session`` are None when the
    master serves plain HTTP without authentication: then no login is needed."""

    def __init__(self, authenticator: TokenAuthenticator | None,
                 session: SessionCookie | None, tickets: LoginTickets) -> None:
        self.authenticator = authenticator
        self.session = session
        self.tickets = tickets
        self.router = Router(routes=[
            Route("/", self.index),
            Route("/login", self.login_with_ticket, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/tickets", self.mint_ticket, methods=["POST"]),
            Mount("/static", app=_Static(directory=STATIC)),
        ])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)

    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    async def login(self, request: Request) -> Response:
        """A token typed into the login form, checked before it becomes a cookie."""
        if request.headers.get(CSRF_HEADER.decode()) != "1":
            return _status(BadRequest("the login request lacks its X-Corral-Csrf header"))
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _status(BadRequest("the login request body is not JSON"))
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token.strip():
            return _status(BadRequest("a token is required"))
        if self._user(token.strip()) is None:
            return _status(Unauthorized("the token is not valid for this cluster"))
        return self._logged_in(JSONResponse({"ok": True}), token.strip(), request)

    async def login_with_ticket(self, request: Request) -> Response:
        token = await self.tickets.redeem(request.query_params.get("ticket", ""))
        if token is None or self._user(token) is None:
            return HTMLResponse(EXPIRED_PAGE, status_code=401, headers=SECURITY_HEADERS)
        return self._logged_in(RedirectResponse("/ui/", status_code=303), token, request)

    async def logout(self, request: Request) -> Response:
        response = JSONResponse({"ok": True})
        if self.session is not None:
            response.headers["set-cookie"] = self.session.clear_header(_secure(request))
        return response

    async def mint_ticket(self, request: Request) -> Response:
        """A one-time link for the caller's own bearer token (never another's)."""
        user: User = request.scope.get("user", ANONYMOUS)
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if user is ANONYMOUS or scheme.lower() != "bearer" or not token.strip():
            return _status(Unauthorized("a one-time login link needs a bearer token"))
        ticket = await self.tickets.mint(token.strip())
        return JSONResponse({"path": f"/ui/login?ticket={ticket}", "expiresInSeconds":
                             int(self.tickets.ttl)}, status_code=201)

    def _user(self, token: str) -> User | None:
        if self.authenticator is None:
            return ANONYMOUS
        return self.authenticator.authenticate(f"Bearer {token}")

    def _logged_in(self, response: Response, token: str, request: Request) -> Response:
        if self.session is not None:
            response.headers["set-cookie"] = self.session.set_header(token, _secure(request))
        response.headers["cache-control"] = "no-store"
        return response


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"
