"""Who am I and what may I do: the self-reviews kubectl's `auth` commands send,
and the reviews other components ask about someone else (webhook authenticators
and authorizers of add-ons, an agent checking a caller's token).

    POST /apis/authentication.k8s.io/v1/selfsubjectreviews      auth whoami
    POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews auth can-i VERB RESOURCE
    POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews  auth can-i --list
    POST /apis/authentication.k8s.io/v1/tokenreviews            who is this token?
    POST /apis/authorization.k8s.io/v1/subjectaccessreviews     may user U do V?
    POST /apis/authorization.k8s.io/v1/namespaces/{ns}/localsubjectaccessreviews

Each answers from the server's own Authorizer (corral/api/authz.py) and
authenticators, and is created without being stored, as in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from corral.api.auth import AUTHENTICATED, User
from corral.api.authz import Attributes, Authorizer, resource_attributes, user_of
from corral.api.body import parse_object
from corral.api.errors import BadRequest, Cause, MethodNotAllowed, invalid
from corral.api.handlers.responses import JSONResponse
from corral.objects import Obj, spec

REVIEWS = {
    ("authentication.k8s.io", "selfsubjectreviews"): "SelfSubjectReview",
    ("authorization.k8s.io", "selfsubjectaccessreviews"): "SelfSubjectAccessReview",
    ("authorization.k8s.io", "selfsubjectrulesreviews"): "SelfSubjectRulesReview",
    ("authentication.k8s.io", "tokenreviews"): "TokenReview",
    ("authorization.k8s.io", "subjectaccessreviews"): "SubjectAccessReview",
    ("authorization.k8s.io", "localsubjectaccessreviews"): "LocalSubjectAccessReview",
}
# (token, audiences asked) → (who, or None and why not): every authenticator
# the server has, as the request path asks them (corral/api/server.py).
TokenCheck = Callable[[str, tuple[str, ...]], Awaitable[tuple[User | None, str]]]


class ReviewHandler:
    def __init__(self, authorizer: Authorizer, tokens: TokenCheck | None = None) -> None:
        self.authorizer = authorizer
        self.tokens = tokens

    async def __call__(self, request: Request, kind: str, namespace: str = "") -> Response:
        if request.method != "POST":
            raise MethodNotAllowed(f"{kind} is only created (POST)")
        body = parse_object(await request.body(), request.headers.get("content-type"))
        if kind == "TokenReview":
            status = await self._token(body)
        elif kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
            status = self._subject_access(kind, body, namespace)
        else:
            status = {"SelfSubjectReview": self._whoami,
                      "SelfSubjectAccessReview": self._access,
                      "SelfSubjectRulesReview": self._rules}[kind](request, kind, body)
        metadata: Obj = {"creationTimestamp": None}
        if namespace:
            metadata["namespace"] = namespace
        answer = {**body, "kind": kind,
                  "apiVersion": body.get("apiVersion") or _api_version(kind),
                  "metadata": metadata, "status": status}
        return JSONResponse(answer, status_code=201)

    async def _token(self, body: Obj) -> Obj:
        s = _spec(body)
        token, audiences = s.get("token"), s.get("audiences") or []
        if not isinstance(token, str) or not token:
            raise invalid("TokenReview", "", [Cause("spec.token", "Required value",
                                                    "FieldValueRequired")],
                          "authentication.k8s.io")
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise BadRequest("spec.audiences must be a list of strings")
        if self.tokens is None:
            return {"authenticated": False, "error": "the server authenticates no tokens"}
        user, error = await self.tokens(token, tuple(audiences))
        if user is None:
            return {"authenticated": False, "user": {}, "error": error or "invalid bearer token"}
        groups = list(user.groups) + ([] if AUTHENTICATED in user.groups else [AUTHENTICATED])
        info: Obj = {"username": user.name, "uid": user.uid, "groups": groups}
        if user.extra:
            info["extra"] = {k: list(v) for k, v in user.extra}
        status: Obj = {"authenticated": True, "user": info}
        if audiences:
            status["audiences"] = audiences
        return status

    def _subject_access(self, kind: str, body: Obj, namespace: str) -> Obj:
        s = _spec(body)
        name, groups = s.get("user") or "", s.get("groups") or []
        if not isinstance(name, str) or not isinstance(groups, list) or not all(
                isinstance(g, str) for g in groups):
            raise BadRequest("spec.user must be a string and spec.groups a list of strings")
        if not name and not groups:
            raise invalid(kind, "", [Cause("spec.user", 'Invalid value: "": at least one of '
                                           "user or group must be specified")],
                          "authorization.k8s.io")
        res = s.get("resourceAttributes")
        if namespace and isinstance(res, dict) and not res.get("namespace"):
            res = s["resourceAttributes"] = {**res, "namespace": namespace}
        if namespace and (not isinstance(res, dict) or res.get("namespace") != namespace):
            raise invalid(kind, "", [Cause("spec.resourceAttributes.namespace",
                                           "Invalid value: must match metadata.namespace")],
                          "authorization.k8s.io")
        extra = s.get("extra") if isinstance(s.get("extra"), dict) else {}
        assert isinstance(extra, dict)
        user = User(name, str(s.get("uid") or ""), tuple(groups),
                    tuple((str(k), tuple(map(str, v))) for k, v in extra.items()
                          if isinstance(v, list)))
        return self._decide(kind, body, user)

    def _whoami(self, request: Request, kind: str, body: Obj) -> Obj:
        user = user_of(request.scope)
        info: Obj = {"username": user.name, "groups": list(user.groups)}
        if user.uid:
            info["uid"] = user.uid
        if user.extra:
            info["extra"] = {k: list(v) for k, v in user.extra}
        return {"userInfo": info}

    def _access(self, request: Request, kind: str, body: Obj) -> Obj:
        return self._decide(kind, body, user_of(request.scope))

    def _decide(self, kind: str, body: Obj, user: User) -> Obj:
        spec = _spec(body)
        res, non_res = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if (res is None) == (non_res is None):
            raise invalid(kind, "", [Cause("spec.resourceAttributes", "Invalid value: "
                                           "exactly one of nonResourceAttributes or "
                                           "resourceAttributes must be specified")],
                          "authorization.k8s.io")
        if res is not None:
            a = _mapping(res, "spec.resourceAttributes")
            def field(name: str) -> str:
                return str(a.get(name) or "")

            attrs = resource_attributes(
                user, field("verb"), field("resource"), name=field("name"),
                namespace=field("namespace"), group=field("group"), version=field("version"),
                subresource=field("subresource"))
        else:
            a = _mapping(non_res, "spec.nonResourceAttributes")
            attrs = Attributes(user, str(a.get("verb") or ""), False, str(a.get("path") or ""))
        allowed, reason = self.authorizer.authorize(attrs)
        status: Obj = {"allowed": allowed, "reason": reason}
        if not allowed:
            status["denied"] = True
        return status

    def _rules(self, request: Request, kind: str, body: Obj) -> Obj:
        namespace = str(_spec(body).get("namespace") or "")
        rules = self.authorizer.rules_for(user_of(request.scope), namespace)
        return {"resourceRules": [r.to_dict() for r in rules.resource],
                "nonResourceRules": [r.to_dict() for r in rules.non_resource],
                "incomplete": rules.incomplete}


def _api_version(kind: str) -> str:
    group = next(g for (g, _), k in REVIEWS.items() if k == kind)
    return f"{group}/v1"


def _spec(body: Obj) -> Obj:
    return _mapping(spec(body), "spec")


def _mapping(value: Any, where: str) -> Obj:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be an object")
    return value
