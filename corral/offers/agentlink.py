"""The Mesos master's direct line to the agents it runs frameworks' tasks on (the
agent's side is corral/agent/framework_feed.py).

    per node with a framework's Alloc on it, or offered while a framework is
    subscribed (so that the first ACCEPT finds it ready): one AgentLink
        reader: GET https://<node ip>:<agent port>/frameworkTasks, held open
                JSON lines ─► on_state(node, line) (the task loop: UPDATEs)
                ended or refused ─► again after a back-off (0.1 s doubling to 2 s);
                on each connection the agent sends every task's state again
        launch: POST .../frameworkTasks/{ns}/{alloc} {uid, tasks, kills}
                ─► the agent hands them to the Alloc's running executor at once

The agents answer only the master's client certificate (the identity they take
logs and exec from, CN kube-apiserver-kubelet-client), so the master process's
own Mesos component calls them with it; it does so only while RBAC lets its
identity (system:corral-mesos-master) ``create`` ``nodes/proxy`` on the node —
the permission kube-apiserver asks of whoever it proxies to a kubelet — asked
by a SelfSubjectAccessReview, cached REVIEW_SECONDS. Without it, a link down, an
agent that does not know the Alloc yet, or a term that may have lapsed by this
master's own clock (a pause longer than its renew deadline: Client.term_held), a
launch goes the store's way (its Alloc's spec), where the API judges the fence.
Each link has its own connections (httpclient.py: the feed's, and up to
IDLE_CONNECTIONS kept for launches): a connection made and verified for one
node's name never carries another node's request.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from corral.aiotasks import cancel_and_wait
from corral.api.errors import APIError
from corral.api.fencing import FENCE_HEADER
from corral.api.node_endpoints import written_by_node
from corral.client.clock import Clock
from corral.client.http import Client, ServerUnreachable
from corral.client.informer import Informer
from corral.objects import Obj, name_of, namespace_of, status, uid_of
from corral.offers.httpclient import Connection, HttpError, connect

log = logging.getLogger("corral.offers")

REVIEW_SECONDS = 10.0
BACKOFF_SECONDS = (0.1, 2.0)
LAUNCH_TIMEOUT = 5.0
IDLE_CONNECTIONS = 4  # launch connections kept open to a node
StateCallback = Callable[[str, Obj], None]  # node, {"alloc", "uid", "framework", "task"}


@dataclass(frozen=True)
class AgentTLS:
    """How the master calls agents: its client certificate and the cluster CA in
    ``context``; None over plain HTTP (a master on --insecure-http)."""

    context: ssl.SSLContext | None


def agent_endpoint(node: Obj, tls: bool) -> str | None:
    """The agent's URL as its own credential registered it, or None."""
    st = status(node)
    ip = next((a.get("address") for a in st.get("addresses") or []
               if a.get("type") == "InternalIP"), None)
    port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not ip or not port or (tls and not written_by_node(node)):
        return None
    host = f"[{ip}]" if ":" in str(ip) else str(ip)
    return f"{'https' if tls else 'http'}://{host}:{port}"


class AgentLink:
    def __init__(self, node: str, url: str, tls: AgentTLS, on_state: StateCallback,
                 leader: Client) -> None:
        self.node, self.url = node, url
        self.leader = leader  # its term is shown to the agent (master_terms.py)
        self.tls = tls.context
        self.on_state = on_state
        self.live = False  # the feed is being read
        self._idle: list[Connection] = []  # launch connections kept alive
        self._partial = b""
        self._closed = False
        self._reader = asyncio.create_task(self._read(), name=f"agent-link {node}")

    async def close(self) -> None:
        self._closed = True
        await cancel_and_wait(self._reader)
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def _read(self) -> None:
        delay = BACKOFF_SECONDS[0]
        while True:
            conn = None
            try:
                conn = await connect(self.url, self.tls, self.node, LAUNCH_TIMEOUT)
                self._partial = b""
                code, text = await conn.request("GET", "/frameworkTasks", sink=self._chunk,
                                                headers=self._fenced())
                if code != 200:
                    raise HttpError(f"{code} {text.decode(errors='replace').strip()}")
                raise HttpError("the feed ended")
            except (HttpError, ValueError) as err:
                if self.live:
                    log.info("agent link lost node=%s error=%r", self.node, err)
            finally:
                if conn is not None:
                    conn.close()
            if self.live:
                delay = BACKOFF_SECONDS[0]
            self.live = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_SECONDS[1])

    def _chunk(self, data: bytes) -> None:
        """Part of the feed: its whole lines, each a JSON object."""
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            if line:
                self._line(orjson.loads(line))

    def _line(self, msg: Obj) -> None:
        if "task" not in msg:
            self.live = True
            log.info("agent link up node=%s url=%s", self.node, self.url)
            return
        self.on_state(self.node, msg)

    async def launch(self, alloc: Obj, tasks: list[Obj], kills: dict[str, float | None],
                     size: dict[str, str] | None = None) -> bool:
        """Whether the agent took them (False: leave them to the Alloc's spec);
        ``size``: the Alloc's resources, when it grew for them."""
        if not self.live:
            return False
        if not self.leader.term_held():
            log.info("direct launch held back: this master's term may have lapsed node=%s",
                     self.node)
            return False
        path = f"/frameworkTasks/{namespace_of(alloc)}/{name_of(alloc)}"
        body = orjson.dumps({"uid": uid_of(alloc), "tasks": tasks, "kills": kills,
                             "resources": size or {}})
        conn, kept = None, False
        try:
            async with asyncio.timeout(LAUNCH_TIMEOUT):
                conn = self._kept_connection() or await connect(
                    self.url, self.tls, self.node, LAUNCH_TIMEOUT)
                code, text = await conn.request("POST", path, body, headers=self._fenced())
            kept = not (conn.closed or self._closed) and len(self._idle) < IDLE_CONNECTIONS
        except (HttpError, TimeoutError) as err:
            log.info("direct launch failed node=%s error=%r", self.node, err)
            return False
        finally:
            if conn is not None:
                if kept:
                    self._idle.append(conn)
                else:
                    conn.close()
        if code != 200:
            log.debug("direct launch refused node=%s code=%d %s", self.node, code,
                      text.decode(errors="replace").strip())
        return code == 200

    def _fenced(self) -> dict[str, str] | None:
        fence = self.leader.fence()
        return {FENCE_HEADER: fence} if fence else None

    def _kept_connection(self) -> Connection | None:
        """An idle launch connection still open (the agent closes one idle for its
        keep-alive timeout, 5 s)."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        return None


class AgentLinks:
    """The links of the leading master, made on first need or when the node is
    offered, closed when the node holds no framework Alloc and is not offerable to
    a subscribed framework any more (``keep``)."""

    def __init__(self, client: Client, nodes: Informer, tls: AgentTLS, clock: Clock,
                 on_state: StateCallback) -> None:
        self.client = client
        self.nodes = nodes
        self.tls = tls
        self.clock = clock
        self.on_state = on_state
        self.links: dict[str, AgentLink] = {}
        self._allowed: dict[str, tuple[float, bool]] = {}  # node → (until, answer)
        self._reviews: dict[str, asyncio.Task[None]] = {}

    def open(self, node: str) -> AgentLink | None:
        """The node's link (made now if need be), if the node may be called."""
        if not self._may(node):
            return None
        obj = self.nodes.get(None, node)
        url = agent_endpoint(obj, self.tls.context is not None) if obj is not None else None
        link = self.links.get(node)
        if link is not None and link.url == url:
            return link
        if link is not None:
            self._close(node)
        if url is None:
            return None
        link = self.links[node] = AgentLink(node, url, self.tls, self.on_state,
                                            self.client)
        return link

    async def launch(self, node: str, alloc: Obj, tasks: list[Obj],
                     kills: dict[str, float | None], size: dict[str, str] | None = None
                     ) -> bool:
        link = self.open(node)
        return link is not None and await link.launch(alloc, tasks, kills, size)

    def keep(self, nodes: set[str]) -> None:
        for node in [n for n in self.links if n not in nodes]:
            self._close(node)
        for node in nodes:
            self.open(node)

    async def close(self) -> None:
        for task in self._reviews.values():
            await cancel_and_wait(task)
        links, self.links = list(self.links.values()), {}
        for link in links:
            await link.close()

    def _close(self, node: str) -> None:
        link = self.links.pop(node, None)
        if link is not None:
            asyncio.get_running_loop().create_task(link.close())

    def _may(self, node: str) -> bool:
        """RBAC's last answer for the node (asked again in the background when it
        is old: a link is never held up by a review on its way)."""
        until, answer = self._allowed.get(node, (0.0, False))
        if until <= self.clock.monotonic() and node not in self._reviews:
            self._reviews[node] = asyncio.get_running_loop().create_task(self._review(node))
        return answer

    async def _review(self, node: str) -> None:
        try:
            review = await self.client.review({
                "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"group": "", "resource": "nodes",
                                                "subresource": "proxy", "verb": "create",
                                                "name": node}}})
            answer = bool(status(review).get("allowed"))
        except (APIError, ServerUnreachable) as err:  # the store's way meanwhile
            log.warning("nodes/proxy review failed node=%s error=%r", node, err)
            answer = False
        self._allowed[node] = (self.clock.monotonic() + REVIEW_SECONDS, answer)
        if not answer:
            self._close(node)
        del self._reviews[node]
        if answer:
            self.open(node)

