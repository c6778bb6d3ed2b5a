"""The master's side of the agents' HTTP servers, as kube-apiserver proxies to kubelets.

    GET .../pods/{name}/log?container&follow&tailLines&previous&timestamps
                               &sinceSeconds|sinceTime&limitBytes  (checked here)
        pod ─► spec.nodeName ─► Node InternalIP + daemonEndpoints.kubeletEndpoint.Port
            ─► GET http://ip:port/containerLogs/{ns}/{pod}/{container}?...
            ─► streamed back as text/plain (chunked, open while following)
    GET .../allocs/{name}/log?task=17&follow&tailLines&timestamps
        alloc ─► spec.nodeName ─► GET http://ip:port/allocLogs/{ns}/{alloc}/{task}?...
    GET /api/v1/nodes/{name}/proxy/{path}
        ─► GET http://ip:port/{path}  (e.g. stats/summary for `corral top`)
    stats_summary(node) ─► GET http://ip:port/stats/summary, for the metrics API

The master authenticates to the agent with its own admin token; an agent accepts
it because the master does (see corral/agent/server.py).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from corral.api.errors import APIError, BadRequest, NotFound, ServiceUnavailable, invalid
from corral.api.field_errors import FieldErrors
from corral.api.paths import Target
from corral.api.registry import Registry
from corral.api.resources import BY_KIND
from corral.objects import Obj, parse_time, spec

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


class NodeProxy:
    def __init__(self, registry: Registry, token: str | None) -> None:
        self.registry = registry
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(headers=headers,
                                       timeout=httpx.Timeout(30.0, connect=5.0, read=None))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def agent_url(self, node_name: str) -> str:
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
        host = f"[{ip}]" if ":" in ip else ip
        return f"http://{host}:{port}"

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
        url = f"{await self.agent_url(node)}/containerLogs/{target.namespace}/" \
              f"{target.name}/{container}"
        return await self._relay(url, params)

    async def stats_summary(self, node_name: str) -> Obj | None:
        """The node's resource usage, or None when its agent cannot tell (gone,
        unreachable, or answering with an error): that node has no metrics."""
        try:
            url = f"{await self.agent_url(node_name)}/stats/summary"
            response = await self._http.get(url, timeout=SUMMARY_TIMEOUT)
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
        url = f"{await self.agent_url(node)}/allocLogs/{target.namespace}/{target.name}/{task}"
        return await self._relay(url, params)

    async def node_proxy(self, request: Request, node_name: str, path: str) -> Response:
        if request.method != "GET":
            raise BadRequest("only GET is proxied to nodes")
        url = f"{await self.agent_url(node_name)}{path or '/'}"
        return await self._relay(url, dict(request.query_params))

    async def probe(self, node_name: str) -> None:
        """Raises ServiceUnavailable unless the node's agent answers its /healthz."""
        url = f"{await self.agent_url(node_name)}/healthz"
        try:
            (await self._http.get(url, timeout=5.0)).raise_for_status()
        except httpx.HTTPError as err:
            raise ServiceUnavailable(f"cannot reach the node agent at {url}: {err!r}") from err

    async def _relay(self, url: str, params: dict[str, str]) -> Response:
        request = self._http.build_request("GET", url, params=params)
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
