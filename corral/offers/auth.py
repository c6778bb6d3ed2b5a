"""Who calls the Mesos endpoint, and what they may do (Mesos' framework
authentication and ACLs, answered by corral's own authenticators and RBAC).

    Authorization: Basic base64(principal:secret) ─► the credentials file (Mesos'
        --credentials: {"credentials": [{"principal": P, "secret": S}, ...]} or
        "P S" lines), re-read when it changes ─► user P
    Authorization: Bearer TOKEN ─► a TokenReview through the API: the API server's
        own authenticators (the token file, `corral token`, ServiceAccount tokens)
    neither, or not valid ─► None: the endpoint answers 401, as Mesos does

Mesos' ACLs become RBAC rules, asked as SubjectAccessReviews (API group
``corral.dev``, cluster-scoped, the name being the role or the user):

    register_frameworks (principals → roles)  verb "register" on frameworkroles/<role>
    run_tasks (principals → users)            verb "run"      on taskusers/<user>

Answers are cached for CACHE_SECONDS (kube-apiserver's webhook authenticator
and authorizer cache theirs), so a framework's calls cost no review each.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from corral.api.auth import write_private
from corral.client.clock import Clock, RealClock
from corral.client.http import Client
from corral.objects import Obj, status

REALM = "mesos-master-scheduler"  # Mesos' DEFAULT_HTTP_FRAMEWORK_AUTHENTICATION_REALM
CHALLENGE = f'Basic realm="{REALM}"'
DEFAULT_PRINCIPAL = "corral-framework"  # what `corral master` writes on first start
GROUP = "corral.dev"
ROLES, USERS = "frameworkroles", "taskusers"
REGISTER, RUN = "register", "run"
CACHE_SECONDS = 10.0
CACHE_SIZE = 4096
SECRET_BYTES = 24


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: its name is the framework's principal and the
    RBAC user its calls are authorized as."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict, hash=False, compare=False)


# Authentication switched off (--mesos-authenticate=false): every caller is the
# anonymous user, and RBAC decides what anonymous may do (nothing by default).
ANONYMOUS = Principal("system:anonymous", "", ("system:unauthenticated",))


def parse_credentials(text: str) -> dict[str, str]:
    """Mesos' credentials file: JSON, or one "principal secret" a line."""
    stripped = text.strip()
    if stripped.startswith("{"):
        data = json.loads(stripped)
        return {str(c["principal"]): str(c.get("secret") or "")
                for c in data.get("credentials") or ()}
    out: dict[str, str] = {}
    for line in stripped.splitlines():
        parts = line.split()
        if len(parts) == 2 and not parts[0].startswith("#"):
            out[parts[0]] = parts[1]
    return out


def ensure_credentials(path: Path) -> tuple[str, str]:
    """The default principal and its secret, written (0600) if the file is new."""
    if path.exists():
        creds = parse_credentials(path.read_text())
        if DEFAULT_PRINCIPAL in creds:
            return DEFAULT_PRINCIPAL, creds[DEFAULT_PRINCIPAL]
        return next(iter(creds.items()), (DEFAULT_PRINCIPAL, ""))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, json.dumps({"credentials": [
        {"principal": DEFAULT_PRINCIPAL, "secret": secret}]}, indent=1) + "\n")
    return DEFAULT_PRINCIPAL, secret


class CredentialsFile:
    """The principals and secrets of a credentials file, re-read on change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime_ns: int | None = None
        self._creds: dict[str, str] = {}

    def check(self, principal: str, secret: str) -> bool:
        known = self._current().get(principal)
        # Compared in constant time; an unknown principal costs the same.
        return hmac.compare_digest((known or "\0").encode(), secret.encode()) and \
            known is not None

    def _current(self) -> dict[str, str]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if mtime != self._mtime_ns:
            try:
                self._creds = parse_credentials(self.path.read_text())
            except (ValueError, KeyError, TypeError, AttributeError):
                self._creds = {}  # a file being rewritten by hand: nobody, until it parses
            self._mtime_ns = mtime
        return self._creds


class FrameworkAuth:
    """Authentication and authorization for the endpoint (see the module doc)."""

    def __init__(self, client: Client, credentials: Path | None, *, enabled: bool = True,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.credentials = CredentialsFile(credentials) if credentials else None
        self.enabled = enabled
        self.clock = clock or RealClock()
        self._cache: dict[str, tuple[float, object]] = {}

    async def authenticate(self, header: str | None) -> Principal | None:
        if not self.enabled:
            return ANONYMOUS
        scheme, _, value = (header or "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic" and value:
            return self._basic(value)
        if scheme.lower() == "bearer" and value:
            return await self._bearer(value)
        return None

    def _basic(self, value: str) -> Principal | None:
        try:
            principal, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not sep or self.credentials is None or not self.credentials.check(principal, secret):
            return None
        return Principal(principal, "", ("system:authenticated",))

    async def _bearer(self, token: str) -> Principal | None:
        key = "token:" + hashlib.sha256(token.encode()).hexdigest()
        cached = self._cached(key)
        if cached is not None:
            return cached if isinstance(cached, Principal) else None
        review = await self.client.review({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token}})
        st = status(review)
        user: Obj = st.get("user") or {}
        found: Principal | bool = False
        if st.get("authenticated") and user.get("username"):
            found = Principal(str(user["username"]), str(user.get("uid") or ""),
                              tuple(str(g) for g in user.get("groups") or ()),
                              {str(k): [str(x) for x in v]
                               for k, v in (user.get("extra") or {}).items()})
        self._remember(key, found)
        return found if isinstance(found, Principal) else None

    async def allowed(self, who: Principal, verb: str, resource: str, name: str) -> bool:
        """RBAC's answer to: may ``who`` ``verb`` the ``resource`` named ``name``?"""
        key = json.dumps([who.name, who.groups, verb, resource, name])
        cached = self._cached(key)
        if cached is not None:
            return bool(cached)
        review = await self.client.review({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": who.name, "uid": who.uid, "groups": list(who.groups),
                     "extra": who.extra,
                     "resourceAttributes": {"group": GROUP, "resource": resource,
                                            "verb": verb, "name": name}}})
        answer = bool(status(review).get("allowed"))
        self._remember(key, answer)
        return answer

    def _cached(self, key: str) -> object | None:
        hit = self._cache.get(key)
        if hit is None or hit[0] < self.clock.monotonic():
            return None
        return hit[1]

    def _remember(self, key: str, value: object) -> None:
        if len(self._cache) >= CACHE_SIZE:
            now = self.clock.monotonic()
            self._cache = {k: v for k, v in self._cache.items() if v[0] >= now}
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
        self._cache[key] = (self.clock.monotonic() + CACHE_SECONDS, value)
