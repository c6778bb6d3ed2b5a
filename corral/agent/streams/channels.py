"""Kubernetes' remote-command channel protocol over a websocket (exec, attach).

Every binary message starts with its channel byte:

    0 stdin   client → server         3 error   server → client: a Status, then close
    1 stdout  server → client         4 resize  client → server: {"Width": w, "Height": h}
    2 stderr  server → client       255 close   client → server (v5 only): [255, channel]
                                                 ends that stream, e.g. stdin's EOF

``v5.channel.k8s.io`` is what kubectl 1.30+ offers first; ``v4.channel.k8s.io``
(the same without the close signal) is what the Python clients speak. The server
takes the first protocol of the client's offer that it speaks, as apimachinery's
wsstream does. The error channel's Status is ``Success``, or ``Failure`` with
reason ``NonZeroExitCode`` and a cause ``ExitCode`` whose message is the code
(kubectl exits with it), or ``InternalError`` when the command could not run.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect

from corral.objects import Obj

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def negotiate(offered: list[str]) -> str | None:
    return next((p for p in offered if p in PROTOCOLS), None)


def success() -> Obj:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int) -> Obj:
    if code == 0:
        return success()
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: exit code {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def failure(message: str) -> Obj:
    return {"metadata": {}, "status": "Failure", "reason": "InternalError", "code": 500,
            "message": message, "details": {"causes": [{"message": message}]}}


@dataclass(frozen=True)
class Message:
    channel: int
    data: bytes


class ChannelSocket:
    """An accepted websocket speaking one of PROTOCOLS."""

    def __init__(self, ws: WebSocket, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol

    async def send(self, channel: int, data: bytes) -> None:
        await self.ws.send_bytes(bytes([channel]) + data)

    async def messages(self) -> AsyncIterator[Message]:
        """What the client sends, until it disconnects."""
        while True:
            try:
                raw = await self.ws.receive()
            except WebSocketDisconnect:
                return
            if raw["type"] == "websocket.disconnect":
                return
            data = raw.get("bytes")
            if data is None and raw.get("text") is not None:
                data = str(raw["text"]).encode()
            if data:
                yield Message(data[0], data[1:])

    async def finish(self, status: Obj) -> None:
        """Send the error channel's Status and close, as the kubelet ends a stream."""
        try:
            await self.send(ERROR, json.dumps(status).encode())
            await self.ws.close(1000)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went first: nobody is left to tell
