"""The audit log of a real master, driven by the real kubectl: a denied request is
recorded with its user, verb, resource and code; the policy's levels hold (and
Secrets' values stay out whatever the policy asks); the file rotates by size."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.api.auth import User
from corral.api.token_store import create_token
from tests.cluster import Master
from tests.kubectl import Kubectl
from tests.poll import wait_for

POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version*", "/metrics", "/openapi*"]
  - level: None
    namespaces: [quiet]
  - level: RequestResponse
    resources: [{group: "", resources: [configmaps]}]
  - level: Request        # asked for, yet Secrets are logged at Metadata at most
    resources: [{group: "", resources: [secrets]}]
  - level: Metadata
"""
MAX_BYTES = int(0.02 * 1024 * 1024)
BACKUPS = 3


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Master, Path]]:
    base = tmp_path_factory.mktemp("audit")
    (base / "policy.yaml").write_text(POLICY)
    log = base / "logs" / "audit.log"
    m = Master(base / "master", extra_args=[
        "--disable", "scheduler", "--disable", "controllers",
        "--audit-log-path", str(log), "--audit-policy-file", str(base / "policy.yaml"),
        "--audit-log-maxsize", "0.02", "--audit-log-maxbackup", str(BACKUPS)]).start()
    try:
        yield m, log
    finally:
        m.stop()


@pytest.fixture(scope="module")
def kubectl(audited: tuple[Master, Path], tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(audited[0], tmp_path_factory.mktemp("kubecache"))


def events(log: Path) -> list[dict[str, Any]]:
    files = sorted(log.parent.glob(f"{log.stem}-*{log.suffix}")) + [log]
    return [json.loads(line) for f in files if f.exists() for line in f.read_text().splitlines()]


def find(log: Path, **want: Any) -> dict[str, Any] | None:
    for ev in events(log):
        if all(_at(ev, path) == value for path, value in want.items()):
            return ev
    return None


def _at(ev: dict[str, Any], path: str) -> Any:
    node: Any = ev
    for part in path.split("__"):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def test_a_denied_request_is_recorded_with_user_verb_resource_and_code(
        audited: tuple[Master, Path], kubectl: Kubectl) -> None:
    master, log = audited
    token, _ = create_token(master.data_dir, User("jane", "jane", ("dev",)))
    denied = wait_for(lambda: "Forbidden" in (out := kubectl.run(
        "--token", token, "get", "secrets", "-n", "default")).stderr and out,
        what="jane's token to be known and refused")
    assert 'User "jane" cannot list resource "secrets"' in denied.stderr
    ev = wait_for(lambda: find(log, user__username="jane", responseStatus__code=403),
                  what="the denial in the audit log")
    assert ev["verb"] == "list" and ev["stage"] == "ResponseComplete"
    assert ev["objectRef"] == {"resource": "secrets", "namespace": "default", "apiVersion": "v1"}
    assert ev["responseStatus"]["reason"] == "Forbidden"
    assert 'User \\"jane\\"' in json.dumps(ev["responseStatus"]["message"])
    assert ev["userAgent"].startswith("kubectl/") and ev["sourceIPs"] == ["127.0.0.1"]
    assert ev["level"] == "Metadata" and "requestObject" not in ev
    assert ev["stageTimestamp"] >= ev["requestReceivedTimestamp"]  # RFC 3339, same zone
    # A refused exec (a websocket upgrade, authorized as create) is recorded too:
    # jane may read the pod (kubectl reads it first), not exec into it.
    kubectl("create", "role", "pod-reader", "--verb=get", "--resource=pods")
    kubectl("create", "rolebinding", "jane-reads", "--role=pod-reader", "--user=jane")
    kubectl("run", "idle", "--image=none", "--restart=Never", "--", "sleep", "60")
    out = kubectl.run("--token", token, "exec", "idle", "-n", "default", "--", "true")
    assert out.returncode != 0
    refused = wait_for(lambda: find(log, user__username="jane", objectRef__subresource="exec"),
                       what="the refused exec in the audit log")
    assert refused["verb"] == "create" and refused["responseStatus"]["code"] == 403
    # A bad token: 401, recorded without a user.
    kubectl.run("--token", "not-a-token", "get", "pods")
    unauthorized = wait_for(lambda: find(log, responseStatus__code=401),
                            what="the 401 in the audit log")
    assert unauthorized["user"] == {} and unauthorized["objectRef"]["resource"] == "pods"


def test_levels_of_the_policy_and_secret_values_kept_out(
        audited: tuple[Master, Path], kubectl: Kubectl) -> None:
    master, log = audited
    kubectl("create", "secret", "generic", "db", "--from-literal=pw=SECRET-VALUE-31a")
    kubectl("create", "configmap", "cm", "--from-literal=a=CM-VALUE-77b")
    kubectl("create", "namespace", "quiet")
    kubectl("create", "configmap", "hushed", "-n", "quiet", "--from-literal=a=b")
    secret = wait_for(lambda: find(log, verb="create", objectRef__resource="secrets"),
                      what="the Secret's create")
    assert secret["level"] == "Metadata" and "requestObject" not in secret
    assert secret["objectRef"]["name"] == "db"  # the created object's name, as Kubernetes has
    mark = base64.b64encode(b"SECRET-VALUE-31a").decode()
    assert all(mark not in json.dumps(ev) and "SECRET-VALUE-31a" not in json.dumps(ev)
               for ev in events(log))
    cm = wait_for(lambda: find(log, verb="create", objectRef__resource="configmaps",
                               objectRef__namespace="default"), what="the ConfigMap's create")
    assert cm["level"] == "RequestResponse"
    assert cm["requestObject"]["data"] == {"a": "CM-VALUE-77b"}
    assert cm["responseObject"]["metadata"]["name"] == "cm"
    assert wait_for(lambda: find(log, verb="create", objectRef__resource="namespaces",
                                 objectRef__name="quiet"), what="the namespace's create")
    assert find(log, objectRef__namespace="quiet", objectRef__resource="configmaps") is None
    # A watch is a stream: logged (when it ends) without a responseObject.
    with master.http() as http:
        http.get("/api/v1/namespaces/default/configmaps",
                 params={"watch": "true", "timeoutSeconds": "1"})
    watched = wait_for(lambda: find(log, verb="watch", objectRef__resource="configmaps"),
                       what="the watch's event")
    assert watched["level"] == "RequestResponse" and "responseObject" not in watched


def test_impersonation_records_both_users(audited: tuple[Master, Path], kubectl: Kubectl) -> None:
    _, log = audited
    kubectl.run("--as", "bob", "get", "pods", "-n", "default")  # admin may impersonate
    ev = wait_for(lambda: find(log, impersonatedUser__username="bob"),
                  what="the impersonated request")
    assert ev["user"]["username"] == "admin" and ev["responseStatus"]["code"] == 403


def test_the_log_rotates_by_size_keeping_its_backups(audited: tuple[Master, Path]) -> None:
    master, log = audited
    with master.http() as http:
        http.post("/api/v1/namespaces/default/configmaps",
                  json={"metadata": {"name": "big"}, "data": {"k": "v" * 2000}})
        for _ in range(60):  # RequestResponse: ~5 KB a line, the file rotates every few
            assert http.get("/api/v1/namespaces/default/configmaps/big").status_code == 200
    backups = wait_for(lambda: len(b := sorted(log.parent.glob("audit-*.log"))) == BACKUPS and b,
                       what=f"{BACKUPS} backups")
    for f in [*backups, log]:
        assert f.stat().st_size <= MAX_BYTES and f.stat().st_mode & 0o777 == 0o600
    reads = [ev for ev in events(log) if ev["verb"] == "get"
             and ev["objectRef"].get("name") == "big"]
    assert reads and all(ev["responseObject"]["data"]["k"] == "v" * 2000 for ev in reads)
