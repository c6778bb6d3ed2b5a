"""A hand-written Mesos v1 scheduler client for tests: what a framework does on
the wire (SUBSCRIBE on one connection, reading the RecordIO stream; every other
call on its own connection with the Mesos-Stream-Id), nothing more.

    fw = Framework(url, name="t").subscribe()
    offers = fw.wait_event("OFFERS")["offers"]["offers"]
    fw.call("ACCEPT", accept={...})

It authenticates as the URL says: ``http://PRINCIPAL:SECRET@host:port`` is HTTP
Basic (httpx takes it from the URL), as ``credentialed(url, data_dir)`` makes it
for the principal a master writes to DATA_DIR/mesos-credentials; ``token=`` sends
a bearer token instead.
"""

from __future__ import annotations

import base64
import json
import queue
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from tests.poll import wait_for

Obj = dict[str, Any]


def read_records(chunks: Any) -> Any:
    """RecordIO: "<length>\\n<json>" records out of a byte stream."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while b"\n" in buffer:
            head, _, rest = buffer.partition(b"\n")
            size = int(head)
            if len(rest) < size:
                break
            yield json.loads(rest[:size])
            buffer = rest[size:]


def _shut_down(response: httpx.Response) -> None:
    """Shut the stream's socket down. The reader thread is blocked in a read on it,
    and closing the response from another thread neither wakes that read nor ends
    the connection while the read holds the socket: the master did not see the
    framework go until its next heartbeat (15 s) and disconnect() waited 10 s for
    the reader in vain."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by the master


class Framework:
    def __init__(self, url: str, name: str = "test-framework", *, roles: list[str] | None = None,
                 failover_timeout: float | None = None, framework_id: str | None = None,
                 capabilities: list[str] | None = None, user: str = "",
                 token: str | None = None) -> None:
        self.url = url
        # No user: its tasks run as the nodes' unprivileged pod user.
        self.info: Obj = {"name": name, "user": user}
        if roles is not None:
            self.info["roles"] = roles
            self.info["capabilities"] = [{"type": "MULTI_ROLE"}]
        if capabilities:
            self.info.setdefault("capabilities", []).extend({"type": c} for c in capabilities)
        if failover_timeout is not None:
            self.info["failover_timeout"] = failover_timeout
        self.id = framework_id or ""
        self.stream_id = ""
        self.events: queue.Queue[Obj | None] = queue.Queue()
        self.seen: list[Obj] = []
        self._thread: threading.Thread | None = None
        self._response: httpx.Response | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(30.0, read=None), headers={
            "Authorization": f"Bearer {token}"} if token else None)
        self.status_code = 0
        self.auto_ack = True  # acknowledge the updates waited past, as a framework does
        self.used_offers: set[str] = set()  # accepted or declined: not offers to use
        # Updates waited past and acknowledged: never sent again, and another task's
        # update may come first, so wait_update looks here before the stream.
        self.passed_updates: list[Obj] = []

    # -- the stream ---------------------------------------------------------------

    def subscribe(self) -> Framework:
        self.events = queue.Queue()  # a new stream: the old one's end is behind us
        info = dict(self.info)
        body: Obj = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
        if self.id:
            info["id"] = {"value": self.id}
            body["framework_id"] = {"value": self.id}
        request = self._client.build_request(
            "POST", f"{self.url}/api/v1/scheduler", json=body,
            headers={"Accept": "application/json"})
        self._response = self._client.send(request, stream=True)
        self.status_code = self._response.status_code
        if self.status_code != 200:
            self._response.read()
            raise AssertionError(f"SUBSCRIBE answered {self.status_code}: "
                                 f"{self._response.text}")
        self.stream_id = self._response.headers["Mesos-Stream-Id"]
        self._thread = threading.Thread(target=self._read, args=(self._response,), daemon=True)
        self._thread.start()
        subscribed = self.wait_event("SUBSCRIBED")
        self.id = subscribed["subscribed"]["framework_id"]["value"]
        return self

    def _read(self, response: httpx.Response) -> None:
        try:
            for evt in read_records(response.iter_raw()):
                self.events.put(evt)
        except (httpx.HTTPError, ValueError):
            pass
        finally:
            self.events.put(None)

    def disconnect(self) -> None:
        """Close the subscription connection, as a framework that dies does."""
        if self._response is not None:
            _shut_down(self._response)
            self._response.close()
            self._response = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def close(self) -> None:
        self.disconnect()
        self._client.close()

    def next_event(self, timeout: float = 30.0) -> Obj | None:
        try:
            evt = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout}s; seen "
                                 f"{[e['type'] for e in self.seen]}") from None
        if evt is not None:
            self.seen.append(evt)
        return evt

    def wait_event(self, kind: str, timeout: float = 30.0, match: Any = None) -> Obj:
        """The next event of ``kind`` (for which ``match(event)`` holds), skipping others
        (they stay in ``seen``)."""
        found: list[Obj] = []

        def check() -> bool:
            try:
                evt = self.events.get(timeout=0.05)
            except queue.Empty:
                return False
            if evt is None:
                raise AssertionError(f"stream ended waiting for {kind}; seen "
                                     f"{[e['type'] for e in self.seen]}")
            self.seen.append(evt)
            if evt["type"] == kind and (match is None or match(evt)):
                found.append(evt)
                return True
            if evt["type"] == "UPDATE" and self.auto_ack:
                if "uuid" in evt["update"]["status"]:
                    self.acknowledge(evt["update"]["status"])
                self.passed_updates.append(evt["update"]["status"])
            return False

        wait_for(check, timeout, f"a {kind} event", interval=0)
        return found[0]

    def wait_update(self, task_id: str, state: str, timeout: float = 60.0,
                    ack: bool = True) -> Obj:
        """The UPDATE that moves ``task_id`` to ``state``; acknowledged unless told.
        One already waited past (and so acknowledged) counts."""
        for st in self.passed_updates:
            if st["task_id"]["value"] == task_id and st["state"] == state:
                self.passed_updates.remove(st)
                return st
        evt = self.wait_event("UPDATE", timeout, lambda e: (
            e["update"]["status"]["task_id"]["value"] == task_id
            and e["update"]["status"]["state"] == state))
        st = evt["update"]["status"]
        if ack and "uuid" in st:
            self.acknowledge(st)
        return st

    # -- calls ---------------------------------------------------------------------

    def call(self, kind: str, *, stream_id: str | None = None, raw: bytes | None = None,
             content_type: str = "application/json", **body: Any) -> httpx.Response:
        data: Obj = {"type": kind, "framework_id": {"value": self.id}, **body}
        content = raw if raw is not None else json.dumps(data).encode()
        headers = {"Content-Type": content_type, "Accept": "application/json",
                   "Mesos-Stream-Id": self.stream_id if stream_id is None else stream_id}
        return self._client.post(f"{self.url}/api/v1/scheduler", content=content,
                                 headers=headers)

    def acknowledge(self, st: Obj) -> httpx.Response:
        r = self.call("ACKNOWLEDGE", acknowledge={"agent_id": st["agent_id"],
                                                  "task_id": st["task_id"],
                                                  "uuid": st["uuid"]})
        assert r.status_code == 202, r.text
        return r

    def accept(self, offer_ids: list[str], operations: list[Obj],
               refuse_seconds: float | None = None) -> httpx.Response:
        self.used_offers.update(offer_ids)
        accept: Obj = {"offer_ids": [{"value": o} for o in offer_ids],
                       "operations": operations}
        if refuse_seconds is not None:
            accept["filters"] = {"refuse_seconds": refuse_seconds}
        return self.call("ACCEPT", accept=accept)


def credentialed(url: str, data_dir: Path, principal: str = "corral-framework") -> str:
    """``url`` with the principal and secret of the master's credentials file."""
    creds = json.loads((data_dir / "mesos-credentials").read_text())["credentials"]
    secret = next(c["secret"] for c in creds if c["principal"] == principal)
    parts = urlsplit(url)
    return f"{parts.scheme}://{quote(principal, safe='')}:{quote(secret, safe='')}" \
           f"@{parts.netloc}{parts.path}"


def leading(url: str) -> bool:
    """Whether a Mesos master answers /master/state (a standby answers 307/503)."""
    try:
        return httpx.get(f"{url}/master/state", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def held_offer(fw: Framework, node: str) -> Obj | None:
    """An offer for ``node`` the framework got and has not used, declined or seen
    rescinded (events waited past stay in ``seen``)."""
    rescinded = {e["rescind"]["offer_id"]["value"] for e in fw.seen if e["type"] == "RESCIND"}
    for evt in reversed(fw.seen):
        for offer in evt["offers"]["offers"] if evt["type"] == "OFFERS" else ():
            offer_id = offer["id"]["value"]
            if offer["agent_id"]["value"] == node and offer_id not in fw.used_offers | rescinded:
                return dict(offer)
    return None


def unused_offer(fw: Framework, node: str, timeout: float = 60.0) -> Obj:
    """An unused offer for ``node``: one already received, or the next to come."""
    held = held_offer(fw, node)
    if held is not None:
        return held
    evt = fw.wait_event("OFFERS", timeout, lambda e: any(
        o["agent_id"]["value"] == node for o in e["offers"]["offers"]))
    return dict(next(o for o in evt["offers"]["offers"] if o["agent_id"]["value"] == node))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
