"""`kubectl auth whoami`, `auth can-i` and `auth can-i --list` answer from the
server's authorizer, for whoever asks."""

from __future__ import annotations

import json
import secrets

from tests.cluster import Master
from tests.kubectl import Kubectl


def test_whoami_names_the_caller(kubectl: Kubectl, master: Master) -> None:
    me = json.loads(kubectl("auth", "whoami", "-o", "json"))
    assert me["kind"] == "SelfSubjectReview"
    assert me["status"]["userInfo"]["username"] == "admin"
    assert "system:masters" in me["status"]["userInfo"]["groups"]
    token = secrets.token_urlsafe(16)
    with open(master.data_dir / "token", "a") as tokens:  # picked up without a restart
        tokens.write(f'{token},jane,u-jane,"dev,qa"\n')
    table = kubectl("--token", token, "auth", "whoami")
    assert table.split() == ["ATTRIBUTE", "VALUE", "Username", "jane", "UID", "u-jane",
                             "Groups", "[dev", "qa", "system:authenticated]"]


def test_can_i(kubectl: Kubectl) -> None:
    assert kubectl("auth", "can-i", "create", "deployments").strip() == "yes"
    assert kubectl("auth", "can-i", "get", "pods", "--subresource=log",
                   "-n", "kube-system").strip() == "yes"
    assert kubectl("auth", "can-i", "get", "/metrics").strip() == "yes"
    rows = [line.split() for line in kubectl("auth", "can-i", "--list").splitlines()]
    assert rows[0] == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert ["*.*", "[]", "[]", "[*]"] in rows and ["[*]", "[]", "[*]"] in rows


def test_reviews_are_not_stored_and_only_created(master: Master) -> None:
    with master.http() as api:
        r = api.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json={
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": "delete", "resource": "nodes"}}})
        assert r.status_code == 201 and r.json()["status"]["allowed"] is True
        bad = api.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                       json={"spec": {}})
        assert bad.status_code == 422 and bad.json()["reason"] == "Invalid"
        assert api.get("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
                       ).status_code == 405
