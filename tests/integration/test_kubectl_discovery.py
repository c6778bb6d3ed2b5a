"""The real kubectl 1.32 against discovery, OpenAPI and Table output.

A throwaway Starlette server (this file's own harness, not corral's API server)
serves corral.api.discovery, corral.api.openapi and corral.api.tables over
plain http on loopback, and answers lists from hand-written objects. kubectl
then prints what it made of them, and the output is checked cell by cell.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from corral.api import discovery, openapi, tables
from corral.api.resources import BY_GROUP_PLURAL, CONVERTED, SERVED
from corral.objects import rfc3339
from tests.kubectl import kubectl_binary

NOW = datetime.now(UTC)
# 51 hours is "2d3h" for a whole hour, so ages are stable while the test runs
# (NOW is taken at import: the whole suite may run in between). Likewise a
# last restart exactly 20 h ago reads "20h" for an hour, not half of one.
CREATED = rfc3339(NOW - timedelta(hours=51))
AGE = "2d3h"


def _meta(name: str, namespace: str | None = "default", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "resourceVersion": "7",
                            "creationTimestamp": CREATED, **extra}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _running(name: str, ready: bool = True, restarts: int = 0,
             last_finished: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"name": name, "ready": ready, "restartCount": restarts,
                              "state": {"running": {"startedAt": CREATED}}}
    if last_finished:
        status["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last_finished}}
    return status


POD_SPEC = {"containers": [{"name": "http", "image": "python:3.11"}], "nodeName": "node-a"}

PODS = [
    {"apiVersion": "v1", "kind": "Pod", "metadata": _meta("web-1", labels={"app": "web"}),
     "spec": POD_SPEC,
     "status": {"phase": "Running", "podIP": "127.0.1.1", "podIPs": [{"ip": "127.0.1.1"}],
                "containerStatuses": [_running("http")]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": _meta("crash"),
     "spec": POD_SPEC,
     "status": {"phase": "Running", "containerStatuses": [{
         "name": "http", "ready": False, "restartCount": 3,
         "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {
             "exitCode": 1, "reason": "Error",
             "finishedAt": rfc3339(NOW - timedelta(hours=20))}}}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": _meta("pending"),
     "spec": {"containers": POD_SPEC["containers"]}, "status": {"phase": "Pending"}},
]

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "http", "image": "python:3.11"}]}}

OBJECTS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("", "pods"): PODS,
    ("", "services"): [
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta("web"),
         "spec": {"type": "NodePort", "clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10"],
                  "selector": {"app": "web"},
                  "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}},
    ],
    ("", "nodes"): [
        {"apiVersion": "v1", "kind": "Node", "metadata": _meta("node-a", None),
         "spec": {"unschedulable": True},
         "status": {"conditions": [{"type": "Ready", "status": "True"}],
                    "addresses": [{"type": "InternalIP", "address": "127.0.1.1"}],
                    "nodeInfo": {"kubeletVersion": "corral-0.1.0", "osImage": "Debian",
                                 "kernelVersion": "6.1.0",
                                 "containerRuntimeVersion": "corral-process"}}},
    ],
    ("apps", "deployments"): [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("web"),
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                  "template": TEMPLATE},
         "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3,
                    "availableReplicas": 2}},
    ],
    ("apps", "replicasets"): [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": _meta("web-5d4f"),
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                  "template": TEMPLATE},
         "status": {"replicas": 3, "readyReplicas": 2}},
    ],
    ("batch", "jobs"): [
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta("once"),
         "spec": {"completions": 1, "parallelism": 1, "template": TEMPLATE},
         "status": {"succeeded": 1, "startTime": CREATED,
                    "completionTime": rfc3339(NOW - timedelta(hours=51) + timedelta(seconds=42)),
                    "conditions": [{"type": "Complete", "status": "True"}]}},
    ],
}


class Harness:
    """The throwaway server: what it serves, and the requests it saw."""

    def __init__(self, aggregated: bool) -> None:
        self.aggregated = aggregated
        self.requests: list[str] = []
        self.discovery: list[str] = []  # "aggregated /api", "legacy /apis/apps/v1", ...

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/version", self.version),
            Route("/api", self.root), Route("/apis", self.root),
            Route("/api/{version}", self.group_version),
            Route("/apis/{group}/{version}", self.group_version),
            Route("/openapi/v3", self.openapi_index),
            Route("/openapi/v3/{path:path}", self.openapi_document),
            Route("/api/{version}/{rest:path}", self.objects, methods=["GET", "POST"]),
            Route("/apis/{group}/{version}/{rest:path}", self.objects, methods=["GET", "POST"]),
        ])

    async def version(self, request: Request) -> Response:
        return JSONResponse(discovery.version_info())

    async def root(self, request: Request) -> Response:
        core = request.url.path == "/api"
        if self.aggregated and discovery.wants_aggregated(request.headers.get("accept", "")):
            self.discovery.append(f"aggregated {request.url.path}")
            body = json.dumps(discovery.aggregated_discovery(core))
            return Response(body, media_type=discovery.AGGREGATED_DISCOVERY_CONTENT_TYPE)
        self.discovery.append(f"legacy {request.url.path}")
        return JSONResponse(discovery.api_versions("127.0.0.1") if core
                            else discovery.api_group_list())

    async def group_version(self, request: Request) -> Response:
        self.discovery.append(f"legacy {request.url.path}")
        doc = discovery.api_resource_list(request.path_params.get("group", ""),
                                          request.path_params["version"])
        return JSONResponse(doc) if doc else JSONResponse({}, status_code=404)

    async def openapi_index(self, request: Request) -> Response:
        return JSONResponse(openapi.openapi_v3_index())

    async def openapi_document(self, request: Request) -> Response:
        parts = request.path_params["path"].split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        doc = openapi.openapi_v3_document(group, version)
        return JSONResponse(doc) if doc else JSONResponse({}, status_code=404)

    async def objects(self, request: Request) -> Response:
        self.requests.append(f"{request.method} {request.url.path}?{request.url.query}")
        parts = request.path_params["rest"].split("/")
        namespace = parts[1] if parts[0] == "namespaces" and len(parts) > 2 else None
        plural = parts[2] if namespace else parts[0]
        res = BY_GROUP_PLURAL.get((request.path_params.get("group", ""), plural))
        if res is None:
            return JSONResponse({}, status_code=404)
        if request.method == "POST":
            return JSONResponse(await request.json(), status_code=201)
        items = [o for o in OBJECTS.get((res.group, res.plural), [])
                 if namespace is None or o["metadata"].get("namespace") == namespace]
        if tables.wants_table(request.headers.get("accept", "")):
            body = tables.to_table(res, items,
                                   include_object=request.query_params.get("includeObject",
                                                                           "Metadata"))
            body["metadata"] = {"resourceVersion": "7"}
        else:
            body = {"apiVersion": res.api_version, "kind": f"{res.kind}List",
                    "metadata": {"resourceVersion": "7"}, "items": items}
        return JSONResponse(body)


class ServedTable:
    """A harness running under uvicorn in a thread, on a free loopback port."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        config = uvicorn.Config(harness.app(), host="127.0.0.1", port=0, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the harness server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module", params=["aggregated", "legacy"])
def served(request: pytest.FixtureRequest) -> Iterator[ServedTable]:
    with ServedTable(Harness(aggregated=request.param == "aggregated")) as running:
        yield running


def run_kubectl(served: ServedTable, tmp_path: Path, *args: str) -> str:
    # HOME in tmp_path: no kubeconfig or discovery cache of the user's is read.
    done = subprocess.run(
        [kubectl_binary(), "--server", served.url, "--cache-dir", str(tmp_path / "cache"), *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def table(output: str) -> list[list[str]]:
    """kubectl's columns, split on runs of two or more spaces (cells like
    "3 (20h ago)" and headers like "NOMINATED NODE" hold single spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


def test_get_pods_prints_server_columns(served: ServedTable, tmp_path: Path) -> None:
    rows = table(run_kubectl(served, tmp_path, "get", "pods"))
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows[1] == ["web-1", "1/1", "Running", "0", AGE]
    assert rows[2] == ["crash", "0/1", "CrashLoopBackOff", "3 (20h ago)", AGE]
    assert rows[3] == ["pending", "0/1", "Pending", "0", AGE]


def test_get_pods_wide_adds_priority_one_columns(served: ServedTable, tmp_path: Path) -> None:
    rows = table(run_kubectl(served, tmp_path, "get", "pods", "-o", "wide"))
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                       "NOMINATED NODE", "READINESS GATES"]
    assert rows[1] == ["web-1", "1/1", "Running", "0", AGE, "127.0.1.1", "node-a",
                       "<none>", "<none>"]
    assert rows[3][5:] == ["<none>", "<none>", "<none>", "<none>"]


def test_all_namespaces_and_labels_come_from_row_objects(served: ServedTable,
                                                         tmp_path: Path) -> None:
    rows = table(run_kubectl(served, tmp_path, "get", "pods", "-A", "--show-labels"))
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"]
    assert rows[1] == ["default", "web-1", "1/1", "Running", "0", AGE, "app=web"]


def test_plain_list_when_no_table_is_asked(served: ServedTable, tmp_path: Path) -> None:
    out = run_kubectl(served, tmp_path, "get", "pods", "-o", "name")
    assert out.split() == ["pod/web-1", "pod/crash", "pod/pending"]


def test_get_deployments(served: ServedTable, tmp_path: Path) -> None:
    rows = table(run_kubectl(served, tmp_path, "get", "deploy"))
    assert rows == [["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
                    ["web", "2/3", "3", "2", AGE]]
    wide = table(run_kubectl(served, tmp_path, "get", "deployments.apps", "-o", "wide"))
    assert wide[0][5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1][5:] == ["http", "python:3.11", "app=web"]


def test_get_nodes_wide(served: ServedTable, tmp_path: Path) -> None:
    rows = table(run_kubectl(served, tmp_path, "get", "no", "-o", "wide"))
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP",
                       "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    assert rows[1] == ["node-a", "Ready,SchedulingDisabled", "<none>", AGE, "corral-0.1.0",
                       "127.0.1.1", "<none>", "Debian", "6.1.0", "corral-process"]


def test_get_all_expands_the_all_category(served: ServedTable, tmp_path: Path) -> None:
    out = run_kubectl(served, tmp_path, "get", "all")
    sections = [table(block) for block in out.strip().split("\n\n")]
    by_header = {rows[0][0] + " " + rows[1][0]: rows for rows in sections}
    assert set(by_header) == {"NAME pod/web-1", "NAME service/web",
                              "NAME deployment.apps/web", "NAME replicaset.apps/web-5d4f",
                              "NAME job.batch/once"}
    svc = by_header["NAME service/web"]
    assert svc[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert svc[1] == ["service/web", "NodePort", "10.0.0.10", "<none>", "80:30080/TCP", AGE]
    job = by_header["NAME job.batch/once"]
    assert job == [["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
                   ["job.batch/once", "Complete", "1/1", "42s", AGE]]
    rs = by_header["NAME replicaset.apps/web-5d4f"]
    assert rs[1] == ["replicaset.apps/web-5d4f", "3", "3", "2", AGE]


def test_api_resources_lists_every_served_kind(served: ServedTable, tmp_path: Path) -> None:
    served.harness.discovery.clear()
    rows = table(run_kubectl(served, tmp_path, "api-resources"))
    if served.harness.aggregated:
        assert served.harness.discovery == ["aggregated /api", "aggregated /apis"]
    else:
        assert "legacy /apis/apps/v1" in served.harness.discovery
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    # NAME [SHORTNAMES] APIVERSION NAMESPACED KIND: "pods" is in v1 and metrics.k8s.io
    by_name = {(row[0], row[-3]): row for row in rows[1:]}
    assert by_name["pods", "v1"] == ["pods", "po", "v1", "true", "Pod"]
    assert by_name["deployments", "apps/v1"] == ["deployments", "deploy", "apps/v1", "true",
                                                 "Deployment"]
    assert by_name["nodes", "v1"] == ["nodes", "no", "v1", "false", "Node"]
    assert by_name["leases", "coordination.k8s.io/v1"] == [
        "leases", "coordination.k8s.io/v1", "true", "Lease"]
    assert by_name["priorityclasses", "scheduling.k8s.io/v1"] == [
        "priorityclasses", "pc", "scheduling.k8s.io/v1", "false", "PriorityClass"]
    assert by_name["pods", "metrics.k8s.io/v1beta1"] == [
        "pods", "metrics.k8s.io/v1beta1", "true", "PodMetrics"]
    assert by_name["horizontalpodautoscalers", "autoscaling/v2"] == [
        "horizontalpodautoscalers", "hpa", "autoscaling/v2", "true", "HorizontalPodAutoscaler"]
    # kubectl lists each group's preferred version only: not autoscaling/v1
    assert len(by_name) == len(SERVED) - len(CONVERTED)


def test_create_uses_server_side_field_validation(served: ServedTable, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"
                        "data: {a: b}\n")
    served.harness.requests.clear()
    out = run_kubectl(served, tmp_path, "create", "-f", str(manifest))
    assert "configmap/cfg created" in out
    posts = [r for r in served.harness.requests if r.startswith("POST")]
    assert len(posts) == 1 and "fieldValidation=Strict" in posts[0]


def test_explain_reads_the_openapi_schemas(served: ServedTable, tmp_path: Path) -> None:
    out = run_kubectl(served, tmp_path, "explain", "deployments.spec")
    assert "KIND:       Deployment" in out
    assert "replicas" in out and "template" in out
    assert "How many pods. Defaults to 1." in out
    image = run_kubectl(served, tmp_path, "explain", "pods.spec.containers.image")
    assert "no\n    image is pulled" in image or "no image is pulled" in image
    assert "<no description>" not in run_kubectl(served, tmp_path, "explain", "services.spec")
