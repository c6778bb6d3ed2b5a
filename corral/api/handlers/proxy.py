"""pods/{name}/proxy and services/{name}/proxy: HTTP to a pod, as kube-apiserver's.

    .../pods/[scheme:]NAME[:PORT]/proxy[/path]
        PORT: a containerPort's number or name (default: the pod's first port)
        ─► the pod's status.portMappings ─► hostIP:hostPort
    .../services/[scheme:]NAME[:PORT]/proxy[/path]
        PORT: a Service port's name or number (default: its first port)
        ─► the Endpoints' addresses for that port name ─► one at random

Any method; the path below /proxy, the query and the body are passed on, the
caller's Authorization is not (the pod is not the API server). corral's pods
listen on host ports of their node (the agent allocates them), so the master
connects to them directly, as kube-apiserver connects to pod IPs.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from corral.api.errors import BadRequest, NotFound, ServiceUnavailable
from corral.api.registry import Registry
from corral.api.resources import BY_KIND
from corral.objects import Obj, spec, status

PROXY_PATH = re.compile(
    r"^/api/v1/namespaces/([^/]+)/(pods|services)/([^/]+)/proxy(/.*)?$")
# Not passed on, in either direction (RFC 9110 hop-by-hop, and what httpx sets itself).
HOP_HEADERS = frozenset({"connection", "keep-alive", "proxy-authenticate",
                         "proxy-authorization", "te", "trailer", "transfer-encoding",
                         "upgrade", "host", "authorization", "content-length"})


def split_name(raw: str) -> tuple[str, str, str]:
    """``[scheme:]name[:port]`` → (scheme, name, port), as Kubernetes splits it."""
    parts = raw.split(":")
    if len(parts) == 1:
        return "http", parts[0], ""
    if len(parts) == 2:
        return "http", parts[0], parts[1]
    if len(parts) == 3 and parts[0] in ("http", "https"):
        return parts[0], parts[1], parts[2]
    raise BadRequest(f"invalid proxy target {raw!r}: want [scheme:]name[:port]")


def pod_address(pod: Obj, port: str) -> tuple[str, int]:
    mappings = [m for m in status(pod).get("portMappings") or []
                if m.get("protocol", "TCP") == "TCP"]
    name = pod["metadata"]["name"]
    for m in mappings:
        if not port or port in (str(m.get("containerPort")), m.get("name")):
            return str(m["hostIP"]), int(m["hostPort"])
    if not mappings:
        raise ServiceUnavailable(f"pod {name} has no ports (yet): nothing to proxy to")
    raise BadRequest(f"pod {name} has no container port {port!r}")


def service_address(service: Obj, endpoints: Obj | None, port: str) -> tuple[str, int]:
    name = service["metadata"]["name"]
    wanted = next((p for p in spec(service).get("ports") or []
                   if not port or port in (p.get("name"), str(p.get("port")))), None)
    if wanted is None:
        raise ServiceUnavailable(f'no service port "{port}" found for service "{name}"')
    port_name = wanted.get("name") or ""
    choices = []
    for subset in (endpoints or {}).get("subsets") or []:
        for p in subset.get("ports") or []:
            if (p.get("name") or "") == port_name:
                choices += [(str(a["ip"]), int(p["port"])) for a in subset.get("addresses") or []]
    if not choices:
        raise ServiceUnavailable(f'no endpoints available for service "{name}"')
    return random.choice(choices)


class ProxyHandler:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0, read=None),
                                       verify=False)  # pods serve their own certificates

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, kind: str, namespace: str, name: str) -> Obj:
        try:
            return await self.registry.get(BY_KIND[kind], namespace, name)
        except NotFound:
            plural = f"{kind.lower()}s"
            raise NotFound(f'{plural} "{name}" not found', kind=plural, name=name) from None

    async def __call__(self, request: Request, namespace: str, plural: str, raw: str,
                       path: str) -> Response:
        scheme, name, port = split_name(raw)
        if plural == "pods":
            host, number = pod_address(await self._get("Pod", namespace, name), port)
        else:
            service = await self._get("Service", namespace, name)
            try:
                endpoints: Obj | None = await self._get("Endpoints", namespace, name)
            except NotFound:
                endpoints = None
            host, number = service_address(service, endpoints, port)
        url = f"{scheme}://{host}:{number}{path or '/'}"
        return await self._forward(request, url)

    async def _forward(self, request: Request, url: str) -> Response:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS]
        upstream_request = self._http.build_request(
            request.method, url, params=request.url.query, headers=headers,
            content=await request.body())
        try:
            upstream = await self._http.send(upstream_request, stream=True)
        except httpx.HTTPError as err:
            raise ServiceUnavailable(f"error trying to reach {url}: {err!r}") from err

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        passed = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
        return StreamingResponse(body(), status_code=upstream.status_code, headers=passed)
