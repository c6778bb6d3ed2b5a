"""pods/{name}/exec|attach|portforward: the master's websocket relay to the node agent.

    kubectl ──websocket (v5/v4.channel.k8s.io | SPDY/3.1+portforward.k8s.io)──► master
      checks: pod exists, has a node, is not completed, container valid, command given
      ──websocket over TLS: the master's client certificate (never the caller's
        token), the agent's certificate checked for the node's name, the
        client's subprotocols──► agent
          /exec|/attach/{ns}/{pod}/{container}?..., /portForward/{ns}/{pod}
      ◄── messages relayed verbatim both ways; the agent's close ends both

The relay does not parse the streams: the agent speaks the protocol (as the
kubelet does behind kube-apiserver). A refusal — ours or the agent's — is an
HTTP error with a Status before the upgrade; kubectl then retries over SPDY,
which the plain HTTP handler refuses with the same Status, and prints it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from corral.api.errors import APIError, BadRequest, NotFound, ServiceUnavailable
from corral.api.handlers.node_proxy import NodeProxy, agent_error, pick_container
from corral.api.handlers.responses import JSONResponse, status_response
from corral.api.resources import BY_KIND
from corral.objects import Obj, spec, status

log = logging.getLogger(__name__)

STREAM_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/(exec|attach|portforward)$")
PASSED_PARAMS = ("command", "stdin", "stdout", "stderr", "tty")


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


class StreamRelay:
    def __init__(self, nodes: NodeProxy) -> None:
        self.nodes = nodes

    async def _pod(self, namespace: str, name: str) -> Obj:
        try:
            return await self.nodes.registry.get(BY_KIND["Pod"], namespace, name)
        except NotFound:
            raise NotFound(f'pods "{name}" not found', kind="pods", name=name) from None

    async def target(self, namespace: str, name: str, verb: str,
                     params: list[tuple[str, str]]) -> tuple[str, str]:
        """The agent's websocket URL for this request and the node's name; raises
        APIError if refused."""
        pod = await self._pod(namespace, name)
        node = spec(pod).get("nodeName")
        if not node:
            raise BadRequest(f"pod {name} does not have a host assigned")
        phase = status(pod).get("phase")
        if phase in ("Succeeded", "Failed") and verb != "portforward":
            what = "exec into" if verb == "exec" else "attach to"
            raise BadRequest(f"cannot {what} a container in a completed pod; "
                             f"current phase is {phase}")
        endpoint = await self.nodes.agent_url(node)
        base = endpoint.websocket()
        ns, pod_name = quote(namespace, safe=""), quote(name, safe="")
        if verb == "portforward":
            ports = [("ports", v) for k, v in params if k == "ports"]
            return f"{base}/portForward/{ns}/{pod_name}?{urlencode(ports)}", node
        query = dict(params)
        container = pick_container(pod, query.get("container"))
        commands = [v for k, v in params if k == "command"]
        if verb == "exec" and not commands:
            raise BadRequest("you must specify at least 1 command")
        if not any(_flag(query.get(k)) for k in ("stdin", "stdout", "stderr")):
            raise BadRequest("you must specify at least one of stdin, stdout, stderr")
        passed = [(k, v) for k, v in params if k in PASSED_PARAMS]
        path = f"{verb}/{ns}/{pod_name}/{quote(container, safe='')}"
        return f"{base}/{path}?{urlencode(passed)}", node

    async def http(self, request: Request, namespace: str, name: str, verb: str) -> Response:
        """A request without a websocket upgrade (kubectl's SPDY fallback): the same
        checks, then Kubernetes' answer to a stream request that is not upgraded."""
        await self.target(namespace, name, verb, list(request.query_params.multi_items()))
        # kubectl got here after its websocket attempt failed: say why, if the agent is away.
        pod = await self._pod(namespace, name)
        await self.nodes.probe(str(spec(pod).get("nodeName")))
        since = "1.31" if verb == "portforward" else "1.30"
        raise BadRequest(f"Upgrade request required: corral serves pods/{verb} over "
                         f"websockets (kubectl {since} and later), not SPDY")

    async def websocket(self, ws: WebSocket) -> None:
        ns, name, verb = (ws.path_params[k] for k in ("namespace", "name", "verb"))
        try:
            if verb not in ("exec", "attach", "portforward"):
                raise NotFound(f"the server could not find the requested resource "
                               f"(path {ws.url.path})")
            url, node = await self.target(ns, name, verb, list(ws.query_params.multi_items()))
            upstream = await self._connect(url, node, list(ws.scope.get("subprotocols") or []))
        except APIError as err:
            await ws.send_denial_response(status_response(err))
            return
        async with upstream:
            chosen = upstream.subprotocol
            await ws.accept(subprotocol=chosen.replace("_", "/") if chosen else None)
            log.info("stream relayed verb=%s pod=%s/%s", verb, ns, name)
            await _relay(ws, upstream)

    async def _connect(self, url: str, node: str, subprotocols: list[str]) -> ClientConnection:
        tls = {"ssl": self.nodes.tls, "server_hostname": node} if self.nodes.tls else {}
        try:
            # "/" is spelled "_" to the agent: the client takes only RFC 6455 tokens.
            offered = [Subprotocol(p.replace("/", "_")) for p in subprotocols]
            return await connect(url, subprotocols=offered or None, max_size=None,
                                 **tls,  # type: ignore[arg-type]
                                 open_timeout=10, ping_interval=None,
                                 compression=None)  # per-message deflate: CPU for nothing
        except InvalidStatus as err:
            text = err.response.body.decode(errors="replace").strip() if err.response.body \
                else ""
            raise agent_error(err.response.status_code, text) from err
        except (OSError, TimeoutError, WebSocketException) as err:
            raise ServiceUnavailable(f"cannot reach the node agent: {err!r}") from err


async def _relay(ws: WebSocket, upstream: ClientConnection) -> None:
    async def client_to_agent() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            await upstream.send(data if data is not None else str(message.get("text") or ""))

    async def agent_to_client() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in upstream:
                if isinstance(message, bytes):
                    await ws.send_bytes(message)
                else:
                    await ws.send_text(message)

    tasks = [asyncio.create_task(client_to_agent()), asyncio.create_task(agent_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        code = upstream.close_code or 1000
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await ws.close(code if code in (1000, 1001, 1011) else 1000)


async def unknown_websocket(ws: WebSocket) -> None:
    """Websocket requests on any other path: a 404 Status, not a bare 403."""
    body = NotFound(f"the server could not find the requested resource (path {ws.url.path})")
    await ws.send_denial_response(JSONResponse(body.to_status(), status_code=404))
