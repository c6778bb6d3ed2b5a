"""The dashboard in a real headless Chromium against one real cluster (a
master and three agents, with the example workload): log in, watch it live,
act from it, and nothing of an object's fields ever runs as markup.

Tests run in file order on the one cluster; the last one kills an agent.
Screenshots are kept in the artefacts dir ($CORRAL_TEST_ARTIFACTS or a temp dir).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cluster import Agent, Master, start_agents
from tests.e2e.browser import Browser, artifacts_dir
from tests.integration.controllers.helpers import corral
from tests.poll import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NODES = ("node-1", "node-2", "node-3")
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 1">'


@dataclass
class Cluster:
    master: Master
    agents: dict[str, Agent]

    def http(self) -> httpx.Client:
        return self.master.http()

    def corral(self, *args: str) -> str:
        done = corral(self.master, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("dashboard")
    master = Master(base / "master").start()
    agents: dict[str, Agent] = {}
    try:
        for i, name in enumerate(NODES, start=1):
            # Two CPUs each on any machine, for the preemption test's arithmetic.
            agents[name] = Agent(master, name, base / "agents" / name, f"127.0.1.{80 + i}",
                                 ["--cpus", "2"])
        start_agents(list(agents.values()))
        c = Cluster(master, agents)
        c.corral("apply", "-f", str(EXAMPLES))  # as `corral up --apply examples/` does
        yield c
    finally:
        for agent in agents.values():
            agent.cleanup()
        master.stop()


@pytest.fixture(scope="module")
def browser(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    shots = artifacts_dir(tmp_path_factory.mktemp("screenshots"))
    b = Browser(cluster.master.ca_path, shots)
    try:
        yield b
    finally:
        b.screenshot("last")  # what the page showed when the module ended (or failed)
        print(f"dashboard screenshots in {shots}; the page's text at the end:\n"
              f"{b.text('body')[:3000]}")
        b.close()


def ui(cluster: Cluster, route: str = "") -> str:
    return f"{cluster.master.url}/ui/{route}"


def node_rows(b: Browser) -> dict[str, str]:
    return b.rows("#nodes tr[data-node]", "node")


def test_log_in_and_see_the_cluster(cluster: Cluster, browser: Browser) -> None:
    b = browser
    b.go(ui(cluster))
    wait_for(lambda: b.js("return !!document.querySelector('#token')"), 30, "the login form")
    b.type_into("#token", "not-the-token")
    b.click("#login-submit")
    wait_for(lambda: "not valid" in b.text("#login-error"), 10, "a refused token")
    b.type_into("#token", cluster.master.token)
    b.click("#login-submit")

    def overview() -> bool:
        rows = node_rows(b)
        return set(rows) == set(NODES) and all("Ready" in t and "NotReady" not in t
                                               for t in rows.values())

    wait_for(overview, 30, "three Ready nodes on the overview")
    wait_for(lambda: "3/3" in b.rows("#deployments tr", "deployment").get("demo/web", ""),
             60, "the example Deployment 3/3 ready")
    wait_for(lambda: int(b.text("#pod-phases [data-phase=Running] .count") or 0) >= 3, 30,
             "three Running pods")
    wait_for(lambda: "/10" in b.rows("#jobs tr", "job").get("demo/squares", ""), 30,
             "the example Job's progress")
    b.screenshot("overview")
    assert not b.script_errors()


def test_one_time_link_logs_in_once(cluster: Cluster, browser: Browser) -> None:
    b = browser
    out = cluster.corral("dashboard")
    assert f"dashboard:  {cluster.master.url}/ui/" in out
    link = next(line.split()[-1] for line in out.splitlines() if "login link:" in line)
    b.driver.delete_all_cookies()
    b.go(ui(cluster))
    wait_for(lambda: b.js("return !!document.querySelector('#token')"), 30, "logged out")
    b.go(link)
    wait_for(lambda: set(node_rows(b)) == set(NODES), 30, "the overview after the link")
    b.driver.delete_all_cookies()
    b.go(link)
    wait_for(lambda: "already used or has expired" in b.text("body"), 10, "the link refused")
    b.go(link.split("/ui/")[0] + "/ui/")  # log in again for the tests that follow
    wait_for(lambda: b.js("return !!document.querySelector('#token')"), 30, "the login form")
    b.type_into("#token", cluster.master.token)
    b.click("#login-submit")
    wait_for(lambda: set(node_rows(b)) == set(NODES), 30, "logged in again")


def test_scale_from_the_ui_and_see_pods_appear_live(cluster: Cluster, browser: Browser) -> None:
    b = browser
    b.go(ui(cluster, "#/deployments/demo/web"))
    wait_for(lambda: len(b.rows("#workload-pods tr[data-pod]", "pod")) == 3, 30, "3 pods")
    b.js("window.__sameDocument = true;")  # a reload would lose it
    b.type_into("#scale-replicas", "5")
    b.click("#scale-submit")
    wait_for(lambda: "from 3 to 5" in b.text(".confirm-message"), 10, "the confirm dialog")
    b.click("#confirm-yes")
    wait_for(lambda: len(b.rows("#workload-pods tr[data-pod]", "pod")) == 5, 60,
             "five pods listed without a reload")
    wait_for(lambda: "5/5" in b.text("#workload-page .bar"), 60, "5/5 ready")
    assert b.js("return window.__sameDocument === true")
    with cluster.http() as api:
        assert api.get("/apis/apps/v1/namespaces/demo/deployments/web").json()[
            "spec"]["replicas"] == 5


def test_cordon_and_uncordon_from_the_ui(cluster: Cluster, browser: Browser) -> None:
    b = browser
    b.go(ui(cluster, "#/nodes/node-3"))
    wait_for(lambda: b.text("#cordon-toggle") == "Cordon", 30, "the node page")
    b.click("#cordon-toggle")
    wait_for(lambda: "Cordon node node-3?" in b.text(".confirm-message"), 10, "the dialog")
    b.click("#confirm-yes")
    wait_for(lambda: "SchedulingDisabled" in b.text("#node-page .node-status"), 30, "cordoned")
    with cluster.http() as api:
        assert api.get("/api/v1/nodes/node-3").json()["spec"]["unschedulable"] is True
    b.click("#cordon-toggle")
    wait_for(lambda: "Uncordon node node-3?" in b.text(".confirm-message"), 10, "the dialog")
    b.click("#confirm-yes")
    wait_for(lambda: "SchedulingDisabled" not in b.text("#node-page .node-status"), 30,
             "uncordoned")


POD_WITH_LOG = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "ticker", "namespace": "demo", "annotations": {"note": HOSTILE}},
    "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
        "name": "tick", "image": "<b>bold</b>",
        "command": ["sh", "-c", "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.2; done"],
    }]},
}


def last_line_number(b: Browser) -> int:
    lines = [ln for ln in b.text("#log").splitlines() if ln.startswith("line-")]
    return int(lines[-1].removeprefix("line-")) if lines else -1


def test_pod_page_follows_the_log_and_escapes_fields(cluster: Cluster,
                                                     browser: Browser) -> None:
    b = browser
    with cluster.http() as api:
        # Names and label values cannot hold markup (the API refuses them, as
        # Kubernetes does); annotations, images, commands and messages can.
        for meta in ({"name": "<script>"}, {"name": "x", "labels": {"a": "<script>"}}):
            r = api.post("/api/v1/namespaces/demo/pods", json={**POD_WITH_LOG, "metadata": meta})
            assert r.status_code == 422, r.text
        assert api.post("/api/v1/namespaces/demo/pods", json=POD_WITH_LOG).status_code == 201
        api.post("/api/v1/namespaces/demo/events", json={
            "metadata": {"name": "hostile.1"}, "involvedObject": {
                "kind": "Pod", "namespace": "demo", "name": "ticker"},
            "reason": "Testing", "message": HOSTILE, "type": "Warning"})
    b.go(ui(cluster, "#/pods/demo/ticker"))
    first = wait_for(lambda: last_line_number(b) >= 3 and last_line_number(b), 60,
                     "the log tail")
    wait_for(lambda: last_line_number(b) >= first + 10, 30, "new lines followed live")
    assert "Running" in b.text("#containers")
    # Every field is text: the markup shows as written and never runs.
    assert HOSTILE in b.text("#pod-annotations")
    assert "<b>bold</b>" in b.text("#containers")
    wait_for(lambda: HOSTILE in b.text("#pod-events"), 30, "the hostile event as text")
    assert b.js("return document.querySelectorAll('#pod-page b, #pod-page img, "
                "#pod-events img, #pod-page script').length") == 0
    assert b.js("return window.__pwned === undefined")
    b.screenshot("pod")


def test_delete_pod_from_the_ui(cluster: Cluster, browser: Browser) -> None:
    b = browser
    b.go(ui(cluster, "#/pods/demo/ticker"))
    wait_for(lambda: b.click("#delete-pod"), 30, "the delete button")
    wait_for(lambda: "Delete pod demo/ticker?" in b.text(".confirm-message"), 10, "the dialog")
    b.click("#confirm-yes")
    wait_for(lambda: b.text("#pod-gone"), 60, "the pod gone from its page")


def test_scheduler_page_says_why_a_pod_waits(cluster: Cluster, browser: Browser) -> None:
    b = browser
    with cluster.http() as api:
        assert api.post("/api/v1/namespaces/demo/pods", json={
            "metadata": {"name": "nowhere"}, "spec": {
                "nodeSelector": {"disk": "none-has-it"},
                "containers": [{"name": "c", "image": "x", "command": ["sleep", "60"]}]},
        }).status_code == 201
    b.go(ui(cluster, "#/scheduler"))

    def why() -> str:
        return b.rows("#pending tr[data-pod]", "pod").get("demo/nowhere", "")

    wait_for(lambda: "0/3 nodes are available" in why(), 30, "the FitError text")
    assert "node(s) didn't match Pod's node affinity/selector" in why()
    wait_for(lambda: "FailedScheduling" in b.text("#scheduling-events"), 30, "the event")
    b.screenshot("scheduler")
    with cluster.http() as api:
        api.delete("/api/v1/namespaces/demo/pods/nowhere")


def pinned(name: str, priority_class: str) -> dict[str, object]:
    """A pod that takes most of node-1's two CPUs, so two of them never fit there."""
    return {"metadata": {"name": name}, "spec": {
        "priorityClassName": priority_class, "terminationGracePeriodSeconds": 1,
        "nodeSelector": {"kubernetes.io/hostname": "node-1"},
        "containers": [{"name": "c", "image": "x", "command": ["sleep", "300"],
                        "resources": {"requests": {"cpu": "1500m"}}}]}}


def test_scheduler_page_shows_a_preemption(cluster: Cluster, browser: Browser) -> None:
    b = browser
    with cluster.http() as api:
        assert api.post("/api/v1/namespaces/demo/pods",
                        json=pinned("victim", "batch")).status_code == 201
        wait_for(lambda: api.get("/api/v1/namespaces/demo/pods/victim").json()["spec"].get(
            "nodeName") == "node-1", 30, "the batch pod on node-1")
        assert api.post("/api/v1/namespaces/demo/pods",
                        json=pinned("preemptor", "production")).status_code == 201
    b.go(ui(cluster, "#/scheduler"))
    wait_for(lambda: "demo/victim" in b.text("#preemptions"), 60, "the preemption listed")
    assert "Preempted by pod" in b.text("#preemptions")
    with cluster.http() as api:
        wait_for(lambda: api.get("/api/v1/namespaces/demo/pods/preemptor").json()["spec"].get(
            "nodeName") == "node-1", 60, "the production pod placed")
        api.delete("/api/v1/namespaces/demo/pods/preemptor")
        api.delete("/api/v1/namespaces/demo/pods/victim")


def test_pods_page_filters_by_label(cluster: Cluster, browser: Browser) -> None:
    b = browser
    b.go(ui(cluster, "#/pods"))
    wait_for(lambda: len(b.rows("#pods-table tr[data-pod]", "pod")) >= 5, 30, "all pods")
    b.type_into("#filter-labels", "app=web")
    b.click("#filter-apply")

    with cluster.http() as api:
        web = {f"demo/{p['metadata']['name']}" for p in api.get(
            "/api/v1/namespaces/demo/pods", params={"labelSelector": "app=web"}).json()["items"]}

    def only_web() -> bool:
        return set(b.rows("#pods-table tr[data-pod]", "pod")) == web

    wait_for(only_web, 30, "only the web pods")


def test_a_page_left_at_once_gives_back_its_watches(cluster: Cluster,
                                                    browser: Browser) -> None:
    """The browser has six connections to the master and every watch holds one: a
    page left before it finished mounting must close its watches too, or a few
    quick clicks leave the dashboard with no connection for anything else."""
    b = browser
    b.go(ui(cluster, "#/pods"))
    wait_for(lambda: len(b.rows("#pods-table tr[data-pod]", "pod")) >= 5, 30, "all pods")
    for _ in range(3):  # the overview (five watches) mounted and left at once
        b.js("location.hash = '#/'; setTimeout(() => { location.hash = '#/pods'; }, 0);")
        wait_for(lambda: b.js("return location.hash") == "#/pods", 10, "back on the pods page")
    # The pods page's own two: namespaces and pods.
    wait_for(lambda: (b.call("live.js", "liveCount"), b.call("api.js", "openStreams")) == (2, 2),
             15, "only the pods page's watches open")


def bulk_pod(i: int) -> dict[str, object]:
    # Another scheduler's pods: they stay Pending, so a thousand of them start no
    # process and cost the cluster nothing but their objects.
    return {"metadata": {"name": f"bulk-{i:04d}", "labels": {"batch": f"b{i % 10}"}},
            "spec": {"schedulerName": "someone-else", "containers": [
                {"name": "c", "image": "x", "command": ["true"]}]}}


def test_a_thousand_pods_stay_usable(cluster: Cluster, browser: Browser) -> None:
    b = browser
    with cluster.http() as api:
        assert api.post("/api/v1/namespaces", json={
            "metadata": {"name": "bulk"}}).status_code == 201

        def create(i: int) -> int:
            return api.post("/api/v1/namespaces/bulk/pods", json=bulk_pod(i)).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(create, range(1000))) == {201}
    b.go(ui(cluster, "#/"))
    b.go(ui(cluster, "#/pods"))  # a fresh pods page: no filter left from before
    wait_for(lambda: b.js("return [...document.querySelectorAll('#filter-namespace option')]"
                          ".some(o => o.value === 'bulk')"), 30, "the bulk namespace listed")
    b.js("const s = document.querySelector('#filter-namespace'); s.value = 'bulk';"
         "s.dispatchEvent(new Event('change', {bubbles: true}));")
    wait_for(lambda: b.text("#pods-count") == "1000 of 1000 pods", 60, "a thousand pods")
    assert b.text("#pods-table .page-of") == "page 1 of 20 (1000)"
    assert len(b.rows("#pods-table tr[data-pod]", "pod")) == 50  # one page is rendered
    b.click("#pods-table .next")
    wait_for(lambda: "bulk/bulk-0050" in b.rows("#pods-table tr[data-pod]", "pod"), 10,
             "the second page")
    b.type_into("#filter-labels", "batch=b3")
    b.click("#filter-apply")
    wait_for(lambda: b.text("#pods-count") == "100 of 100 pods", 60, "the label filter")
    assert all(k.endswith("3") for k in b.rows("#pods-table tr[data-pod]", "pod"))
    b.screenshot("thousand-pods")
    with cluster.http() as api:
        api.delete("/api/v1/namespaces/bulk")


def test_killed_agent_turns_its_node_not_ready_live(cluster: Cluster, browser: Browser) -> None:
    b = browser
    b.go(ui(cluster))
    wait_for(lambda: "Ready" in node_rows(b).get("node-2", ""), 30, "node-2 Ready")
    b.js("window.__sameDocument = true;")
    cluster.agents["node-2"].kill()
    # The node-lifecycle controller's grace period (4 s by default) decides when.
    wait_for(lambda: "NotReady" in node_rows(b).get("node-2", ""), 60, "node-2 NotReady")
    assert b.js("return window.__sameDocument === true")
    assert "NotReady" not in node_rows(b)["node-1"]
    b.screenshot("node-not-ready")

