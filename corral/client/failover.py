"""An httpx transport that reaches any live master of several.

    request ──▶ the current master
       ├─ connection refused / unreachable (nothing was sent): the next master,
       │  at once, until each was tried once
       ├─ any other transport error (reset, timeout): raised, and the next
       │  request goes to the next master (the Client decides whether this one
       │  is safe to send again: reads are, writes only when refused)
       └─ 503 (e.g. a master cut off from etcd): returned, and the next request
          goes to the next master

The Client builds its requests against the first URL; this rewrites each one to
the master it is sent to. Masters of one cluster share their CA and serving
certificate, so one TLS configuration fits all.
"""

from __future__ import annotations

import logging

import httpx

log = logging.getLogger(__name__)


class FailoverTransport(httpx.AsyncBaseTransport):
    def __init__(self, servers: list[str], inner: httpx.AsyncBaseTransport) -> None:
        if not servers:
            raise ValueError("FailoverTransport needs at least one server URL")
        self.servers = [httpx.URL(s) for s in servers]
        self._inner = inner
        self._current = 0

    def follow(self, previous: FailoverTransport) -> None:
        """Start from the master ``previous`` (the transport this one replaces) uses."""
        self._current = previous._current

    @property
    def current(self) -> str:
        return str(self.servers[self._current]).rstrip("/")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        last: httpx.ConnectError | None = None
        for _ in self.servers:
            index = self._current
            self._aim(request, self.servers[index])
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.ConnectError as err:  # nothing was sent: try the next at once
                last = err
                self._move_on(index, err)
                continue
            except httpx.TransportError as err:
                self._move_on(index, err)
                raise
            if response.status_code == 503:
                self._move_on(index, "503 Service Unavailable")
            return response
        assert last is not None
        raise last

    def _aim(self, request: httpx.Request, server: httpx.URL) -> None:
        request.url = request.url.copy_with(scheme=server.scheme, host=server.host,
                                            port=server.port)
        request.headers["Host"] = request.url.netloc.decode("ascii")

    def _move_on(self, index: int, why: object) -> None:
        if self._current == index and len(self.servers) > 1:
            self._current = (index + 1) % len(self.servers)
            log.info("master unreachable, trying the next one failed=%s next=%s error=%s",
                     self.servers[index], self.servers[self._current], why)

    async def aclose(self) -> None:
        await self._inner.aclose()
