"""metrics.k8s.io/v1beta1: NodeMetrics and PodMetrics, as metrics-server serves them,
so `kubectl top nodes|pods` (and autoscalers) read CPU and memory in use.

    GET /apis/metrics.k8s.io/v1beta1/nodes[/{name}]
    GET /apis/metrics.k8s.io/v1beta1[/namespaces/{ns}]/pods[/{name}]
        ─► the Node (or Pod) objects, by labelSelector/fieldSelector, from the store
        ─► each node's agent /stats/summary (what `corral top` reads), fetched
           concurrently through the master's NodeProxy
        ─► usage: cpu in nanocores ("1234n"), memory as the working set ("512Ki")

Nothing is stored: a node whose agent does not answer, and a pod with no running
container, have no metrics, and are left out of lists as metrics-server does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from corral.api.errors import MethodNotAllowed, NotFound
from corral.api.handlers.responses import JSONResponse
from corral.api.registry import Filter, list_objects
from corral.api.registry.core import Registry
from corral.api.resources import BY_KIND
from corral.objects import Obj, meta, spec

# A node's /stats/summary, or None when its agent cannot be reached.
SummaryFetch = Callable[[str], Awaitable[Obj | None]]
PREFIX = "/apis/metrics.k8s.io/v1beta1/"
API_VERSION = "metrics.k8s.io/v1beta1"


def is_metrics_path(path: str) -> bool:
    return path.startswith(PREFIX)


class ResourceMetrics:
    def __init__(self, registry: Registry, summary: SummaryFetch) -> None:
        self.registry = registry
        self.summary = summary

    async def __call__(self, request: Request) -> Response:
        if request.method != "GET" or request.query_params.get("watch") in ("1", "true"):
            raise MethodNotAllowed("the metrics API serves get and list only")
        rest = [p for p in request.url.path[len(PREFIX):].split("/") if p]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "pods":
            namespace, rest = rest[1], rest[2:]
        if rest[:1] == ["nodes"] and len(rest) <= 2 and namespace is None:
            return JSONResponse(await self._nodes(request, rest[1] if len(rest) == 2 else None))
        if rest[:1] == ["pods"] and len(rest) <= 2:
            name = rest[1] if len(rest) == 2 else None
            return JSONResponse(await self._pods(request, namespace, name))
        raise NotFound(f"the server could not find the requested resource "
                       f"(path {request.url.path})")

    async def _objects(self, request: Request, kind: str, namespace: str | None,
                       name: str | None) -> list[Obj]:
        res = BY_KIND[kind]
        if name is not None:
            found = await self.registry.find(res, namespace, name)
            return [found] if found is not None else []
        q = request.query_params
        flt = Filter(res, q.get("labelSelector", ""), q.get("fieldSelector", ""))
        return (await list_objects(self.registry.store, res, namespace, flt)).items

    async def _summaries(self, nodes: list[str]) -> dict[str, Obj]:
        found = await asyncio.gather(*(self.summary(n) for n in nodes))
        return {n: s for n, s in zip(nodes, found, strict=True) if s is not None}

    async def _nodes(self, request: Request, name: str | None) -> Obj:
        nodes = await self._objects(request, "Node", None, name)
        summaries = await self._summaries([meta(n)["name"] for n in nodes])
        items = [node_metrics(n, summaries[meta(n)["name"]]) for n in nodes
                 if meta(n)["name"] in summaries]
        if name is None:
            return _list("NodeMetricsList", items)
        if not items:
            raise NotFound(f'nodemetrics.metrics.k8s.io "{name}" not found',
                           kind="nodes", name=name, group="metrics.k8s.io")
        return items[0]

    async def _pods(self, request: Request, namespace: str | None, name: str | None) -> Obj:
        pods = await self._objects(request, "Pod", namespace, name)
        nodes = sorted({spec(p).get("nodeName") or "" for p in pods} - {""})
        by_uid: dict[str, Obj] = {}
        for summary in (await self._summaries(nodes)).values():
            for entry in summary.get("pods") or []:
                by_uid[(entry.get("podRef") or {}).get("uid", "")] = entry
        items = [pod_metrics(p, by_uid[meta(p).get("uid", "")]) for p in pods
                 if (by_uid.get(meta(p).get("uid", "")) or {}).get("containers")]
        if name is None:
            return _list("PodMetricsList", items)
        if not items:
            raise NotFound(f'podmetrics.metrics.k8s.io "{namespace}/{name}" not found',
                           kind="pods", name=name, group="metrics.k8s.io")
        return items[0]


def _list(kind: str, items: list[Obj]) -> Obj:
    return {"kind": kind, "apiVersion": API_VERSION, "metadata": {}, "items": items}


def usage(block: Obj) -> dict[str, str]:
    """A summary's cpu/memory block as Quantities, in metrics-server's units."""
    nano = int((block.get("cpu") or {}).get("usageNanoCores") or 0)
    memory = int((block.get("memory") or {}).get("workingSetBytes") or 0)
    return {"cpu": f"{nano}n", "memory": f"{memory // 1024}Ki"}


def _window(block: Obj) -> str:
    seconds = float((block.get("cpu") or {}).get("windowSeconds") or 0)
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _metadata(obj: Obj) -> Obj:
    m = meta(obj)
    out = {k: m[k] for k in ("name", "namespace", "labels") if m.get(k)}
    out["creationTimestamp"] = m.get("creationTimestamp")
    return out


def node_metrics(node: Obj, summary: Obj) -> Obj:
    block = summary.get("node") or {}
    return {"kind": "NodeMetrics", "apiVersion": API_VERSION, "metadata": _metadata(node),
            "timestamp": (block.get("cpu") or {}).get("time"), "window": _window(block),
            "usage": usage(block)}


def pod_metrics(pod: Obj, entry: Obj) -> Obj:
    containers = entry.get("containers") or []
    return {"kind": "PodMetrics", "apiVersion": API_VERSION, "metadata": _metadata(pod),
            "timestamp": (entry.get("cpu") or {}).get("time"),
            "window": _window(containers[0] if containers else entry),
            "containers": [{"name": c.get("name"), "usage": usage(c)} for c in containers]}
