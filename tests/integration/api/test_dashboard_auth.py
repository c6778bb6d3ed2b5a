"""The dashboard's authentication over real HTTPS: every data path the UI uses
is the ordinary API, which refuses a request without credentials, a session
cookie without its CSRF header or from another site, and a cookie of another
cluster; login and one-time links give the cookie with its flags."""

from __future__ import annotations

import httpx
import pytest

from corral.api.session import CSRF_HEADER
from tests.cluster import Master
from tests.integration.controllers.helpers import corral

CSRF = {CSRF_HEADER.decode(): "1"}
# (method, path, body) for every kind of request the dashboard makes.
UI_DATA_REQUESTS = [
    ("GET", "/api/v1/namespaces?limit=1", None),
    ("GET", "/api/v1/nodes?limit=500", None),
    ("GET", "/api/v1/pods?limit=500&labelSelector=app%3Dweb", None),
    ("GET", "/api/v1/pods?watch=1&resourceVersion=0", None),
    ("GET", "/api/v1/events?watch=1", None),
    ("GET", "/apis/apps/v1/deployments?limit=500", None),
    ("GET", "/apis/batch/v1/jobs?limit=500", None),
    ("GET", "/api/v1/namespaces/default/pods/x/log?follow=true&tailLines=200", None),
    ("GET", "/api/v1/nodes/n/proxy/stats/summary", None),
    ("GET", "/apis", None),
    ("PATCH", "/apis/apps/v1/namespaces/default/deployments/x/scale", {"spec": {"replicas": 1}}),
    ("PATCH", "/api/v1/nodes/n", {"spec": {"unschedulable": True}}),
    ("DELETE", "/api/v1/namespaces/default/pods/x", None),
]


def client(master: Master) -> httpx.Client:
    return httpx.Client(base_url=master.url, verify=str(master.ca_path), timeout=10)


def login(master: Master, token: str) -> httpx.Response:
    with client(master) as http:
        return http.post("/ui/login", json={"token": token}, headers=CSRF)


def session_cookie(master: Master) -> tuple[str, str]:
    r = login(master, master.token)
    assert r.status_code == 200, r.text
    name, _, rest = r.headers["set-cookie"].partition("=")
    return name, rest.partition(";")[0]


def send(master: Master, method: str, path: str, body: object, **headers: str) -> int:
    with client(master) as http:
        kwargs: dict[str, object] = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
            headers["content-type"] = "application/merge-patch+json"
        with http.stream(method, path, **kwargs) as r:  # type: ignore[arg-type]
            return r.status_code


def test_the_page_is_served_with_a_strict_policy(quiet_master: Master) -> None:
    with client(quiet_master) as http:
        page = http.get("/ui/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["referrer-policy"] == "no-referrer"
        assert http.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
        for module in ("/ui/static/js/main.js", "/ui/static/vendor/preact.mjs"):
            r = http.get(module)
            assert r.status_code == 200 and "javascript" in r.headers["content-type"], module
        assert http.get("/ui/static/../app.py").status_code == 404


@pytest.fixture(scope="module")
def cookie(quiet_master: Master) -> str:
    """One logged-in session for the module's checks."""
    return "=".join(session_cookie(quiet_master))


@pytest.mark.parametrize(("method", "path", "body"), UI_DATA_REQUESTS)
def test_ui_data_paths_refuse_requests_without_a_session(
        quiet_master: Master, cookie: str, method: str, path: str, body: object) -> None:
    assert send(quiet_master, method, path, body) == 401
    assert send(quiet_master, method, path, body, **CSRF) == 401
    # The cookie alone (as a forged cross-site form or image would send it): refused.
    assert send(quiet_master, method, path, body, cookie=cookie) == 401
    assert send(quiet_master, method, path, body, cookie=cookie, **CSRF,
                **{"sec-fetch-site": "same-site"}) == 401
    # With its header, from the page itself: past authentication (404 for the
    # objects that do not exist, 503 for a node that has no agent).
    assert send(quiet_master, method, path, body, cookie=cookie, **CSRF,
                **{"sec-fetch-site": "same-origin"}) != 401


def test_login_sets_a_strict_cookie_and_refuses_bad_tokens(quiet_master: Master) -> None:
    r = login(quiet_master, quiet_master.token)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("corral-session-")
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    assert quiet_master.token not in cookie  # encoded, not a copy of the header value
    bad = login(quiet_master, "not-a-token")
    assert bad.status_code == 401 and "set-cookie" not in bad.headers
    assert bad.json()["reason"] == "Unauthorized"
    with client(quiet_master) as http:
        no_csrf = http.post("/ui/login", json={"token": quiet_master.token})
        assert no_csrf.status_code == 400 and "set-cookie" not in no_csrf.headers
        assert http.post("/ui/login", content=b"{", headers=CSRF).status_code == 400
        assert http.post("/ui/login", json={"token": 7}, headers=CSRF).status_code == 400


def test_a_cookie_from_another_cluster_is_refused(quiet_master: Master,
                                                  fresh_master: Master) -> None:
    ours = session_cookie(quiet_master)
    theirs = session_cookie(fresh_master)
    assert ours[0] != theirs[0]  # each cluster's cookie has its own name (CA fingerprint)
    path = "/api/v1/namespaces"
    with client(quiet_master) as http:
        assert http.get(path, headers={**CSRF, "cookie": "=".join(ours)}).status_code == 200
        assert http.get(path, headers={**CSRF, "cookie": "=".join(theirs)}).status_code == 401
        # Their token under our cookie's name: not a token of this cluster either.
        forged = f"{ours[0]}={theirs[1]}"
        assert http.get(path, headers={**CSRF, "cookie": forged}).status_code == 401
        assert http.get(path, headers={**CSRF, "cookie": f"{ours[0]}=%%%"}).status_code == 401


def test_one_time_link_from_corral_dashboard(quiet_master: Master) -> None:
    done = corral(quiet_master, "dashboard")
    assert done.returncode == 0, done.stderr
    assert f"dashboard:  {quiet_master.url}/ui/" in done.stdout
    link = next(ln.split()[-1] for ln in done.stdout.splitlines() if "login link:" in ln)
    assert quiet_master.token not in link
    with client(quiet_master) as http:
        first = http.get(link, follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/ui/"
        name, _, rest = first.headers["set-cookie"].partition("=")
        cookie = f"{name}={rest.partition(';')[0]}"
        assert http.get("/api/v1/namespaces", headers={**CSRF, "cookie": cookie}
                        ).status_code == 200
        again = http.get(link, follow_redirects=False)
        assert again.status_code == 401 and "set-cookie" not in again.headers
        assert http.post("/ui/tickets").status_code == 401  # minting needs a bearer token
        assert http.post("/ui/tickets", headers={**CSRF, "cookie": cookie}).status_code == 401
