"""Fuzz the API (hypothesis): malformed and extreme bodies, query parameters and
headers to every resource path. Every answer is below 500, every refusal a Status
with a reason; afterwards the master is ready and the objects acknowledged before
the fuzzing (in a namespace the fuzzer never names) are as they were.

Bounded for CI by CORRAL_FUZZ_SECONDS (30) and CORRAL_FUZZ_EXAMPLES (800);
raise them for a longer run. Paths answered by node agents (log, exec, attach,
port-forward, proxy) are left out: with no agent they are a 503 by design.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.api.resources import RESOURCES, Resource
from tests.cluster import Master

SECONDS = float(os.environ.get("CORRAL_FUZZ_SECONDS", "30"))
EXAMPLES = int(os.environ.get("CORRAL_FUZZ_EXAMPLES", "800"))
NS, KEPT = "fuzz", "kept"
SUBRESOURCES = ("status", "scale", "binding", "eviction", "finalize")
CONTENT_TYPES = (
    "application/json", "application/yaml", "application/merge-patch+json",
    "application/strategic-merge-patch+json", "application/json-patch+json",
    "application/apply-patch+yaml", "application/vnd.kubernetes.protobuf", "text/plain",
    "application/json; charset=utf-8", "",
)
ACCEPTS = ("application/json", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
           "application/yaml", "*/*", "text/html")
QUERY_KEYS = ("limit", "continue", "labelSelector", "fieldSelector", "resourceVersion",
              "resourceVersionMatch", "fieldValidation", "dryRun", "gracePeriodSeconds",
              "propagationPolicy", "orphanDependents", "fieldManager", "force",
              "timeoutSeconds", "includeObject")

EXTREME_INTS = st.sampled_from([0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, 2**64,
                                10**29, -(10**40)])
SCALARS = (st.none() | st.booleans() | st.integers() | EXTREME_INTS
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
           | st.sampled_from(["1e999999", "9" * 40 + "Ei", "-1", "", "\x00", "a" * 300]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)


def _templates() -> dict[str, dict[str, Any]]:
    container = {"name": "c", "image": "i", "command": ["true"],
                 "resources": {"requests": {"cpu": "100m"}}, "ports": [{"containerPort": 80}]}
    pod_spec = {"containers": [container], "restartPolicy": "Always"}
    template = {"metadata": {"labels": {"app": "f"}}, "spec": pod_spec}
    workload = {"replicas": 1, "selector": {"matchLabels": {"app": "f"}}, "template": template}
    return {
        "Pod": {"spec": pod_spec},
        "Deployment": {"spec": workload}, "ReplicaSet": {"spec": workload},
        "Job": {"spec": {"completions": 1, "parallelism": 1,
                         "template": {**template, "spec": {**pod_spec,
                                                           "restartPolicy": "Never"}}}},
        "Service": {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}},
        "ConfigMap": {"data": {"k": "v"}}, "Secret": {"data": {"k": "dg=="}},
        "ResourceQuota": {"spec": {"hard": {"pods": "10"}}},
        "Lease": {"spec": {"holderIdentity": "x", "leaseDurationSeconds": 15}},
        "PriorityClass": {"value": 10},
        "Node": {"spec": {"unschedulable": False}},
        "Namespace": {},
    }


TEMPLATES = _templates()


def _set_path(obj: Any, path: list[Any], value: Any) -> Any:
    """``obj`` with the value at ``path`` (as far as it exists) replaced."""
    if not path:
        return value
    key = path[0]
    if isinstance(obj, dict) and obj:
        k = list(obj)[key % len(obj)] if isinstance(key, int) else key
        return {**obj, k: _set_path(obj.get(k), path[1:], value)}
    if isinstance(obj, list) and obj:
        i = key % len(obj) if isinstance(key, int) else 0
        return [*obj[:i], _set_path(obj[i], path[1:], value), *obj[i + 1:]]
    return value


@st.composite
def bodies(draw: st.DrawFn, res: Resource) -> bytes:
    kind = draw(st.sampled_from(["mutated", "json", "bytes", "deep", "yaml-alias", "huge-int"]))
    if kind == "json":
        return json.dumps(draw(JSON)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "deep":
        depth = draw(st.integers(50, 3000))
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "yaml-alias":
        n = draw(st.integers(2, 12))
        lines = ['a0: &a0 ["x","x","x","x","x","x","x","x"]']
        lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 8) + "]" for i in range(1, n)]
        return "\n".join(lines).encode()
    obj: dict[str, Any] = {"apiVersion": res.api_version, "kind": res.kind,
                           "metadata": {"name": draw(NAMES), "labels": {"app": "f"}},
                           **TEMPLATES.get(res.kind, {})}
    if kind == "huge-int":
        return json.dumps(obj).replace("1", "1" + "0" * draw(st.integers(10, 400)), 1).encode()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.lists(st.integers(0, 8) | st.sampled_from(
            ["spec", "metadata", "replicas", "containers", "resources", "ports", "name"]),
            max_size=6))
        obj = _set_path(obj, path, draw(JSON))
    return json.dumps(obj).encode()


NAMES = st.sampled_from(["a", "f1", "x" * 300, "Bad_Name", "", "default", "-", "a.b"]) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"),
    min_size=1, max_size=20)
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(
    str.strip)  # h11 sends no value with surrounding blanks
QUERY_VALUES = st.one_of(st.text(max_size=30), EXTREME_INTS.map(str),
                         st.sampled_from(["true", "All", "Strict", "Ignore", "Warn", "Orphan",
                                          "Foreground", "a in (b", "metadata.name=x", "0"]))


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], dict[str, str], bytes | None]:
    res = draw(st.sampled_from(RESOURCES))
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
    base = "/api/v1" if not res.group else f"/apis/{res.group}/{res.version}"
    prefix = f"{base}/namespaces/{NS}" if res.namespaced else base
    path = f"{prefix}/{res.plural}"
    if draw(st.booleans()) or method in ("PUT", "PATCH"):
        name = draw(NAMES.filter(lambda n: n != KEPT and n.strip(".") != ""))
        path += f"/{name}"
        if draw(st.integers(0, 3)) == 0:
            path += f"/{draw(st.sampled_from(SUBRESOURCES))}"
    elif method == "GET" and res.namespaced and draw(st.booleans()):
        path = f"{base}/{res.plural}"  # a list across namespaces (never a deletecollection)
    query = draw(st.dictionaries(st.sampled_from(QUERY_KEYS), QUERY_VALUES, max_size=4))
    headers = {"Content-Type": draw(st.sampled_from(CONTENT_TYPES) | HEADER_TEXT),
               "Accept": draw(st.sampled_from(ACCEPTS) | HEADER_TEXT)}
    body = draw(bodies(res)) if method in ("POST", "PUT", "PATCH") or draw(
        st.integers(0, 4)) == 0 else None
    return method, path, query, headers, body


@pytest.fixture(scope="module")
def api(quiet_master: Master) -> Iterator[httpx.Client]:
    with quiet_master.http() as client:
        for ns in (NS, KEPT):
            assert client.post("/api/v1/namespaces", json={"metadata": {"name": ns}}
                               ).status_code == 201
        yield client


def _seed(api: httpx.Client) -> dict[str, dict[str, Any]]:
    seeds: dict[str, dict[str, Any]] = {}
    for path, kind in ((f"/api/v1/namespaces/{KEPT}/configmaps", "ConfigMap"),
                       (f"/apis/apps/v1/namespaces/{KEPT}/deployments", "Deployment"),
                       (f"/api/v1/namespaces/{KEPT}/pods", "Pod")):
        r = api.post(path, json={"metadata": {"name": "seed"}, **TEMPLATES[kind]})
        assert r.status_code == 201, r.text
        seeds[f"{path}/seed"] = r.json()["metadata"]
    return seeds


def test_fuzzed_requests_get_a_status_never_a_5xx(api: httpx.Client) -> None:
    seeds = _seed(api)
    deadline = time.monotonic() + SECONDS
    sent: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(requests())
    def one(request: tuple[str, str, dict[str, str], dict[str, str], bytes | None]) -> None:
        if time.monotonic() > deadline:
            return
        method, path, query, headers, body = request
        r = api.request(method, path, params=query, headers=headers, content=body, timeout=60)
        sent.append(r.status_code)
        assert r.status_code < 500, (method, path, query, headers, (body or b"")[:300], r.text)
        if r.status_code >= 400:
            status = r.json()
            assert status["kind"] == "Status" and status["reason"], r.text

    one()
    assert len(sent) >= 100, f"only {len(sent)} requests in {SECONDS} s"
    assert api.get("/readyz").status_code == 200
    for path, before in seeds.items():
        after = api.get(path).json()["metadata"]
        assert (after["uid"], after["resourceVersion"]) == (before["uid"],
                                                            before["resourceVersion"]), path
