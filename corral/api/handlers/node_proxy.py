"""The master's side of the agents' HTTP servers, as kube-apiserver proxies to kubelets.

    GET .../pods/{name}/log?container&follow&tailLines&previous&timestamps
                               &sinceSeconds|sinceTime&limitBytes  (checked here)
        pod ─► spec.nodeName ─► Node InternalIP + daemonEndpoints.kubeletEndpoint.Port
            ─► GET https://ip:port/containerLogs/{ns}/{pod}/{container}?...
            ─► streamed back as text/plain (chunked, open while following)
    GET .../allocs/{name}/log?task=17&follow&tailLines&timestamps
        alloc ─► spec.nodeName ─► GET https://ip:port/allocLogs/{ns}/{alloc}/{task}?...
    GET /api/v1/nodes/{name}/proxy/{path}
        ─► GET https://ip:port/{path}  (e.g. stats/summary for `corral top`)
    stats_summary(node) ─► GET https://ip:port/stats/summary, for the metrics API

The master calls an agent with its own client certificate (CN
kube-apiserver-kubelet-client, from the cluster CA), never the caller's token,
and verifies the agent's serving certificate against the CA and the node's name
(each request its own TLS handshake, so no connection made for one node serves
another). It calls only an endpoint the node's own credential wrote
(node_endpoints.py); a Node whose address someone else wrote is refused. What the
caller may ask for (pods/log, nodes/proxy, ...) was authorized before this.
Over plain HTTP (a master started with --insecure-http) there is no CA: agents
are called over plain HTTP, unauthenticated, as everything else there.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from corral.api.errors import APIError, BadRequest, NotFound, ServiceUnavailable, invalid
from corral.api.field_errors import FieldErrors
from corral.api.node_endpoints import WRITER_ANNOTATION, written_by_node
from corral.api.paths import Target
from corral.api.registry import Registry
from corral.api.resources import BY_KIND
from corral.objects import Obj, meta, parse_time, spec

NODE_PROXY_PATH = re.compile(r"^/api/v1/nodes/([^/]+)/proxy(/.*)?$")
SUMMARY_TIMEOUT = 10.0  # seconds one agent may take to report its usage
LOG_PARAMS = ("follow", "tailLines", "previous", "timestamps", "limitBytes", "sinceSeconds",
              "sinceTime")


def pick_container(pod: Obj, wanted: str | None) -> str:
    spec = pod.get("spec") or {}
    mains = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    name = pod["metadata"]["name"]
    if wanted:
        if wanted not in mains and wanted not in inits:
            raise BadRequest(f"container {wanted} is not valid for pod {name}")
        return wanted
    if len(mains) == 1:
        return str(mains[0])
    message = f"a container name must be specified for pod {name}, choose one of: " \
              f"[{' '.join(mains)}]"
    if inits:
        message += f" or one of the init containers: [{' '.join(inits)}]"
    raise BadRequest(message)


@dataclass(frozen=True)
class AgentCredentials:
    """What the master needs to call agents over TLS: the cluster CA (to verify
    them) and its own client certificate (to be recognised by them)."""

    ca_path: Path
    cert_path: Path
    key_path: Path

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        context.load_cert_chain(str(self.cert_path), str(self.key_path))
        return context  # hostname checked: against the node's name (sni_hostname)


@dataclass(frozen=True)
class AgentEndpoint:
    url: str  # scheme://ip:port
    node: str  # the name its serving certificate must carry

    def websocket(self) -> str:
        return self.url.replace("http", "ws", 1)


class NodeProxy:
    def __init__(self, registry: Registry, credentials: AgentCredentials | None) -> None:
        self.registry = registry
        self.tls = credentials.context() if credentials is not None else None
        # No keep-alive: a connection verified for one node's name must never carry
        # a request meant for another node that names the same address.
        self._http = httpx.AsyncClient(
            verify=self.tls if self.tls is not None else False,
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=httpx.Timeout(30.0, connect=5.0, read=None))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def agent_url(self, node_name: str) -> AgentEndpoint:
        try:
            node = await self.registry.get(BY_KIND["Node"], None, node_name)
        except NotFound:
            raise NotFound(f'nodes "{node_name}" not found', kind="nodes",
                           name=node_name) from None
        status = node.get("status") or {}
        ip = next((a.get("address") for a in status.get("addresses") or []
                   if a.get("type") == "InternalIP"), None)
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        if not ip or not port:
            raise ServiceUnavailable(f"node {node_name} has no agent endpoint in its status")
        if self.tls is not None and not written_by_node(node):
            writer = (meta(node).get("annotations") or {}).get(WRITER_ANNOTATION) or "unknown"
            raise ServiceUnavailable(
                f"node {node_name}'s agent endpoint {ip}:{port} was written by {writer!r}, "
                f"not by the node's own credential system:node:{node_name}: the master "
                f"calls only an address the node registered itself")
        host = f"[{ip}]" if ":" in ip else ip
        scheme = "https" if self.tls is not None else "http"
        return AgentEndpoint(f"{scheme}://{host}:{port}", node_name)

    def _request(self, endpoint: AgentEndpoint, path: str,
                 params: dict[str, str] | None = None) -> httpx.Request:
        # The TLS name checked is the node's, not the address's (sni_hostname).
        return self._http.build_request("GET", f"{endpoint.url}{path}", params=params,
                                        extensions={"sni_hostname": endpoint.node})

    async def pod_log(self, request: Request, target: Target) -> Response:
        if target.resource.kind == "Alloc":
            return await self.alloc_log(request, target)
        pod = await self.registry.get(target.resource, target.namespace, target.name or "")
        node = spec(pod).get("nodeName")
        if not node:
            raise BadRequest(f"pod {target.name} does not have a host assigned")
        container = pick_container(pod, request.query_params.get("container"))
        params = {k: v for k, v in request.query_params.items() if k in LOG_PARAMS}
        _check_log_options(target.name or "", params)
        endpoint = await self.agent_url(node)
        return await self._relay(self._request(
            endpoint, f"/containerLogs/{target.namespace}/{target.name}/{container}", params))

    async def stats_summary(self, node_name: str) -> Obj | None:
        """The node's resource usage, or None when its agent cannot tell (gone,
        unreachable, or answering with an error): that node has no metrics."""
        try:
            request = self._request(await self.agent_url(node_name), "/stats/summary")
            request.extensions["timeout"] = httpx.Timeout(SUMMARY_TIMEOUT).as_dict()
            response = await self._http.send(request)
        except (APIError, httpx.HTTPError):
            return None
        if response.status_code != 200:
            return None
        data = response.json()
        return data if isinstance(data, dict) else None

    async def alloc_log(self, request: Request, target: Target) -> Response:
        """One task's lines of an Alloc's log (``task``: its id, a task array's index)."""
        alloc = await self.registry.get(target.resource, target.namespace, target.name or "")
        node = spec(alloc).get("nodeName")
        if not node:
            raise BadRequest(f"alloc {target.name} does not have a host assigned")
        task = request.query_params.get("task", "")
        if not task or not task.replace("-", "").isalnum():
            raise BadRequest("a task must be given: ?task=<id> (a task array's index)")
        params = {k: v for k, v in request.query_params.items() if k in LOG_PARAMS}
        endpoint = await self.agent_url(node)
        return await self._relay(self._request(
            endpoint, f"/allocLogs/{target.namespace}/{target.name}/{task}", params))

    async def node_proxy(self, request: Request, node_name: str, path: str) -> Response:
        if request.method != "GET":
            raise BadRequest("only GET is proxied to nodes")
        endpoint = await self.agent_url(node_name)
        return await self._relay(self._request(endpoint, path or "/",
                                               dict(request.query_params)))

    async def probe(self, node_name: str) -> None:
        """Raises ServiceUnavailable unless the node's agent answers its /healthz."""
        request = self._request(await self.agent_url(node_name), "/healthz")
        url = request.url
        request.extensions["timeout"] = httpx.Timeout(5.0).as_dict()
        try:
            (await self._http.send(request)).raise_for_status()
        except httpx.HTTPError as err:
            raise ServiceUnavailable(f"cannot reach the node agent at {url}: {err!r}") from err

    async def _relay(self, request: httpx.Request) -> Response:
        url = request.url
        try:
            upstream = await self._http.send(request, stream=True)
        except httpx.HTTPError as err:
            raise ServiceUnavailable(f"cannot reach the node agent at {url}: {err!r}") from err
        if upstream.status_code >= 400:
            text = (await upstream.aread()).decode(errors="replace").strip()
            await upstream.aclose()
            raise agent_error(upstream.status_code, text)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        media = upstream.headers.get("content-type", "text/plain")
        return StreamingResponse(chunks(), media_type=media.split(";")[0])


def _check_log_options(name: str, params: dict[str, str]) -> None:
    """PodLogOptions as kube-apiserver validates them: a number that is not one
    is a 400, an out-of-range one a 422 naming the field."""
    numbers: dict[str, int] = {}
    for key in ("tailLines", "limitBytes", "sinceSeconds"):
        if params.get(key):
            try:
                numbers[key] = int(params[key])
            except ValueError:
                raise BadRequest(f"{key} must be an integer, got {params[key]!r}") from None
    errs = FieldErrors()
    errs.non_negative("tailLines", numbers.get("tailLines"))
    errs.positive("limitBytes", numbers.get("limitBytes"))
    errs.positive("sinceSeconds", numbers.get("sinceSeconds"))
    if params.get("sinceTime") and parse_time(params["sinceTime"]) is None:
        errs.invalid("sinceTime", params["sinceTime"], "must be an RFC 3339 time")
    if params.get("sinceTime") and params.get("sinceSeconds"):
        errs.forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified")
    if errs:
        raise invalid("PodLogOptions", name, errs)


def agent_error(code: int, message: str) -> APIError:
    if code == 404:
        return NotFound(message)
    if code in (400, 401, 403):
        return BadRequest(message)
    return ServiceUnavailable(f"node agent answered {code}: {message}")
