"""The authorizer seam: request attributes as kube-apiserver computes them, the
allow-authenticated decision, Kubernetes' wording of a denial, and the
middleware refusing what an Authorizer denies."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from corral.api.auth import ANONYMOUS, User
from corral.api.authz import (
    AllowAuthenticated,
    Attributes,
    AuthorizationMiddleware,
    Rules,
    attributes_of,
    forbidden,
)

JANE = User("jane", "u-jane", ("dev",))


@pytest.mark.parametrize(("method", "path", "query", "expect"), [
    ("GET", "/api/v1/namespaces/ns/pods", "", ("list", "", "ns", "pods", "", "")),
    ("GET", "/api/v1/pods", "watch=true", ("watch", "", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/ns/pods/p/log", "", ("get", "", "ns", "pods", "p", "log")),
    ("POST", "/apis/apps/v1/namespaces/ns/deployments", "",
     ("create", "apps", "ns", "deployments", "", "")),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/scale", "",
     ("patch", "apps", "ns", "deployments", "d", "scale")),
    ("DELETE", "/api/v1/namespaces/ns/configmaps", "", ("deletecollection", "", "ns",
                                                         "configmaps", "", "")),
    ("DELETE", "/api/v1/nodes/n1", "", ("delete", "", "", "nodes", "n1", "")),
    ("GET", "/api/v1/namespaces/kc", "", ("get", "", "kc", "namespaces", "kc", "")),
    ("PUT", "/api/v1/namespaces/kc/finalize", "", ("update", "", "kc", "namespaces", "kc",
                                                   "finalize")),
    ("GET", "/api/v1/namespaces", "", ("list", "", "", "namespaces", "", "")),
    # What follows the subresource is its path, not part of it (nodes/proxy).
    ("GET", "/api/v1/nodes/n1/proxy/stats/summary", "", ("get", "", "", "nodes", "n1",
                                                          "proxy")),
    ("GET", "/api/v1/namespaces/ns/services/web:80/proxy/a/b", "",
     ("get", "", "ns", "services", "web:80", "proxy")),
    # One object listed or watched by name is that name's (RBAC resourceNames).
    ("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
     "watch=1&fieldSelector=metadata.name%3Dcorral-mesos-master",
     ("watch", "coordination.k8s.io", "kube-system", "leases", "corral-mesos-master", "")),
    ("GET", "/api/v1/namespaces/ns/secrets", "fieldSelector=type%3Dx,metadata.name%3D%3Ds1",
     ("list", "", "ns", "secrets", "s1", "")),
    ("GET", "/api/v1/namespaces/ns/secrets", "fieldSelector=metadata.name%21%3Ds1",
     ("list", "", "ns", "secrets", "", "")),
])
def test_resource_attributes(method: str, path: str, query: str,
                             expect: tuple[str, ...]) -> None:
    a = attributes_of(JANE, method, path, query)
    assert a.resource_request
    assert (a.verb, a.api_group, a.namespace, a.resource, a.name, a.subresource) == expect


@pytest.mark.parametrize("path", ["/version", "/api", "/apis/apps/v1", "/openapi/v3",
                                  "/metrics"])
def test_non_resource_attributes(path: str) -> None:
    a = attributes_of(JANE, "GET", path)
    assert not a.resource_request and (a.verb, a.path) == ("get", path)


def test_authenticated_users_may_do_anything_anonymous_only_public_info() -> None:
    authz = AllowAuthenticated()
    assert authz.authorize(attributes_of(JANE, "DELETE", "/api/v1/nodes/n1"))[0]
    assert not authz.authorize(attributes_of(ANONYMOUS, "GET", "/api/v1/pods"))[0]
    assert authz.authorize(attributes_of(ANONYMOUS, "GET", "/version/"))[0]
    assert not authz.authorize(attributes_of(ANONYMOUS, "GET", "/metrics"))[0]
    rules = authz.rules_for(JANE, "default")
    assert [r.to_dict() for r in rules.resource] == [
        {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
    assert rules.non_resource[0].to_dict() == {"verbs": ["*"], "nonResourceURLs": ["*"]}
    assert authz.rules_for(ANONYMOUS, "").resource == ()


def test_denials_are_worded_as_kubernetes_words_them() -> None:
    cases = {
        ("GET", "/api/v1/namespaces/default/pods"):
            'pods is forbidden: User "jane" cannot list resource "pods" in API group "" '
            'in the namespace "default"',
        ("GET", "/api/v1/namespaces/default/secrets/s"):
            'secrets "s" is forbidden: User "jane" cannot get resource "secrets" in API '
            'group "" in the namespace "default"',
        ("POST", "/api/v1/namespaces/default/pods/p/exec"):
            'pods/exec "p" is forbidden: User "jane" cannot create resource "pods/exec" in '
            'API group "" in the namespace "default"',
        ("DELETE", "/apis/scheduling.k8s.io/v1/priorityclasses/high"):
            'priorityclasses "high" is forbidden: User "jane" cannot delete resource '
            '"priorityclasses" in API group "scheduling.k8s.io" at the cluster scope',
        ("GET", "/metrics"): 'forbidden: User "jane" cannot get path "/metrics"',
    }
    for (method, path), message in cases.items():
        err = forbidden(attributes_of(JANE, method, path))
        assert (err.code, err.message) == (403, message)


class _DenySecrets:
    """An authorizer of the test's own: the seam RBAC will plug into."""

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        return attrs.resource != "secrets", "" if attrs.resource != "secrets" else "no"

    def rules_for(self, user: User, namespace: str) -> Rules:
        return Rules((), ())


async def test_the_middleware_refuses_what_the_authorizer_denies() -> None:
    async def ok(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = AuthorizationMiddleware(Starlette(routes=[Route("/{p:path}", ok)]), _DenySecrets())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://corral") as client:
        assert (await client.get("/api/v1/namespaces/a/configmaps")).text == "ok"
        r = await client.get("/api/v1/namespaces/a/secrets")
        assert r.status_code == 403
        body = r.json()
        assert (body["reason"], body["details"]["kind"]) == ("Forbidden", "secrets")
        assert body["message"].startswith('secrets is forbidden: User "system:unsecured"')
