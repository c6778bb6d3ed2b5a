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
and authorizer cache theirs), so a framework's calls cost no review each; a Basic
header that passed is taken as it is for BASIC_SECONDS (a framework sends the same
one with every call): a secret taken out of the file stops working within that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
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
BASIC_SECONDS = 1.0
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


class Unknown:
    """Not known without asking the API (a bearer token not reviewed lately)."""


UNKNOWN = Unknown()


def _token_key(token: str) -> str:
    return "token:" + hashlib.sha256(token.encode()).hexdigest()


def _review_key(who: Principal, verb: str, resource: str, name: str) -> str:
    return "\0".join(("allowed", who.name, "\1".join(who.groups), verb, resource, name))


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
            mtime = os.stat(self.path).st_mtime_ns
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
        known = self.known(header)
        if not isinstance(known, Unknown):
            return known
        return await self._bearer(header.strip().partition(" ")[2].strip() if header else "")

    def known(self, header: str | None) -> Principal | None | Unknown:
        """The caller, if that needs no review: Basic, or a bearer token whose
        review is cached (UNKNOWN otherwise: ``authenticate`` asks)."""
        if not self.enabled:
            return ANONYMOUS
        scheme, _, value = (header or "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic" and value:
            key = "basic:" + value
            hit = self._cache.get(key)
            if hit is not None and hit[0] >= self.clock.monotonic():
                return hit[1] if isinstance(hit[1], Principal) else None
            who = self._basic(value)
            if who is not None:
                self._remember(key, who, BASIC_SECONDS)
            return who
        if scheme.lower() == "bearer" and value:
            cached = self._cached(_token_key(value))
            if cached is None:
                return UNKNOWN
            return cached if isinstance(cached, Principal) else None
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
        key = _token_key(token)
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
        cached = self.allowed_known(who, verb, resource, name)
        if cached is not None:
            return cached
        key = _review_key(who, verb, resource, name)
        review = await self.client.review({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": who.name, "uid": who.uid, "groups": list(who.groups),
                     "extra": who.extra,
                     "resourceAttributes": {"group": GROUP, "resource": resource,
                                            "verb": verb, "name": name}}})
        answer = bool(status(review).get("allowed"))
        self._remember(key, answer)
        return answer

    def allowed_known(self, who: Principal, verb: str, resource: str, name: str
                      ) -> bool | None:
        """RBAC's cached answer (None: not asked lately; ``allowed`` asks)."""
        cached = self._cached(_review_key(who, verb, resource, name))
        return None if cached is None else bool(cached)

    def _cached(self, key: str) -> object | None:
        hit = self._cache.get(key)
        if hit is None or hit[0] < self.clock.monotonic():
            return None
        return hit[1]

    def _remember(self, key: str, value: object, seconds: float = CACHE_SECONDS) -> None:
        if len(self._cache) >= CACHE_SIZE:
            now = self.clock.monotonic()
            self._cache = {k: v for k, v in self._cache.items() if v[0] >= now}
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
        self._cache[key] = (self.clock.monotonic() + seconds, value)
