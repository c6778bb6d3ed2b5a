"""Port-forward over the channel protocol (``v4.channel.k8s.io``), the kubelet's
websocket port-forward that the Python clients (kubernetes' ``portforward()``,
kr8s) speak, as against kubectl's SPDY tunnel (portforward.py):

    ?ports=P0,P1...      one TCP connection per port for the session's life
    channel 2i           data of port i, both ways
    channel 2i+1         errors of port i, server → client (kubelet's wording)
    first message on every channel (server → client): the port, 2 bytes little-endian

The session ends when every connection has ended (or the client goes away).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from corral.agent.streams.channels import ChannelSocket
from corral.agent.streams.portforward import CHUNK, Resolver


def parse_ports(values: list[str]) -> list[int]:
    """``ports`` query values (each may hold a comma-separated list); ValueError if bad."""
    ports = [int(p) for v in values for p in v.split(",") if p.strip()]
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise ValueError("ports must be one or more numbers from 1 to 65535")
    return ports


class ChannelPortForward:
    def __init__(self, sock: ChannelSocket, resolve: Resolver, pod: str, uid: str) -> None:
        self.sock = sock
        self.resolve = resolve
        self.pod = pod
        self.uid = uid
        self._writers: dict[int, asyncio.StreamWriter] = {}

    async def run(self, ports: list[int]) -> None:
        # Connected before the client hears the ports: it may send at once.
        readers = [await self._connect(i, port) for i, port in enumerate(ports)]
        for i, port in enumerate(ports):
            prefix = struct.pack("<H", port)
            await self.sock.send(2 * i, prefix)
            await self.sock.send(2 * i + 1, prefix)
            if isinstance(readers[i], str):
                await self.sock.send(2 * i + 1, str(readers[i]).encode())
        pumps = asyncio.ensure_future(self._to_client_all(readers))
        inbound = asyncio.ensure_future(self._from_client())
        try:
            await asyncio.wait({pumps, inbound}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pumps.cancel()
            inbound.cancel()
            await asyncio.gather(pumps, inbound, return_exceptions=True)
            for writer in self._writers.values():
                writer.close()

    async def _connect(self, index: int, port: int) -> asyncio.StreamReader | str:
        """The connection's reader, or the kubelet's error message."""
        try:
            host, host_port = self.resolve(port)
            reader, self._writers[index] = await asyncio.open_connection(host, host_port)
            return reader
        except (LookupError, OSError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            return f"error forwarding port {port} to pod {self.pod}, uid {self.uid}: {reason}"

    async def _to_client_all(self, readers: list[asyncio.StreamReader | str]) -> None:
        await asyncio.gather(*(self._to_client(i, r) for i, r in enumerate(readers)
                               if isinstance(r, asyncio.StreamReader)))

    async def _to_client(self, index: int, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(CHUNK):
                await self.sock.send(2 * index, chunk)

    async def _from_client(self) -> None:
        async for message in self.sock.messages():
            writer = self._writers.get(message.channel // 2)
            if message.channel % 2 == 0 and writer is not None and message.data:
                writer.write(message.data)
                await writer.drain()
