"""Authenticating ServiceAccount tokens (kube-apiserver's serviceaccount
authenticator with its legacy-free validator, pkg/serviceaccount/jwt.go and
pkg/controlplane/.../serviceaccount/validator.go):

    bearer JWT ─► TokenSigner.verify (signature, iss, aud, exp)
              ─► the ServiceAccount exists with the uid the token names
              ─► the Pod / Secret / Node it is bound to exists with that uid
                 (a pod deleted more than 60 s ago no longer counts)
              ─► User system:serviceaccount:<ns>:<name>, groups system:serviceaccounts
                 and system:serviceaccounts:<ns>, extra naming the pod and credential

So deleting the pod (or the ServiceAccount) a token was issued for ends the
token at once, long before it expires.
"""

from __future__ import annotations

import datetime as dt
import logging

from corral.api.auth import AUTHENTICATED, User
from corral.api.registry import Registry
from corral.api.resources import BY_KIND
from corral.api.sa_tokens import ISSUER, TokenClaims, TokenSigner, looks_like_jwt
from corral.objects import meta, parse_time, uid_of

log = logging.getLogger(__name__)

SA_GROUP = "system:serviceaccounts"
# A pod being deleted keeps its token working through its grace period, as
# Kubernetes' validator does, then it stops.
DELETED_POD_GRACE = dt.timedelta(seconds=60)
_EXTRA = "authentication.kubernetes.io/"


def groups_of(namespace: str) -> tuple[str, ...]:
    return (SA_GROUP, f"{SA_GROUP}:{namespace}", AUTHENTICATED)


class ServiceAccountAuthenticator:
    def __init__(self, signer: TokenSigner, registry: Registry) -> None:
        self.signer = signer
        self.registry = registry

    async def authenticate(self, token: str, audiences: tuple[str, ...] = (ISSUER,)
                           ) -> tuple[User | None, str]:
        """(the user, or None and why not) for a ServiceAccount token."""
        if not looks_like_jwt(token):
            return None, "not a service account token"
        claims = self.signer.verify(token, audiences)
        if claims is None:
            return None, "invalid bearer token"
        problem = await self._invalidated(claims)
        if problem:
            log.info("service account token refused user=%s reason=%s", claims.username,
                     problem)
            return None, problem
        return user_of(claims), ""

    async def _invalidated(self, c: TokenClaims) -> str:
        sa = await self.registry.find(BY_KIND["ServiceAccount"], c.namespace, c.service_account)
        if sa is None or meta(sa).get("deletionTimestamp"):
            return f'serviceaccounts "{c.service_account}" not found'
        if uid_of(sa) != c.service_account_uid:
            return (f"service account UID ({uid_of(sa)}) does not match claim "
                    f"({c.service_account_uid})")
        if c.bound is None:
            return ""
        kind = c.bound.kind
        namespace = c.namespace if BY_KIND[kind].namespaced else None
        obj = await self.registry.find(BY_KIND[kind], namespace, c.bound.name)
        if obj is None:
            return f'{kind.lower()}s "{c.bound.name}" not found'
        if uid_of(obj) != c.bound.uid:
            return f"{kind} UID ({uid_of(obj)}) does not match claim ({c.bound.uid})"
        deleted = parse_time(meta(obj).get("deletionTimestamp"))
        if deleted is not None and deleted + DELETED_POD_GRACE < dt.datetime.now(dt.UTC):
            return f"{kind} {c.bound.name} was deleted"
        return ""


def user_of(c: TokenClaims) -> User:
    extra: list[tuple[str, tuple[str, ...]]] = []
    if c.bound is not None and c.bound.kind == "Pod":
        extra += [(f"{_EXTRA}pod-name", (c.bound.name,)),
                  (f"{_EXTRA}pod-uid", (c.bound.uid,))]
    node = c.node or (c.bound if c.bound is not None and c.bound.kind == "Node" else None)
    if node is not None:
        extra += [(f"{_EXTRA}node-name", (node.name,)), (f"{_EXTRA}node-uid", (node.uid,))]
    if c.jti:
        extra.append((f"{_EXTRA}credential-id", (f"JTI={c.jti}",)))
    return User(c.username, c.service_account_uid, groups_of(c.namespace), tuple(extra))
