"""Impersonation: ``Impersonate-User``/``Impersonate-Group``/``Impersonate-Uid``
headers (kubectl --as, --as-group), honoured only for callers allowed to
``impersonate`` each of them, as kube-apiserver's WithImpersonation does.

    request (authenticated as U) ─► for the user, each group, the uid:
        may U impersonate users/<name> (or serviceaccounts <ns>/<name>),
        groups/<name>, uids/<uid>?  ── no ─► 403 worded as Kubernetes words it
                                     └─ yes ─► the request goes on as that user
                                               (plus group system:authenticated)
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api.auth import AUTHENTICATED, User
from corral.api.authz import Authorizer, deny, forbidden, resource_attributes, user_of
from corral.api.errors import APIError, BadRequest
from corral.api.rbac import SERVICE_ACCOUNT_PREFIX

_HEADERS = (b"impersonate-user", b"impersonate-group", b"impersonate-uid")


class ImpersonationMiddleware:
    def __init__(self, app: ASGIApp, authorizer: Authorizer) -> None:
        self.app = app
        self.authorizer = authorizer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        asked = _asked(scope)
        if not any(asked.values()):
            await self.app(scope, receive, send)
            return
        try:
            scope["user"] = self._impersonate(user_of(scope), asked)
        except APIError as err:
            await deny(scope, send, err)
            return
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() not in _HEADERS]
        await self.app(scope, receive, send)

    def _impersonate(self, caller: User, asked: dict[bytes, list[str]]) -> User:
        users, groups, uids = (asked[h] for h in _HEADERS)
        if not users:
            raise BadRequest("impersonating groups or a uid requires impersonating a user "
                             "(Impersonate-User)")
        if len(users) > 1 or len(uids) > 1:
            raise BadRequest("only one Impersonate-User and one Impersonate-Uid are allowed")
        name = users[0]
        self._check(caller, *_user_target(name))
        for group in groups:
            self._check(caller, "groups", "", group)
        for uid in uids:
            self._check(caller, "uids", "", uid)
        implied: tuple[str, ...] = ()
        if name.startswith(SERVICE_ACCOUNT_PREFIX):
            ns = name[len(SERVICE_ACCOUNT_PREFIX):].split(":", 1)[0]
            implied = ("system:serviceaccounts", f"system:serviceaccounts:{ns}")
        all_groups = tuple(dict.fromkeys([*groups, *implied, AUTHENTICATED]))
        return User(name, uids[0] if uids else "", all_groups)

    def _check(self, caller: User, resource: str, namespace: str, name: str) -> None:
        attrs = resource_attributes(caller, "impersonate", resource, name=name,
                                    namespace=namespace, version="v1")
        allowed, reason = self.authorizer.authorize(attrs)
        if not allowed:
            raise forbidden(attrs, reason)


def _user_target(name: str) -> tuple[str, str, str]:
    """(resource, namespace, name) a user's impersonation is authorized against."""
    if name.startswith(SERVICE_ACCOUNT_PREFIX):
        ns, _, sa = name[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
        if ns and sa:
            return "serviceaccounts", ns, sa
    return "users", "", name


def _asked(scope: Scope) -> dict[bytes, list[str]]:
    asked: dict[bytes, list[str]] = {h: [] for h in _HEADERS}
    for key, value in scope.get("headers", []):
        lowered = bytes(key).lower()
        if lowered in asked:
            asked[lowered].append(bytes(value).decode("latin-1").strip())
    return asked
