"""Audit: the policy's matching (Kubernetes' checker.go rules), what a bad policy
file is told, the rotating file, and what a full queue does."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.types import Receive, Scope, Send

from corral.api.audit.middleware import AuditMiddleware, AuditUser
from corral.api.audit.policy import Level, PolicyError, default_policy, parse_policy
from corral.api.audit.sink import AuditLog, RotatingFile
from corral.api.auth import User
from corral.api.authz import Attributes, attributes_of

HEAD = b"kind: Policy\napiVersion: audit.k8s.io/v1\n"
JANE = User("jane", "jane", ("dev", "system:authenticated"))
NODE = User("system:node:n1", "", ("system:nodes", "system:authenticated"))

POLICY = parse_policy(b"""
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [system:node:n1]
    verbs: [get]
  - level: RequestResponse
    userGroups: [dev]
    resources: [{group: "", resources: [pods/log, "*/status"]}]
  - level: Request
    resources: [{group: apps, resources: ["deployments/*"]}]
  - level: Metadata
    resources: [{group: "", resources: [configmaps], resourceNames: [special]}]
    omitStages: [ResponseComplete]
  - level: Request
    namespaces: [team]
  - level: Metadata
    nonResourceURLs: ["/api*", /version]
""")


def attrs(user: User, method: str, path: str) -> Attributes:
    return attributes_of(user, method, path)


@pytest.mark.parametrize("user, method, path, level", [
    (NODE, "GET", "/api/v1/namespaces/team/pods/p", Level.NONE),  # first rule wins
    (NODE, "PUT", "/api/v1/namespaces/team/pods/p", Level.REQUEST),  # namespaces rule
    (JANE, "GET", "/api/v1/namespaces/x/pods/p/log", Level.REQUEST_RESPONSE),
    (JANE, "PUT", "/api/v1/namespaces/x/pods/p/status", Level.REQUEST_RESPONSE),  # */status
    (NODE, "PUT", "/api/v1/namespaces/x/pods/p/status", Level.NONE),  # not in group dev
    (JANE, "PUT", "/apis/apps/v1/namespaces/x/deployments/d/scale", Level.REQUEST),
    # "deployments/*" covers the resource itself too, as in Kubernetes' checker.go
    (JANE, "PUT", "/apis/apps/v1/namespaces/x/deployments/d", Level.REQUEST),
    (JANE, "PUT", "/apis/apps/v1/namespaces/x/replicasets/d", Level.NONE),
    (JANE, "GET", "/api/v1/namespaces/x/configmaps/special", Level.METADATA),
    (JANE, "GET", "/api/v1/namespaces/x/configmaps/other", Level.NONE),  # resourceNames
    (JANE, "GET", "/apis", Level.METADATA),  # /api* prefix
    (JANE, "GET", "/version", Level.METADATA),
    (JANE, "GET", "/healthz", Level.NONE),
])
def test_the_first_matching_rule_decides(user: User, method: str, path: str,
                                         level: Level) -> None:
    assert POLICY.decide(attrs(user, method, path)).level is level


def test_omitted_stages_add_up() -> None:
    decision = POLICY.decide(attrs(JANE, "GET", "/api/v1/namespaces/x/configmaps/special"))
    assert decision.omit_stages == {"RequestReceived", "ResponseComplete"}


def test_default_policy_keeps_secret_values_out_and_logs_writes_with_bodies() -> None:
    policy = default_policy()
    assert policy.decide(attrs(JANE, "POST", "/api/v1/namespaces/x/secrets")).level \
        is Level.METADATA
    assert policy.decide(attrs(JANE, "POST", "/api/v1/namespaces/x/pods")).level is Level.REQUEST
    assert policy.decide(attrs(JANE, "GET", "/api/v1/namespaces/x/pods")).level \
        is Level.METADATA
    assert policy.decide(attrs(NODE, "PUT", "/apis/coordination.k8s.io/v1/namespaces/"
                               "kube-node-lease/leases/n1")).level is Level.NONE
    assert policy.decide(attrs(JANE, "GET", "/readyz")).level is Level.NONE


@pytest.mark.parametrize("text, message", [
    (b"kind: Policy\napiVersion: audit.k8s.io/v1beta1\n", "one Policy of audit.k8s.io/v1"),
    (b"kind: Policy\napiVersion: audit.k8s.io/v1\n", "rules: Required value"),
    (b"kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: Everything}]\n",
     r"rules\[0\].level: Unsupported value: 'Everything'"),
    (b"kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: None, omitStages: [Done]}]\n",
     r"rules\[0\].omitStages: Unsupported value: 'Done'"),
    (HEAD + b"rules: [{level: None, nonResourceURLs: [/x], namespaces: [a]}]\n",
     "both regular resources and non-resource URLs"),
    (b"kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: None, nonResourceURLs: [x]}]\n",
     "a path starting with '/'"),
    (b"kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: None, users: admin}]\n",
     r"rules\[0\].users: must be a list of strings"),
])
def test_bad_policies_are_refused_naming_the_field(text: bytes, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text)


def test_rotation_keeps_the_newest_backups_within_the_size(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    out = RotatingFile(path, max_bytes=100, max_backups=2)
    lines = [f'{{"n":{i:03d},"pad":"{"x" * 30}"}}\n'.encode() for i in range(12)]
    for line in lines:
        out.write([line])
    out.close()
    backups = out.backups()
    assert len(backups) == 2 and path.stat().st_mode & 0o777 == 0o600
    files = [*backups, path]
    assert all(p.stat().st_size <= 100 for p in files)
    kept = b"".join(p.read_bytes() for p in files).splitlines(keepends=True)
    assert kept == lines[-len(kept):]  # the newest lines, in order; older backups removed


async def test_a_full_queue_waits_then_drops_and_counts(tmp_path: Path) -> None:
    sink = AuditLog(tmp_path / "audit.log", queue_size=1)  # no writer yet: nothing drains
    await sink.emit({"n": 1})
    await sink.emit({"n": 2})  # waits for room (FULL_WAIT), then is dropped
    assert sink.dropped == 1
    sink.start()
    await sink.emit({"n": 3})  # the writer drains: room again
    await sink.close()  # writes what is queued
    written = [orjson.loads(line) for line in (tmp_path / "audit.log").read_bytes().splitlines()]
    assert written == [{"n": 1}, {"n": 3}]


async def test_close_writes_everything_queued(tmp_path: Path) -> None:
    sink = AuditLog(tmp_path / "audit.log")
    sink.start()
    await asyncio.gather(*(sink.emit({"n": i}) for i in range(2500)))
    await sink.close()
    assert len((tmp_path / "audit.log").read_bytes().splitlines()) == 2500


EVERYTHING = parse_policy(HEAD + b"rules: [{level: RequestResponse}]\n")


async def _through_audit(tmp_path: Path, method: str, path: str, body: bytes,
                         user: User) -> dict[str, Any]:
    """One request through the audit middleware around an app that reads the body
    and answers JSON (the seam: any ASGI app below it); the Event it wrote."""
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"token": "t0ps3cret"}'})

    async def authenticated(scope: Scope, receive: Receive, send: Send) -> None:
        scope["user"] = user
        await AuditUser(app, EVERYTHING)(scope, receive, send)

    sink = AuditLog(tmp_path / "audit.log")
    sink.start()
    scope = {"type": "http", "method": method, "path": path, "query_string": b"",
             "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.9", 1)}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await AuditMiddleware(authenticated, EVERYTHING, sink)(scope, receive, send)
    await sink.close()
    assert (b"audit-id", orjson.loads((tmp_path / "audit.log").read_bytes())["auditID"].encode()
            ) in sent[0]["headers"]
    return dict(orjson.loads((tmp_path / "audit.log").read_bytes()))


async def test_credentials_are_capped_at_metadata_whatever_the_policy(tmp_path: Path) -> None:
    login = await _through_audit(tmp_path / "a", "POST", "/ui/login", b'{"token": "t0ps3cret"}',
                                 JANE)
    assert login["level"] == "Metadata" and "t0ps3cret" not in json.dumps(login)
    secret = await _through_audit(tmp_path / "b", "POST", "/api/v1/namespaces/x/secrets",
                                  b'{"data": {"pw": "dDBwczNjcmV0"}}', JANE)
    assert secret["level"] == "Metadata" and "dDBwczNjcmV0" not in json.dumps(secret)
    cm = await _through_audit(tmp_path / "c", "POST", "/api/v1/namespaces/x/configmaps",
                              b'{"data": {"k": "v"}}', JANE)
    assert cm["level"] == "RequestResponse" and cm["requestObject"] == {"data": {"k": "v"}}
    assert cm["responseObject"] == {"token": "t0ps3cret"} and cm["sourceIPs"] == ["127.0.0.9"]
    assert cm["user"] == {"username": "jane", "uid": "jane",
                          "groups": ["dev", "system:authenticated"]}
