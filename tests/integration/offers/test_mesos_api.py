"""The Mesos v1 scheduler API of a real master (`--mesos-listen`), driven by a
hand-written framework client over HTTP: /version, SUBSCRIBE's RecordIO stream
and heartbeats, the Framework objects kubectl lists, TEARDOWN, failover timeouts,
and the status codes Mesos answers bad calls with."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.cluster import Master
from tests.kubectl import Kubectl
from tests.mesos_client import Framework
from tests.poll import wait_for


def framework_obj(master: Master, framework_id: str) -> dict[str, object]:
    with master.http() as http:
        r = http.get(f"/apis/corral.dev/v1/frameworks/{framework_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


def phase_of(master: Master, framework_id: str) -> str:
    return str(framework_obj(master, framework_id).get("status", {}).get("phase"))  # type: ignore[union-attr]


def test_version_is_mesos(url: str) -> None:
    r = httpx.get(f"{url}/version")
    assert r.status_code == 200
    assert [int(p) for p in r.json()["version"].split(".")] == [1, 11, 0]


def test_subscribe_streams_subscribed_and_heartbeat(url: str, mesos_master: Master,
                                                    frameworks: list[Framework],
                                                    tmp_path: Path) -> None:
    fw = Framework(url, "first", roles=["analytics"])
    frameworks.append(fw)
    fw.subscribe()
    assert fw.stream_id and fw.id
    subscribed = fw.seen[0]["subscribed"]
    assert subscribed["heartbeat_interval_seconds"] == 15
    assert subscribed["master_info"]["port"] == int(url.rsplit(":", 1)[1])
    fw.wait_event("HEARTBEAT")
    obj = framework_obj(mesos_master, fw.id)
    # The principal is the one it authenticated as (FrameworkInfo named none).
    assert obj["spec"] == {"name": "first", "user": "", "roles": ["analytics"],
                           "failoverTimeout": 0, "capabilities": ["MULTI_ROLE"],
                           "principal": "corral-framework"}
    assert obj["status"]["phase"] == "Subscribed"  # type: ignore[index]
    kubectl = Kubectl(mesos_master, tmp_path / "cache")
    table = kubectl("get", "frameworks")
    header, *rows = table.splitlines()
    assert header.split()[:6] == ["NAME", "FRAMEWORK", "ROLES", "STATUS", "SHARE", "TASKS"]
    assert any(r.split()[:4] == [fw.id, "first", "analytics", "Subscribed"] for r in rows), table
    state = httpx.get(f"{url}/master/state").json()
    listed = {f["id"]: f for f in state["frameworks"]}
    assert listed[fw.id]["name"] == "first" and listed[fw.id]["active"] is True
    assert state["pid"] == f"master@{url.split('@')[1]}"


def test_bad_calls_get_mesos_status_codes(url: str, frameworks: list[Framework]) -> None:
    fw = Framework(url, "picky")
    frameworks.append(fw)
    fw.subscribe()
    assert fw.call("REVIVE").status_code == 202
    assert fw.call("REQUEST", request={"requests": []}).status_code == 202  # accepted, unused
    protobuf = fw.call("REVIVE", content_type="application/x-protobuf", raw=b"\x08\x06")
    assert protobuf.status_code == 415 and "JSON" in protobuf.text
    assert fw.call("REVIVE", raw=b"{not json").status_code == 400
    bad_type = fw.call("NO_SUCH_CALL")
    assert bad_type.status_code == 400 and "type" in bad_type.text
    no_body = fw.call("KILL")
    assert no_body.status_code == 400 and "'kill'" in no_body.text
    bad_uuid = fw.call("ACKNOWLEDGE", acknowledge={"agent_id": {"value": "a"},
                                                   "task_id": {"value": "t"}, "uuid": "AAAA"})
    assert bad_uuid.status_code == 400 and "UUID" in bad_uuid.text
    wrong_stream = fw.call("REVIVE", stream_id="not-the-stream")
    assert wrong_stream.status_code == 400 and "stream ID" in wrong_stream.text
    assert fw.call("REVIVE", stream_id="").status_code == 400
    stranger = Framework(url, "stranger", framework_id="no-such-framework")
    frameworks.append(stranger)
    unknown = stranger.call("REVIVE")
    assert unknown.status_code == 400 and "cannot be found" in unknown.text
    assert httpx.get(f"{url}/api/v1/scheduler").status_code == 405
    no_type = httpx.post(f"{url}/api/v1/scheduler", content=b"{}")
    assert no_type.status_code == 415  # no Content-Type
    wants_text = httpx.post(f"{url}/api/v1/scheduler", content=b"{}",
                            headers={"Content-Type": "application/json", "Accept": "text/html"})
    assert wants_text.status_code == 406
    nameless = httpx.post(f"{url}/api/v1/scheduler", json={
        "type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root"}}})
    assert nameless.status_code == 400 and "name" in nameless.text
    bad_role = httpx.post(f"{url}/api/v1/scheduler", json={
        "type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "root", "name": "x", "roles": ["-bad"]}}})
    assert bad_role.status_code == 400 and "spec.roles[0]" in bad_role.text


def test_teardown_removes_the_framework_for_good(url: str, mesos_master: Master,
                                                 frameworks: list[Framework]) -> None:
    fw = Framework(url, "short-lived", failover_timeout=3600)
    frameworks.append(fw)
    fw.subscribe()
    assert fw.call("TEARDOWN").status_code == 202
    wait_for(lambda: fw.events.get(timeout=30) is None, 30, "the stream to end")
    assert phase_of(mesos_master, fw.id) == "Removed"
    assert fw.call("REVIVE").status_code == 403  # no longer subscribed
    again = Framework(url, "short-lived", framework_id=fw.id)
    frameworks.append(again)
    with pytest.raises(AssertionError, match="stream ended"):
        again.subscribe()
    assert again.seen[-1] == {"type": "ERROR", "error": {"message": "Framework has been removed"}}
    state = httpx.get(f"{url}/master/state").json()
    assert fw.id in {f["id"] for f in state["completed_frameworks"]}


def test_resubscribe_within_failover_timeout_then_timeout(url: str, mesos_master: Master,
                                                          frameworks: list[Framework]) -> None:
    fw = Framework(url, "failover", failover_timeout=3600)
    frameworks.append(fw)
    fw.subscribe()
    first_stream = fw.stream_id
    fw.disconnect()
    wait_for(lambda: phase_of(mesos_master, fw.id) == "Disconnected", 30, "Disconnected")
    assert fw.call("REVIVE").status_code == 403  # known, but not subscribed
    fw.subscribe()  # with its id: the same framework again
    assert fw.stream_id != first_stream
    assert phase_of(mesos_master, fw.id) == "Subscribed"
    # A second subscription with the id fails the first one over.
    twin = Framework(url, "failover", framework_id=fw.id, failover_timeout=0.5)
    frameworks.append(twin)
    twin.subscribe()
    fw.wait_event("ERROR", match=lambda e: e["error"]["message"] == "Framework failed over")
    assert json.loads(json.dumps(framework_obj(mesos_master, fw.id)))["spec"][
        "failoverTimeout"] == 0.5
    twin.disconnect()
    wait_for(lambda: phase_of(mesos_master, fw.id) == "Removed", 30,
             "removal after the failover timeout")
    assert framework_obj(mesos_master, fw.id)["status"]["message"] == (  # type: ignore[index]
        "Framework failover timeout")


# ---- authentication and authorization (Mesos' --authenticate_frameworks, ACLs) -------


def subscribe_call(name: str, **info: object) -> dict[str, object]:
    return {"type": "SUBSCRIBE",
            "subscribe": {"framework_info": {"name": name, "user": "", **info}}}


def rbac(master: Master, kind: str, body: dict[str, object]) -> None:
    with master.http() as http:
        r = http.post(f"/apis/rbac.authorization.k8s.io/v1/{kind}", json=body)
        assert r.status_code == 201, r.text


def test_calls_must_authenticate_as_mesos_answers(url: str, mesos_master: Master) -> None:
    """No credentials, a wrong secret, a principal the file does not hold or a
    token the API does not know: 401 with Mesos' Basic challenge."""
    bare = str(mesos_master.mesos_url)  # type: ignore[attr-defined]
    host = bare.removeprefix("http://")
    body = subscribe_call("anonymous")
    for where in (bare, f"http://corral-framework:wrong@{host}", f"http://nobody:x@{host}"):
        r = httpx.post(f"{where}/api/v1/scheduler", json=body)
        assert r.status_code == 401, (where, r.status_code, r.text)
        assert r.headers["www-authenticate"] == 'Basic realm="mesos-master-scheduler"'
    r = httpx.post(f"{bare}/api/v1/scheduler", json=body,
                   headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    # What Mesos leaves open by default stays open.
    assert httpx.get(f"{bare}/version").status_code == 200
    assert httpx.get(f"{bare}/master/state").status_code == 200


def test_framework_principal_must_be_the_authenticated_one(
        url: str, mesos_master: Master, frameworks: list[Framework]) -> None:
    r = httpx.post(f"{url}/api/v1/scheduler",
                   json=subscribe_call("impostor", principal="someone-else"))
    assert r.status_code == 400
    assert r.text == ("Authenticated principal 'corral-framework' does not match principal "
                      "'someone-else' set in `FrameworkInfo`")
    fw = Framework(url, "owned")
    frameworks.append(fw)
    fw.subscribe()
    # The admin's token authenticates (a bearer token of the API), but it is not
    # the framework's principal: its calls and a take-over are refused.
    bare = str(mesos_master.mesos_url)  # type: ignore[attr-defined]
    admin = Framework(bare, "owned", framework_id=fw.id, token=mesos_master.token)
    frameworks.append(admin)
    admin.stream_id = fw.stream_id
    r = admin.call("REVIVE")
    assert r.status_code == 400 and r.text == (
        "Authenticated principal 'admin' does not match principal 'corral-framework' set "
        "in `FrameworkInfo`")
    with pytest.raises(AssertionError, match="stream ended"):
        admin.subscribe()
    assert admin.seen[-1] == {"type": "ERROR", "error": {
        "message": "Changing framework's principal is not allowed."}}
    assert fw.call("REVIVE").status_code == 202  # the owner is untouched


def test_subscribe_is_authorized_per_role_by_rbac(mesos_master: Master,
                                                  frameworks: list[Framework]) -> None:
    """A bearer token (a `corral token`) for a user with no binding may register in
    no role (403); "register" on frameworkroles.corral.dev/<role> lets it in that
    role only."""
    from corral.api.auth import User
    from corral.api.token_store import replace_token

    token = replace_token(mesos_master.data_dir, User("fw-team", "fw-team", ()))
    bare = str(mesos_master.mesos_url)  # type: ignore[attr-defined]
    r = httpx.post(f"{bare}/api/v1/scheduler", json=subscribe_call("team"),
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert r.text == ("Not authorized to use role '*': fw-team may not register "
                      "frameworkroles.corral.dev/*")
    rbac(mesos_master, "clusterroles", {
        "metadata": {"name": "team-frameworks"},
        "rules": [{"apiGroups": ["corral.dev"], "resources": ["frameworkroles"],
                   "verbs": ["register"], "resourceNames": ["team"]}]})
    rbac(mesos_master, "clusterrolebindings", {
        "metadata": {"name": "team-frameworks"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "team-frameworks"},
        "subjects": [{"kind": "User", "name": "fw-team"}]})
    fw = Framework(bare, "team", roles=["team"], token=token)
    frameworks.append(fw)
    fw.subscribe()
    assert framework_obj(mesos_master, fw.id)["spec"]["principal"] == "fw-team"  # type: ignore[index]
    both = httpx.post(f"{bare}/api/v1/scheduler", headers={"Authorization": f"Bearer {token}"},
                      json=subscribe_call("greedy", roles=["team", "prod"],
                                          capabilities=[{"type": "MULTI_ROLE"}]))
    assert both.status_code == 403 and both.text.startswith("Not authorized to use role 'prod'")
