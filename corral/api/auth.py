"""Bearer-token authentication for the API server.

The token file has kube-apiserver's ``--token-auth-file`` format, one token a line:

    token,user,uid,"group1,group2"

First start writes one line for the admin (group system:masters); more lines can be
added by hand and are picked up without a restart (the file is re-read when its
mtime changes).

    request ─► AuthMiddleware ─► client certificate (x509_auth.py), else bearer token (Authorization header, or else the
                                 dashboard's session cookie with its CSRF header:
                                 corral/api/session.py)
                                    │
                        valid? ──yes──► app, scope["user"] = User
                                    │ no
                        open path (or under an open prefix, e.g. /ui/)?
                                    ├─yes─► app, user anonymous
                                    └─no──► 401 Status "Unauthorized"
"""

from __future__ import annotations

import base64
import contextvars
import csv
import hmac
import io
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api.errors import Unauthorized
from corral.api.session import SessionCookie
from corral.api.x509_auth import certificate_identity

ADMIN_USER = "admin"
AUTHENTICATED = "system:authenticated"
ADMIN_GROUPS = ("system:masters", "system:authenticated")
TOKEN_BYTES = 32

# Kubernetes lets system:unauthenticated read these by default; /version also
# because kubectl's dispatcher asks it before it has picked a client binary.
DEFAULT_OPEN_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/version", "/version/"})


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = field(default=())
    # Kubernetes' user.Info extra: (key, values) pairs, e.g. the pod a
    # ServiceAccount token is bound to (authentication.kubernetes.io/pod-name).
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())


ANONYMOUS = User("system:anonymous", "", ("system:unauthenticated",))
# Who sent the request being served, for the parts below the handlers that record
# or check it (a CertificateSigningRequest's requester); None outside a request.
REQUESTER: contextvars.ContextVar[User | None] = contextvars.ContextVar("requester",
                                                                       default=None)


# The control plane's own components: each has its token in the token file and a
# ClusterRole of what it needs (rbac_policy.py), never the admin's.
SCHEDULER = User("system:kube-scheduler", "system:kube-scheduler")
CONTROLLER_MANAGER = User("system:kube-controller-manager", "system:kube-controller-manager")
# The Mesos scheduler API's master (corral/offers/): frameworks, their Allocs, reviews.
MESOS_MASTER = User("system:corral-mesos-master", "system:corral-mesos-master")


def ensure_admin_token(data_dir: Path) -> str:
    """The admin's bearer token: read from data_dir/token, made on first start."""
    return ensure_user_token(data_dir, User(ADMIN_USER, ADMIN_USER, ADMIN_GROUPS))


def ensure_user_token(data_dir: Path, user: User) -> str:
    """The token file's token for ``user`` (by name), added on first start."""
    path = data_dir / "token"
    if path.exists():
        for entry in _parse_token_file(path.read_text()):
            if entry.user.name == user.name:
                return entry.token
    token = secrets.token_urlsafe(TOKEN_BYTES)
    line = _format_line(token, user)
    data_dir.mkdir(parents=True, exist_ok=True)
    existing = path.read_text() if path.exists() else ""
    write_private(path, existing + line)
    return token


@dataclass(frozen=True)
class _Entry:
    token: str
    user: User


def _parse_token_file(text: str) -> list[_Entry]:
    entries: list[_Entry] = []
    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2:
            continue  # a token without a user cannot be used
        token, name = row[0].strip(), row[1].strip()
        uid = row[2].strip() if len(row) > 2 else ""
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        entries.append(_Entry(token, User(name, uid, groups)))
    return entries


def _format_line(token: str, user: User) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        [token, user.name, user.uid, ",".join(user.groups)])
    return out.getvalue()


def write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, 0o600)  # the creation mode is ignored if tmp was left behind
        out.write(text)
        out.flush()
        os.fsync(fd)
    os.replace(tmp, path)


class TokenAuthenticator:
    """Maps ``Authorization: Bearer <token>`` to a User, from a token file."""

    def __init__(self, path: Path,
                 issued: Callable[[str], User | None] | None = None) -> None:
        self.path = path
        self.issued = issued  # tokens issued by `corral token create` (token_store.py)
        self._entries: list[_Entry] = []
        self._mtime_ns: int | None = None

    def authenticate(self, header_value: str | None) -> User | None:
        token = _bearer_token(header_value)
        if token is None:
            return None
        user = self._match(token.encode(), self._current_entries())
        if user is None and self.issued is not None:
            user = self.issued(token)
        return user

    def _current_entries(self) -> list[_Entry]:
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if mtime_ns != self._mtime_ns:
            self._entries = _parse_token_file(self.path.read_text())
            self._mtime_ns = mtime_ns
        return self._entries

    @staticmethod
    def _match(presented: bytes, entries: Iterable[_Entry]) -> User | None:
        # Compare against every entry, without stopping at a match, so timing
        # tells nothing about which or how many tokens exist.
        found: User | None = None
        for entry in entries:
            if hmac.compare_digest(presented, entry.token.encode()):
                found = entry.user
        return found


def _bearer_token(header_value: str | None) -> str | None:
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


WEBSOCKET_TOKEN_PREFIX = "base64url.bearer.authorization.k8s.io."


def websocket_token(scope: Scope) -> str | None:
    """A bearer token offered as a websocket subprotocol, as kube-apiserver takes
    it from clients that cannot set headers (browsers); the entry is removed from
    the offer so that no handler picks it as the protocol."""
    offered = list(scope.get("subprotocols") or [])
    for entry in offered:
        if entry.startswith(WEBSOCKET_TOKEN_PREFIX):
            scope["subprotocols"] = [p for p in offered if p != entry]
            encoded = entry[len(WEBSOCKET_TOKEN_PREFIX):]
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (ValueError, UnicodeDecodeError):
                return None
    return None


# A second authenticator asked for tokens the first does not know
# (ServiceAccount JWTs: corral/api/sa_auth.py), async because it reads the store.
TokenCheck = Callable[[str], Awaitable["User | None"]]


class AuthMiddleware:
    """Pure ASGI, so streamed responses (watch, logs) and websockets (exec,
    port-forward) pass through unbuffered; a websocket upgrade is authenticated
    like any request, by its Authorization header or a token subprotocol."""

    def __init__(self, app: ASGIApp, authenticator: TokenAuthenticator,
                 open_paths: Iterable[str] = DEFAULT_OPEN_PATHS,
                 open_prefixes: tuple[str, ...] = (),
                 session: SessionCookie | None = None,
                 more_tokens: TokenCheck | None = None) -> None:
        self.app = app
        self.authenticator = authenticator
        self.more_tokens = more_tokens
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = open_prefixes
        self.session = session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # A client certificate first, then a token, as kube-apiserver's union of
        # authenticators tries x509 before bearer tokens.
        identity = certificate_identity(scope)
        credential = self._credential(scope)
        user = User(identity[0], "", identity[1]) if identity else \
            self.authenticator.authenticate(credential)
        token = _bearer_token(credential)
        if user is None and token is not None and self.more_tokens is not None:
            user = await self.more_tokens(token)
        path = scope["path"]
        if user is None and (path in self.open_paths or path.startswith(self.open_prefixes)):
            user = ANONYMOUS
        if user is None:
            await _reject(scope, send)
            return
        if user is not ANONYMOUS and AUTHENTICATED not in user.groups:
            # Kubernetes adds it to every authenticated user: bindings name it.
            user = User(user.name, user.uid, (*user.groups, AUTHENTICATED), user.extra)
        scope["user"] = user
        await self.app(scope, receive, send)

    def _credential(self, scope: Scope) -> str | None:
        """The Authorization header; else, for a websocket, the token kubectl puts
        in its subprotocols; else the dashboard's session cookie (http only)."""
        header = _header(scope, b"authorization")
        if header is not None:
            return header
        if scope["type"] == "websocket":
            token = websocket_token(scope)
        else:
            token = self.session.token(scope) if self.session is not None else None
        return f"Bearer {token}" if token else None


async def _reject(scope: Scope, send: Send) -> None:
    body = orjson.dumps(Unauthorized("Unauthorized").to_status())
    if scope["type"] == "websocket" and "websocket.http.response" not in scope.get(
            "extensions", {}):
        # Closing before accept makes the server answer the upgrade with 403.
        await send({"type": "websocket.close", "code": 1008})
        return
    prefix = "websocket." if scope["type"] == "websocket" else ""
    await send({
        "type": f"{prefix}http.response.start",
        "status": Unauthorized.code,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    })
    await send({"type": f"{prefix}http.response.body", "body": body})
