"""TokenRequest: ``POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token``
(`kubectl create token NAME`, and the agent asking for a pod's projected token).

    TokenRequest{spec: audiences, expirationSeconds, boundObjectRef{kind, name, uid}}
      ─► the ServiceAccount must exist; a bound Pod/Secret/Node must exist with
         that uid (a pod must run as this ServiceAccount)
      ─► a JWT signed by the master (sa_tokens.py), answered in status.token with
         status.expirationTimestamp; nothing is stored

Kubernetes' rules and words (pkg/registry/core/serviceaccount/storage/token.go,
apis/authentication/validation): at least 10 minutes, at most 2^32 seconds asked
(corral issues at most 48 hours), binding only to a Pod, Secret or Node.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from corral.api.body import parse_object, read_body
from corral.api.errors import BadRequest, Cause, Conflict, MethodNotAllowed, invalid
from corral.api.handlers.responses import JSONResponse
from corral.api.registry import Registry
from corral.api.resources import BY_KIND
from corral.api.sa_tokens import (
    DEFAULT_EXPIRATION,
    MAX_EXPIRATION,
    MIN_EXPIRATION,
    Binding,
    TokenSigner,
    new_claims,
)
from corral.objects import Obj, name_of, rfc3339, spec, uid_of

TOKEN_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/serviceaccounts/([^/]+)/token$")
_BINDABLE = ("Pod", "Secret", "Node")
_GROUP = "authentication.k8s.io"


class TokenRequests:
    def __init__(self, registry: Registry, signer: TokenSigner) -> None:
        self.registry = registry
        self.signer = signer

    async def __call__(self, request: Request, namespace: str, name: str) -> Response:
        if request.method != "POST":
            raise MethodNotAllowed("serviceaccounts/token is only created (POST)")
        body = parse_object(await read_body(request), request.headers.get("content-type"))
        answer = await self.issue(namespace, name, body)
        return JSONResponse(answer, status_code=201)

    async def issue(self, namespace: str, name: str, body: Obj) -> Obj:
        wanted = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        assert isinstance(wanted, dict)
        seconds = _expiration(wanted.get("expirationSeconds"), name)
        audiences = _audiences(wanted.get("audiences"), name)
        sa = await self.registry.get(BY_KIND["ServiceAccount"], namespace, name)
        bound, node = await self._binding(namespace, name, wanted.get("boundObjectRef"))
        claims = new_claims(namespace, name, uid_of(sa), audiences, min(seconds, MAX_EXPIRATION),
                            bound, node)
        return {
            "kind": "TokenRequest", "apiVersion": f"{_GROUP}/v1",
            "metadata": {"name": name, "namespace": namespace,
                         "creationTimestamp": rfc3339(claims.issued)},
            "spec": {**wanted, "audiences": list(claims.audiences), "expirationSeconds": seconds,
                     "boundObjectRef": wanted.get("boundObjectRef")},
            "status": {"token": self.signer.issue(claims),
                       "expirationTimestamp": rfc3339(claims.expires)},
        }

    async def _binding(self, namespace: str, sa: str, ref: object
                       ) -> tuple[Binding | None, Binding | None]:
        """(what the token is bound to, and for a pod its node)."""
        if ref is None:
            return None, None
        if not isinstance(ref, dict):
            raise BadRequest("spec.boundObjectRef must be an object")
        kind, obj_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        if kind not in _BINDABLE:
            raise BadRequest(f"cannot bind token to object of type {kind or '<none>'}: "
                             f"supported kinds are {', '.join(_BINDABLE)}")
        if not obj_name:
            raise invalid("TokenRequest", sa, [Cause("spec.boundObjectRef.name",
                                                     "Required value", "FieldValueRequired")],
                          _GROUP)
        res = BY_KIND[kind]
        obj = await self.registry.get(res, namespace if res.namespaced else None, obj_name)
        uid = str(ref.get("uid") or "")
        if uid and uid != uid_of(obj):
            raise Conflict(f'Operation cannot be fulfilled on {kind} "{obj_name}": the UID in '
                           f"the bound object reference ({uid}) does not match the UID in "
                           "record. The object might have been deleted and then recreated",
                           kind=kind, name=obj_name)
        bound = Binding(kind, obj_name, uid_of(obj))
        if kind != "Pod":
            return bound, None
        if _pod_service_account(obj) != sa:
            raise BadRequest(f'cannot bind token for serviceaccount "{sa}" to pod running '
                             "with different serviceaccount name.")
        return bound, await self._node_of(obj)

    async def _node_of(self, pod: Obj) -> Binding | None:
        node_name = str(spec(pod).get("nodeName") or "")
        node = await self.registry.find(BY_KIND["Node"], None, node_name) if node_name else None
        return Binding("Node", name_of(node), uid_of(node)) if node is not None else None


def _pod_service_account(pod: Obj) -> str:
    s = spec(pod)
    return str(s.get("serviceAccountName") or s.get("serviceAccount") or "default")


def _expiration(value: object, name: str) -> int:
    if value is None:
        return DEFAULT_EXPIRATION
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("TokenRequest", name, [Cause(
            "spec.expirationSeconds", f"Invalid value: {value!r}: must be an integer")], _GROUP)
    if value < MIN_EXPIRATION:
        why = "may not specify a duration less than 10 minutes"
    elif value > 1 << 32:
        why = "may not specify a duration larger than 2^32 seconds"
    else:
        return value
    raise invalid("TokenRequest", name, [Cause("spec.expirationSeconds",
                                               f"Invalid value: {value}: {why}")], _GROUP)


def _audiences(value: object, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
        raise invalid("TokenRequest", name, [Cause(
            "spec.audiences", "Invalid value: must be a list of non-empty strings")], _GROUP)
    return tuple(value)

