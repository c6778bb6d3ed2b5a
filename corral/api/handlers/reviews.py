"""Who am I and what may I do: the self-reviews kubectl's `auth` commands send.

    POST /apis/authentication.k8s.io/v1/selfsubjectreviews      auth whoami
    POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews auth can-i VERB RESOURCE
    POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews  auth can-i --list

Each answers for the caller, from the server's own Authorizer (corral/api/authz.py),
and is created without being stored, as in Kubernetes.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from corral.api.authz import Attributes, Authorizer, resource_attributes, user_of
from corral.api.body import parse_object
from corral.api.errors import BadRequest, Cause, MethodNotAllowed, invalid
from corral.api.handlers.responses import JSONResponse
from corral.objects import Obj, spec

REVIEWS = {
    ("authentication.k8s.io", "selfsubjectreviews"): "SelfSubjectReview",
    ("authorization.k8s.io", "selfsubjectaccessreviews"): "SelfSubjectAccessReview",
    ("authorization.k8s.io", "selfsubjectrulesreviews"): "SelfSubjectRulesReview",
}


class ReviewHandler:
    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    async def __call__(self, request: Request, kind: str) -> Response:
        if request.method != "POST":
            raise MethodNotAllowed(f"{kind} is only created (POST)")
        body = parse_object(await request.body(), request.headers.get("content-type"))
        status = {"SelfSubjectReview": self._whoami,
                  "SelfSubjectAccessReview": self._access,
                  "SelfSubjectRulesReview": self._rules}[kind](request, kind, body)
        answer = {**body, "kind": kind,
                  "apiVersion": body.get("apiVersion") or _api_version(kind),
                  "metadata": {"creationTimestamp": None}, "status": status}
        return JSONResponse(answer, status_code=201)

    def _whoami(self, request: Request, kind: str, body: Obj) -> Obj:
        user = user_of(request.scope)
        info: Obj = {"username": user.name, "groups": list(user.groups)}
        if user.uid:
            info["uid"] = user.uid
        return {"userInfo": info}

    def _access(self, request: Request, kind: str, body: Obj) -> Obj:
        spec = _spec(body)
        res, non_res = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if (res is None) == (non_res is None):
            raise invalid(kind, "", [Cause("spec.resourceAttributes", "Invalid value: "
                                           "exactly one of nonResourceAttributes or "
                                           "resourceAttributes must be specified")],
                          "authorization.k8s.io")
        user = user_of(request.scope)
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
