"""Every verb and error of the API over real HTTPS against a real `corral master`."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import manifests
from tests.cluster import Master

PODS = "/api/v1/namespaces/{ns}/pods"
DEPLOYS = "/apis/apps/v1/namespaces/{ns}/deployments"
QUIET = ["--disable", "scheduler", "--disable", "controllers"]  # a master where only the test writes


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pod(name: str, **labels: str) -> dict[str, Any]:
    return manifests.pod(name, labels=labels or {"app": "t"}, containers=[
        manifests.container(["sleep", "1"], name="c", image="busybox")])


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    return manifests.deployment(name, replicas, template=manifests.pod_template(
        {"app": name}, containers=[manifests.container(["true"], name="c", image="x")]))


@pytest.fixture(scope="module")
def api(quiet_master: Master) -> httpx.Client:
    with quiet_master.http() as client:
        yield client


@pytest.fixture
def ns(api: httpx.Client) -> str:
    name = unique("ns")
    r = api.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert r.status_code == 201, r.text
    return name


def test_create_get_list(api: httpx.Client, ns: str) -> None:
    r = api.post(PODS.format(ns=ns), json=pod("a"))
    assert r.status_code == 201, r.text
    created = r.json()
    meta = created["metadata"]
    assert meta["namespace"] == ns and meta["uid"] and meta["generation"] == 1
    assert meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert created["status"]["phase"] == "Pending"
    assert created["spec"]["restartPolicy"] == "Always"  # defaulted

    got = api.get(f"{PODS.format(ns=ns)}/a").json()
    assert got["metadata"]["uid"] == meta["uid"]
    listed = api.get(PODS.format(ns=ns)).json()
    assert listed["kind"] == "PodList" and [p["metadata"]["name"] for p in listed["items"]] == ["a"]
    assert int(listed["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])


def test_create_twice_is_already_exists(api: httpx.Client, ns: str) -> None:
    assert api.post(PODS.format(ns=ns), json=pod("dup")).status_code == 201
    r = api.post(PODS.format(ns=ns), json=pod("dup"))
    assert r.status_code == 409
    assert r.json()["reason"] == "AlreadyExists"
    assert r.json()["message"] == 'pods "dup" already exists'


def test_generate_name(api: httpx.Client, ns: str) -> None:
    body = pod("")
    body["metadata"] = {"generateName": "gen-"}
    r = api.post(PODS.format(ns=ns), json=body)
    assert r.status_code == 201, r.text
    name = r.json()["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == len("gen-") + 5


def test_get_missing_is_not_found(api: httpx.Client, ns: str) -> None:
    r = api.get(f"{PODS.format(ns=ns)}/nope")
    assert r.status_code == 404
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["details"]["name"] == "nope"


def test_create_in_missing_namespace(api: httpx.Client) -> None:
    r = api.post(PODS.format(ns="no-such-ns"), json=pod("a"))
    assert r.status_code == 404
    assert "namespaces \"no-such-ns\" not found" in r.json()["message"]


def test_update_with_stale_resource_version_conflicts(api: httpx.Client, ns: str) -> None:
    created = api.post(PODS.format(ns=ns), json=pod("u")).json()
    first = dict(created)
    created["metadata"]["labels"] = {"app": "t", "v": "2"}
    r = api.put(f"{PODS.format(ns=ns)}/u", json=created)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["labels"]["v"] == "2"
    assert int(r.json()["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    first["metadata"]["labels"] = {"app": "t", "v": "3"}
    r = api.put(f"{PODS.format(ns=ns)}/u", json=first)
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    assert api.get(f"{PODS.format(ns=ns)}/u").json()["metadata"]["labels"]["v"] == "2"


def test_generation_bumps_on_spec_change_only(api: httpx.Client, ns: str) -> None:
    d = api.post(DEPLOYS.format(ns=ns), json=deployment("gen")).json()
    assert d["metadata"]["generation"] == 1
    d["metadata"]["labels"] = {"x": "y"}
    d = api.put(f"{DEPLOYS.format(ns=ns)}/gen", json=d).json()
    assert d["metadata"]["generation"] == 1
    d["spec"]["replicas"] = 5
    d = api.put(f"{DEPLOYS.format(ns=ns)}/gen", json=d).json()
    assert d["metadata"]["generation"] == 2


def test_status_subresource_only_changes_status(api: httpx.Client, ns: str) -> None:
    d = api.post(DEPLOYS.format(ns=ns), json=deployment("st")).json()
    d["status"] = {"replicas": 2, "observedGeneration": 1}
    d["spec"]["replicas"] = 9  # ignored by the status subresource
    r = api.put(f"{DEPLOYS.format(ns=ns)}/st/status", json=d)
    assert r.status_code == 200, r.text
    got = api.get(f"{DEPLOYS.format(ns=ns)}/st").json()
    assert got["status"]["replicas"] == 2 and got["spec"]["replicas"] == 2
    got["status"] = {"replicas": 7}
    got = api.put(f"{DEPLOYS.format(ns=ns)}/st", json=got).json()
    assert got["status"]["replicas"] == 2  # the main resource ignores status


def test_patches(api: httpx.Client, ns: str) -> None:
    api.post(DEPLOYS.format(ns=ns), json=deployment("p"))
    url = f"{DEPLOYS.format(ns=ns)}/p"
    r = api.patch(url, content=json.dumps({"spec": {"replicas": 4}}),
                  headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 4
    r = api.patch(url, content=json.dumps([{"op": "replace", "path": "/spec/replicas", "value": 1}]),
                  headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 1
    smp = {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "env": [{"name": "A", "value": "1"}]},
        {"name": "side", "image": "y", "command": ["true"]}]}}}}
    r = api.patch(url, content=json.dumps(smp),
                  headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 200, r.text
    containers = r.json()["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["c", "side"]
    assert containers[0]["command"] == ["true"] and containers[0]["env"][0]["value"] == "1"
    r = api.patch(url, content=b"{}", headers={"Content-Type": "application/x-unknown"})
    assert r.status_code == 415


def test_server_side_apply_creates_then_updates(api: httpx.Client, ns: str) -> None:
    url = f"{DEPLOYS.format(ns=ns)}/ssa?fieldManager=kubectl&force=false"
    r = api.patch(url, content=json.dumps(deployment("ssa")),
                  headers={"Content-Type": "application/apply-patch+yaml"})
    assert r.status_code == 201, r.text
    changed = deployment("ssa", replicas=3)
    r = api.patch(url, content=json.dumps(changed),
                  headers={"Content-Type": "application/apply-patch+yaml"})
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 3


def test_scale_subresource(api: httpx.Client, ns: str) -> None:
    api.post(DEPLOYS.format(ns=ns), json=deployment("sc"))
    scale = api.get(f"{DEPLOYS.format(ns=ns)}/sc/scale").json()
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    assert scale["status"]["selector"] == "app=sc"
    r = api.patch(f"{DEPLOYS.format(ns=ns)}/sc/scale", content=b'{"spec":{"replicas":4}}',
                  headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 4
    assert api.get(f"{DEPLOYS.format(ns=ns)}/sc").json()["spec"]["replicas"] == 4


def test_binding_is_once_only(api: httpx.Client, ns: str) -> None:
    api.post(PODS.format(ns=ns), json=pod("b"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    r = api.post(f"{PODS.format(ns=ns)}/b/binding", json=binding)
    assert r.status_code == 201, r.text
    got = api.get(f"{PODS.format(ns=ns)}/b").json()
    assert got["spec"]["nodeName"] == "node-1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True"
               for c in got["status"]["conditions"])
    binding["target"]["name"] = "node-2"
    r = api.post(f"{PODS.format(ns=ns)}/b/binding", json=binding)
    assert r.status_code == 409


def test_delete_unbound_pod_is_immediate(api: httpx.Client, ns: str) -> None:
    api.post(PODS.format(ns=ns), json=pod("d"))
    r = api.request("DELETE", f"{PODS.format(ns=ns)}/d",
                    content=b'{"propagationPolicy":"Background"}')
    assert r.status_code == 200, r.text
    assert api.get(f"{PODS.format(ns=ns)}/d").status_code == 404


def test_delete_bound_pod_is_graceful(api: httpx.Client, ns: str) -> None:
    p = pod("g")
    p["spec"]["nodeName"] = "node-1"
    api.post(PODS.format(ns=ns), json=p)
    r = api.delete(f"{PODS.format(ns=ns)}/g")
    assert r.status_code == 200
    got = api.get(f"{PODS.format(ns=ns)}/g").json()
    assert got["metadata"]["deletionTimestamp"]
    assert got["metadata"]["deletionGracePeriodSeconds"] == 30
    r = api.delete(f"{PODS.format(ns=ns)}/g?gracePeriodSeconds=0")  # what the agent sends
    assert r.status_code == 200
    assert api.get(f"{PODS.format(ns=ns)}/g").status_code == 404


def test_finalizers_hold_deletion(api: httpx.Client, ns: str) -> None:
    body = {"metadata": {"name": "f", "finalizers": ["example.com/hold"]}, "data": {"a": "b"}}
    api.post(f"/api/v1/namespaces/{ns}/configmaps", json=body)
    r = api.delete(f"/api/v1/namespaces/{ns}/configmaps/f")
    assert r.status_code == 200
    held = api.get(f"/api/v1/namespaces/{ns}/configmaps/f").json()
    assert held["metadata"]["deletionTimestamp"]
    held["metadata"]["finalizers"] = []
    assert api.put(f"/api/v1/namespaces/{ns}/configmaps/f", json=held).status_code == 200
    assert api.get(f"/api/v1/namespaces/{ns}/configmaps/f").status_code == 404


def test_delete_collection(api: httpx.Client, ns: str) -> None:
    for i in range(3):
        api.post(f"/api/v1/namespaces/{ns}/configmaps",
                 json={"metadata": {"name": f"c{i}", "labels": {"k": "x" if i else "y"}}})
    r = api.delete(f"/api/v1/namespaces/{ns}/configmaps?labelSelector=k%3Dx")
    assert r.status_code == 200
    left = api.get(f"/api/v1/namespaces/{ns}/configmaps").json()["items"]
    assert [c["metadata"]["name"] for c in left] == ["c0"]


def test_label_and_field_selectors_and_paging(api: httpx.Client, ns: str) -> None:
    for i in range(7):
        api.post(PODS.format(ns=ns), json=pod(f"s{i}", app="a" if i % 2 else "b", tier=str(i)))
    def names(q: str) -> list[str]:
        r = api.get(f"{PODS.format(ns=ns)}?{q}")
        assert r.status_code == 200, r.text
        return [p["metadata"]["name"] for p in r.json()["items"]]
    assert names("labelSelector=app%3Da") == ["s1", "s3", "s5"]
    assert names("labelSelector=app!%3Da") == ["s0", "s2", "s4", "s6"]
    assert names("labelSelector=tier+in+(1,2)") == ["s1", "s2"]
    assert names("labelSelector=tier+notin+(1,2),app") == ["s0", "s3", "s4", "s5", "s6"]
    assert names("fieldSelector=metadata.name%3Ds3") == ["s3"]
    assert names("fieldSelector=status.phase%3DPending&labelSelector=app%3Db") == [
        "s0", "s2", "s4", "s6"]
    seen: list[str] = []
    token = ""
    while True:
        r = api.get(f"{PODS.format(ns=ns)}?limit=3" + (f"&continue={token}" if token else ""))
        body = r.json()
        seen += [p["metadata"]["name"] for p in body["items"]]
        token = body["metadata"].get("continue", "")
        if not token:
            break
    assert seen == [f"s{i}" for i in range(7)]


def test_list_across_namespaces(api: httpx.Client, ns: str) -> None:
    api.post(PODS.format(ns=ns), json=pod("x"))
    items = api.get("/api/v1/pods").json()["items"]
    assert any(p["metadata"]["namespace"] == ns for p in items)


def test_watch_from_resource_version(api: httpx.Client, ns: str) -> None:
    rv = api.get(PODS.format(ns=ns)).json()["metadata"]["resourceVersion"]
    api.post(PODS.format(ns=ns), json=pod("w1"))
    p = api.get(f"{PODS.format(ns=ns)}/w1").json()
    p["metadata"]["labels"]["x"] = "1"
    api.put(f"{PODS.format(ns=ns)}/w1", json=p)
    api.delete(f"{PODS.format(ns=ns)}/w1")
    events = []
    with api.stream("GET", f"{PODS.format(ns=ns)}?watch=1&resourceVersion={rv}"
                    "&timeoutSeconds=2") as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line:
                events.append(json.loads(line))
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


def test_watch_receives_live_events(api: httpx.Client, ns: str) -> None:
    got: list[dict[str, Any]] = []
    ready = threading.Event()

    def watch() -> None:
        with api.stream("GET", f"{PODS.format(ns=ns)}?watch=true&timeoutSeconds=10") as r:
            ready.set()
            for line in r.iter_lines():
                if line:
                    got.append(json.loads(line))
                    if len(got) == 1:
                        return

    t = threading.Thread(target=watch)
    t.start()
    ready.wait(5)
    api.post(PODS.format(ns=ns), json=pod("live"))
    t.join(15)
    assert got and got[0]["type"] == "ADDED"
    assert got[0]["object"]["metadata"]["name"] == "live"


def test_watch_with_label_selector_sees_objects_leave(api: httpx.Client, ns: str) -> None:
    api.post(PODS.format(ns=ns), json=pod("sel", app="in"))
    rv = api.get(PODS.format(ns=ns)).json()["metadata"]["resourceVersion"]
    p = api.get(f"{PODS.format(ns=ns)}/sel").json()
    p["metadata"]["labels"] = {"app": "out"}
    api.put(f"{PODS.format(ns=ns)}/sel", json=p)
    with api.stream("GET", f"{PODS.format(ns=ns)}?watch=1&resourceVersion={rv}"
                    "&labelSelector=app%3Din&timeoutSeconds=1") as r:
        events = [json.loads(line) for line in r.iter_lines() if line]
    assert [e["type"] for e in events] == ["DELETED"]


def test_watch_without_resource_version_starts_with_existing(api: httpx.Client, ns: str) -> None:
    api.post(PODS.format(ns=ns), json=pod("old"))
    with api.stream("GET", f"{PODS.format(ns=ns)}?watch=1&timeoutSeconds=1") as r:
        events = [json.loads(line) for line in r.iter_lines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "old")]


def test_unauthenticated_requests_are_rejected(quiet_master: Master) -> None:
    with httpx.Client(base_url=quiet_master.url, verify=str(quiet_master.ca_path)) as anon:
        r = anon.get("/api/v1/pods")
        assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"
        assert anon.get("/healthz").status_code == 200
        assert anon.get("/readyz").status_code == 200
        for path in ("/version", "/version/"):  # kr8s asks with the trailing slash
            r = anon.get(path)
            assert r.status_code == 200 and r.json()["minor"] == "32", path
    with httpx.Client(base_url=quiet_master.url, verify=str(quiet_master.ca_path),
                      headers={"Authorization": "Bearer wrong"}) as bad:
        assert bad.get("/api/v1/pods").status_code == 401


def test_tls_verifies_with_the_kubeconfig_ca(quiet_master: Master) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{quiet_master.url}/healthz")  # system CAs do not trust the cluster CA
    assert httpx.get(f"{quiet_master.url}/healthz", verify=str(quiet_master.ca_path)).text == "ok"


def test_default_namespaces_exist(api: httpx.Client) -> None:
    names = {n["metadata"]["name"] for n in api.get("/api/v1/namespaces").json()["items"]}
    assert {"default", "kube-system", "kube-node-lease"} <= names


def test_metrics(api: httpx.Client, ns: str) -> None:
    api.get(PODS.format(ns=ns))
    text = api.get("/metrics").text
    assert "apiserver_request_total" in text
    assert 'resource="pods"' in text and 'verb="list"' in text
    assert "corral_store_revision" in text


def test_method_not_allowed(api: httpx.Client, ns: str) -> None:
    r = api.put(PODS.format(ns=ns), json=pod("x"))
    assert r.status_code == 405 and r.json()["reason"] == "MethodNotAllowed"


def _compaction_log(m: Master) -> str:
    """The master's compaction lines, for a failure message."""
    return "\n".join(line for line in m.log().splitlines() if "compact" in line)


def _decode_continue_rv(token: str) -> int:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return int(json.loads(raw)["rv"])


def _writes_after_a_paged_list(api: httpx.Client) -> tuple[str, str, str]:
    """Creates configmaps c and d in namespace g, reads the first page of one item,
    then updates c 30 times. Returns (c's first resourceVersion, the page's
    resourceVersion, the page's continue token); the page's is the later one."""
    api.post("/api/v1/namespaces", json={"metadata": {"name": "g"}})
    first = api.post("/api/v1/namespaces/g/configmaps",
                     json={"metadata": {"name": "c"}, "data": {"n": "0"}}).json()
    old_rv = first["metadata"]["resourceVersion"]
    api.post("/api/v1/namespaces/g/configmaps", json={"metadata": {"name": "d"}})
    page = api.get("/api/v1/namespaces/g/configmaps?limit=1").json()
    page_rv, token = page["metadata"]["resourceVersion"], page["metadata"]["continue"]
    assert int(page_rv) > int(old_rv) and _decode_continue_rv(token) == int(page_rv)
    # The token works while its revision is not compacted: the 410 below is compaction's.
    r = api.get(f"/api/v1/namespaces/g/configmaps?limit=1&continue={token}")
    assert r.status_code == 200, r.text
    assert [o["metadata"]["name"] for o in r.json()["items"]] == ["d"]
    obj = first
    for i in range(30):
        obj["data"]["n"] = str(i)
        r = api.put("/api/v1/namespaces/g/configmaps/c", json=obj)
        assert r.status_code == 200, r.text
        obj = r.json()
    return old_rv, page_rv, token


class _Watched:
    """A watch's answer: its Status code (410 comes as the stream's one ERROR event
    on an HTTP 200, as kube-apiserver answers it) and that Status."""

    def __init__(self, r: httpx.Response) -> None:
        self.http_code = r.status_code
        first = json.loads(r.text.splitlines()[0]) if r.status_code == 200 and r.text else {}
        if first.get("type") == "ERROR":
            self.status: dict[str, Any] = first["object"]
            self.status_code = int(self.status["code"])
        else:
            self.status = r.json() if r.status_code != 200 else {}
            self.status_code = r.status_code

    def json(self) -> dict[str, Any]:
        return self.status


def _watch_status(api: httpx.Client, rv: str) -> _Watched:
    r = api.get(f"/api/v1/namespaces/g/configmaps?watch=1&resourceVersion={rv}"
                "&timeoutSeconds=1")
    watched = _Watched(r)
    assert watched.http_code == 200, r.text  # an expired watch too: the 410 is in it
    return watched


def test_watch_from_compacted_revision_is_gone(tmp_path: Path) -> None:
    import time

    store = f"sqlite:///{tmp_path}/state.db?history=5&compact_interval=0.05"
    m = Master(tmp_path / "m", extra_args=["--store", store, *QUIET]).start()
    try:
        with m.http() as api:
            old_rv, page_rv, token = _writes_after_a_paged_list(api)
            # Wait until automatic compaction has passed the later of the two
            # revisions, the continue token's. A revision is Gone once the compacted
            # revision is above it; at the compacted revision itself history is
            # complete (etcd's rule), so old_rv alone being Gone says nothing about
            # the token yet (see test_continue_and_watch_at_the_compacted_revision).
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                r = _watch_status(api, page_rv)
                if r.status_code == 410:
                    break
                time.sleep(0.1)
            assert r.status_code == 410, f"compaction never passed {page_rv}:\n{_compaction_log(m)}"
            assert r.json()["reason"] == "Expired"
            r = _watch_status(api, old_rv)
            assert r.status_code == 410 and r.json()["reason"] == "Expired"
            r = api.get(f"/api/v1/namespaces/g/configmaps?limit=1&continue={token}")
            assert r.status_code == 410 and r.json()["reason"] == "Expired", (
                f"{r.text}\n{_compaction_log(m)}")
            # a fresh list and watch from its revision work
            rv = api.get("/api/v1/namespaces/g/configmaps").json()["metadata"]["resourceVersion"]
            r = _watch_status(api, rv)
            assert r.status_code == 200
    finally:
        m.stop()


def _compact(db: Path, revision: int) -> None:
    """Compact the store under a running master, as its own compactor would: the
    master reads the compacted revision from the database on every list and watch."""
    from corral.store.sqlite import SqliteStore

    async def run() -> None:
        store = await SqliteStore.open(db, compact_interval=0.0)
        try:
            await store.compact(revision)
        finally:
            await store.close()

    asyncio.run(run())


def test_continue_and_watch_at_the_compacted_revision(tmp_path: Path) -> None:
    """The boundary, deterministically: at compacted revision C, list and watch
    from C are served and anything below C is 410; both answer alike."""
    db = tmp_path / "state.db"
    store = f"sqlite:///{db}?compact_interval=0"  # no automatic compaction: the test compacts
    m = Master(tmp_path / "m", extra_args=["--store", store, *QUIET]).start()
    try:
        with m.http() as api:
            old_rv, page_rv, token = _writes_after_a_paged_list(api)
            continue_url = f"/api/v1/namespaces/g/configmaps?limit=1&continue={token}"
            _compact(db, int(page_rv))
            assert _watch_status(api, old_rv).status_code == 410
            r = api.get(continue_url)  # the token's revision is the compacted one: served
            assert r.status_code == 200, r.text
            assert [o["metadata"]["name"] for o in r.json()["items"]] == ["d"]
            assert r.json()["metadata"]["resourceVersion"] == page_rv
            assert _watch_status(api, page_rv).status_code == 200
            _compact(db, int(page_rv) + 1)
            r = api.get(continue_url)
            assert r.status_code == 410 and r.json()["reason"] == "Expired"
            r = _watch_status(api, page_rv)
            assert r.status_code == 410 and r.json()["reason"] == "Expired"
    finally:
        m.stop()


def test_scale_patch_survives_concurrent_status_writes(
    api: httpx.Client, ns: str, quiet_master: Master,
) -> None:
    """A controller writing status between the scale read and write must not turn
    `kubectl scale` (a PATCH without a resourceVersion) into a 409."""
    api.post(DEPLOYS.format(ns=ns), json=deployment("race"))
    url = f"{DEPLOYS.format(ns=ns)}/race"
    stop = threading.Event()

    def status_writer() -> None:
        n = 0
        with quiet_master.http() as writer_api:
            while not stop.is_set():
                n += 1
                writer_api.patch(f"{url}/status",
                                 content=json.dumps({"status": {"replicas": n}}),
                                 headers={"Content-Type": "application/merge-patch+json"})

    writer = threading.Thread(target=status_writer)
    writer.start()
    try:
        for replicas in range(1, 30):
            r = api.patch(f"{url}/scale", content=json.dumps({"spec": {"replicas": replicas}}),
                          headers={"Content-Type": "application/merge-patch+json"})
            assert r.status_code == 200, r.text
    finally:
        stop.set()
        writer.join()
    stale = api.get(f"{url}/scale").json()
    stale["metadata"]["resourceVersion"] = "1"
    stale["spec"]["replicas"] = 2
    assert api.put(f"{url}/scale", json=stale).status_code == 409  # an explicit precondition
