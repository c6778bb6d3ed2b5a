"""The leading master's side of the Mesos scheduler API: frameworks, their
streams and calls.

    endpoint.py ── SUBSCRIBE ──► subscribe() ─► Framework object written ─► Stream
                                  (SUBSCRIBED, HEARTBEAT, then whatever is pending)
                ── other call ─► handle() ─► checks (400/403 as Mesos) ─► the call's handler:
                     done at once (most), or a coroutine the endpoint awaits
    run(): heartbeats every HEARTBEAT_SECONDS; failover timeouts of disconnected
           frameworks; the offer cycle and task updates (offers.py, tasks.py)

It lives only while this master holds the Lease (component.py builds one per
term), so everything in it is rebuilt from the store when a standby takes over:
frameworks from their objects (disconnected, their failover starting then),
tasks from the Allocs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from corral.api.errors import AlreadyExists, APIError, Conflict, NotFound
from corral.client.clock import Clock
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj, now_rfc3339, status
from corral.offers.auth import ANONYMOUS, Principal
from corral.offers.frameworks import (
    DISCONNECTED,
    REMOVED,
    SUBSCRIBED,
    Registered,
    check_info,
    framework_object,
    framework_spec,
    new_framework_id,
    registered_from,
)
from corral.offers.protocol import HEARTBEAT_SECONDS, Call, CallError, event, mesos_id
from corral.offers.stream import Stream

log = logging.getLogger("corral.offers")

FAILOVER_CHECK_SECONDS = 0.25
WRITE_ATTEMPTS = 5


class HttpError(Exception):
    """A call refused with Mesos' status code and message (400, 403, ...)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# A call's handler: done when it returns None, or the coroutine that does it.
CallHandler = Callable[[Registered, Call], "Coroutine[Any, Any, None] | None"]


async def _as_http_error(work: Coroutine[Any, Any, None]) -> None:
    try:
        await work
    except CallError as err:
        raise HttpError(400, str(err)) from None


class Hooks:
    """What the offer cycle and the task book do when frameworks come and go;
    the master calls these, the parts that care override them."""

    def framework_added(self, fw: Registered) -> None: ...
    def framework_subscribed(self, fw: Registered) -> None: ...
    def framework_disconnected(self, fw: Registered) -> None: ...
    async def framework_removed(self, fw: Registered) -> None: ...

    def framework_state(self, fw: Registered) -> Obj:
        """Fields of the framework's entry in /master/state (tasks, offers, ...)."""
        return {}

    def agents_state(self) -> list[Obj]:
        """The /master/state "slaves" (only the part that knows the nodes has them)."""
        return []


class MesosMaster:
    def __init__(self, client: Client, clock: Clock, master_info: Obj, *,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.client = client
        self.clock = clock
        self.master_info = master_info
        self.heartbeat_seconds = heartbeat_seconds
        self.frameworks: dict[str, Registered] = {}
        self.hooks: list[Hooks] = []
        self.handlers: dict[str, CallHandler] = {"TEARDOWN": self._teardown}
        self.ready = asyncio.Event()  # frameworks loaded from the store
        self._background: set[asyncio.Task[None]] = set()

    # -- the term -------------------------------------------------------------------

    async def load(self) -> None:
        """Frameworks from the store: each one not removed is disconnected now
        (its stream was with the previous leader) and has its failover time."""
        for obj in (await self.client.list_all("Framework")).items:
            fw = registered_from(obj)
            if fw.removed:
                self.frameworks[fw.id] = fw
                continue
            fw.disconnected_at = self.clock.monotonic()
            self.frameworks[fw.id] = fw
            for hook in self.hooks:
                hook.framework_added(fw)
            await self.write_status(fw, phase=DISCONNECTED, disconnectedTime=now_rfc3339())
        self.ready.set()
        log.info("mesos master leading frameworks=%d",
                 sum(1 for f in self.frameworks.values() if not f.removed))

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background for this term (cancelled when it ends)."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def run(self, stop: asyncio.Event) -> None:
        self.spawn(self._heartbeats())
        try:
            while not stop.is_set():
                await self._expire_failovers()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), FAILOVER_CHECK_SECONDS)
        finally:
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            for fw in self.frameworks.values():
                if fw.stream is not None:
                    fw.stream.close()  # the framework finds the next leader

    async def _heartbeats(self) -> None:
        while True:
            await self.clock.sleep(self.heartbeat_seconds)
            for fw in self.frameworks.values():
                if fw.connected:
                    self.send(fw, event("HEARTBEAT"))

    async def _expire_failovers(self) -> None:
        now = self.clock.monotonic()
        for fw in list(self.frameworks.values()):
            if (fw.disconnected_at is not None and not fw.removed
                    and now - fw.disconnected_at >= fw.failover_timeout):
                log.info("framework failover timeout passed framework=%s timeout=%g",
                         fw.id, fw.failover_timeout)
                await self.remove(fw, "Framework failover timeout")

    # -- SUBSCRIBE ------------------------------------------------------------------

    async def subscribe(self, call: Call, caller: Principal = ANONYMOUS) -> Stream:
        """SUBSCRIBE from ``caller`` (the endpoint has checked FrameworkInfo's
        principal against it and its roles with RBAC)."""
        info = call.body.get("framework_info") or {}
        check_info(info)
        framework_id = call.framework_id or new_framework_id()
        fw = self.frameworks.get(framework_id)
        stream = Stream(framework_id)
        refused = "Framework has been removed" if fw is not None and fw.removed else ""
        if fw is not None and not refused and fw.principal != str(info.get("principal") or ""):
            # Whoever knows a framework's id must not take it over as someone else.
            refused = "Changing framework's principal is not allowed."
        if refused:
            stream.send(event("ERROR", message=refused))
            stream.close()
            return stream
        if fw is None:
            fw = await self._create(framework_id, info)
        else:
            await self._resubscribe(fw, info)
        old, fw.stream, fw.disconnected_at = fw.stream, stream, None
        fw.caller = caller
        fw.suppressed = {str(r) for r in call.body.get("suppressed_roles") or ()
                         if isinstance(r, str)}
        if old is not None and not old.closed:
            old.send(event("ERROR", message="Framework failed over"))
            old.close()
        self.send(fw, event("SUBSCRIBED", framework_id=mesos_id(fw.id),
                            heartbeat_interval_seconds=self.heartbeat_seconds,
                            master_info=self.master_info))
        self.send(fw, event("HEARTBEAT"))
        for hook in self.hooks:
            hook.framework_subscribed(fw)
        log.info("framework subscribed framework=%s name=%r roles=%s", fw.id,
                 info.get("name"), ",".join(fw.roles))
        return stream

    async def _create(self, framework_id: str, info: Obj) -> Registered:
        body = framework_object(framework_id, info)
        try:
            obj = await self.client.create(body)
        except AlreadyExists:
            obj = await self.client.get("Framework", framework_id)  # another term wrote it
        except APIError as err:
            raise HttpError(400, f"Invalid FrameworkInfo: {err}") from None
        fw = registered_from(obj)
        self.frameworks[framework_id] = fw
        for hook in self.hooks:
            hook.framework_added(fw)
        await self.write_status(fw, phase=SUBSCRIBED, registeredTime=now_rfc3339())
        return fw

    async def _resubscribe(self, fw: Registered, info: Obj) -> None:
        wanted = framework_spec(info)
        if wanted != fw.obj.get("spec"):
            body = {**fw.obj, "spec": wanted}
            try:
                fw.obj = await self.client.update(body)
            except Conflict:
                fresh = await self.client.get("Framework", fw.id)
                fw.obj = await self.client.update({**fresh, "spec": wanted})
            except APIError as err:
                raise HttpError(400, f"Invalid FrameworkInfo: {err}") from None
        await self.write_status(fw, phase=SUBSCRIBED, reregisteredTime=now_rfc3339(),
                                 disconnectedTime=None)

    # -- the other calls --------------------------------------------------------------

    def handle(self, call: Call, stream_id: str | None,
               caller: Principal = ANONYMOUS) -> Coroutine[Any, Any, None] | None:
        """A call other than SUBSCRIBE, checked as Mesos checks it, and done: at once
        (None), or by the coroutine returned (a handler that must wait)."""
        fw = self._check(call, stream_id, caller)
        fw.caller = caller
        handler = self.handlers.get(call.type)
        if handler is None:
            return None  # a call corral accepts and does nothing with (202)
        try:
            work = handler(fw, call)
        except CallError as err:
            raise HttpError(400, str(err)) from None
        return None if work is None else _as_http_error(work)

    def _check(self, call: Call, stream_id: str | None, caller: Principal) -> Registered:
        fw = self.frameworks.get(call.framework_id)
        if fw is None:
            raise HttpError(400, "Framework cannot be found")
        if caller is not ANONYMOUS and caller.name != fw.principal:
            raise HttpError(400, f"Authenticated principal '{caller.name}' does not match "
                                 f"principal '{fw.principal}' set in `FrameworkInfo`")
        if not fw.connected:
            raise HttpError(403, "Framework is not subscribed")
        if not stream_id:
            raise HttpError(400, "All non-subscribe calls should include the "
                                 "'Mesos-Stream-Id' header")
        assert fw.stream is not None
        if stream_id != fw.stream.id:
            raise HttpError(400, f"The stream ID '{stream_id}' included in this request "
                                 f"didn't match the stream ID currently associated with "
                                 f"framework ID {fw.id}")
        return fw

    async def _teardown(self, fw: Registered, call: Call) -> None:
        await self.remove(fw, "Framework torn down")

    def disconnected(self, stream: Stream) -> None:
        """A SUBSCRIBE response ended (the framework went away, or was cut off)."""
        stream.close()
        fw = self.frameworks.get(stream.framework_id)
        if fw is None or fw.stream is not stream or fw.removed:
            return
        fw.stream, fw.disconnected_at = None, self.clock.monotonic()
        for hook in self.hooks:
            hook.framework_disconnected(fw)
        log.info("framework disconnected framework=%s failover_timeout=%g", fw.id,
                 fw.failover_timeout)
        self.spawn(self.write_status(fw, phase=DISCONNECTED, disconnectedTime=now_rfc3339()))

    async def remove(self, fw: Registered, message: str) -> None:
        """Removed for good: torn down, or its failover timeout ran out."""
        if fw.removed:
            return
        fw.disconnected_at = None
        await self.write_status(fw, phase=REMOVED, unregisteredTime=now_rfc3339(),
                                 message=message)
        if fw.stream is not None:
            fw.stream.close()
            fw.stream = None
        for hook in self.hooks:
            await hook.framework_removed(fw)
        log.info("framework removed framework=%s reason=%r", fw.id, message)

    # -- helpers ----------------------------------------------------------------------

    def framework_extra(self, fw: Registered) -> Obj:
        out: Obj = {}
        for hook in self.hooks:
            out.update(hook.framework_state(fw))
        return out

    def agents_state(self) -> list[Obj]:
        return [agent for hook in self.hooks for agent in hook.agents_state()]

    def send(self, fw: Registered, evt: Obj) -> None:
        if fw.stream is not None:
            fw.stream.send(evt)

    async def write_status(self, fw: Registered, **fields: Any) -> None:
        """Merge ``fields`` into the Framework's status (None removes a field)."""
        for _ in range(WRITE_ATTEMPTS):
            current = {k: v for k, v in {**status(fw.obj), **fields}.items() if v is not None}
            if fw.obj.get("status") == current:
                return
            try:
                fw.obj = await self.client.update_status({**fw.obj, "status": current})
                return
            except Conflict:
                with contextlib.suppress(NotFound):
                    fw.obj = await self.client.get("Framework", fw.id)
            except NotFound:
                fw.obj = {**fw.obj, "status": current}  # deleted by hand: keep our view
                return
            except (APIError, ServerUnreachable) as err:
                log.warning("framework status not written framework=%s error=%s", fw.id, err)
                fw.obj = {**fw.obj, "status": current}
                return
