"""TCP sockets of this network namespace through netlink sock_diag, and SOCK_DESTROY.

What `ss -K` does: a dump (SOCK_DIAG_BY_FAMILY) lists the namespace's TCP sockets
with their 4-tuple and cookie; SOCK_DESTROY aborts one (the kernel's tcp_abort:
the owner's next call fails with ECONNABORTED, the peer gets a reset). Needs
CAP_NET_ADMIN and a kernel built with CONFIG_INET_DIAG_DESTROY. The socket-level
load balancer uses it where nftables mode flushes conntrack: a connection it
steered to an endpoint that left is direct, so no conntrack entry stands for it.

Layouts: linux/netlink.h (nlmsghdr), linux/inet_diag.h (inet_diag_req_v2,
inet_diag_sockid, inet_diag_msg).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY, SOCK_DESTROY = 20, 21
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
# inet_diag_req_v2: family, protocol, ext, pad, states; then inet_diag_sockid:
# be16 sport, be16 dport, be32 src[4], be32 dst[4], u32 if, u32 cookie[2]
_REQUEST = struct.Struct("=BBBBI2s2s16s16sIQ")
_SOCKID_OFFSET = 4  # inside inet_diag_msg: family, state, timer, retrans, then the id
_SOCKID = struct.Struct("=2s2s16s16sIQ")
TCP_LISTEN, TCP_TIME_WAIT = 10, 6
# Every state but LISTEN and TIME_WAIT: what may still carry a client's data.
_STATES = 0xFFF & ~(1 << TCP_LISTEN) & ~(1 << TCP_TIME_WAIT)


_V4_MAPPED = bytes(10) + b"\xff\xff"


@dataclass(frozen=True)
class TcpSocket:
    """One TCP socket of the namespace, as sock_diag names it: an IPv4 one, or an
    IPv6 one (a dual-stack socket connected to ::ffff:a.b.c.d)."""

    family: int
    src: bytes  # 16 bytes, as the kernel gives them (IPv4: the first 4)
    sport: int
    dst: bytes
    dport: int
    interface: int
    cookie: int

    @property
    def peer(self) -> tuple[str, int]:
        """(IPv4 destination, port); "" for an IPv6 destination that is not v4-mapped."""
        if self.family == socket.AF_INET:
            return socket.inet_ntoa(self.dst[:4]), self.dport
        if self.dst.startswith(_V4_MAPPED):
            return socket.inet_ntoa(self.dst[12:]), self.dport
        return "", self.dport

    def request(self) -> bytes:
        return _REQUEST.pack(self.family, socket.IPPROTO_TCP, 0, 0, _STATES,
                             self.sport.to_bytes(2, "big"), self.dport.to_bytes(2, "big"),
                             self.src, self.dst, self.interface, self.cookie)


def _message(kind: int, flags: int, body: bytes, seq: int) -> bytes:
    return _HEADER.pack(_HEADER.size + len(body), kind, flags, seq, 0) + body


def _messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        yield kind, data[offset + _HEADER.size:offset + length]
        offset += (length + 3) & ~3


def _error(body: bytes) -> int:
    """The errno of an NLMSG_ERROR (0 for an acknowledgement)."""
    code: int = struct.unpack_from("=i", body)[0]
    return -code


def tcp_sockets() -> list[TcpSocket]:
    """The namespace's TCP sockets, IPv4 and IPv6, that may carry data (not
    listening, not TIME_WAIT)."""
    return _dump(socket.AF_INET) + _dump(socket.AF_INET6)


def _dump(family: int) -> list[TcpSocket]:
    found: list[TcpSocket] = []
    every = TcpSocket(family, bytes(16), 0, bytes(16), 0, 0, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        nl.sendall(_message(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP,
                            every.request(), 1))
        while True:
            for kind, body in _messages(nl.recv(1 << 16)):
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR:
                    err = _error(body)
                    raise OSError(err, f"sock_diag dump: {os.strerror(err)}")
                if kind == SOCK_DIAG_BY_FAMILY:
                    found.append(_parse(family, body))


def _parse(family: int, body: bytes) -> TcpSocket:
    sport, dport, src, dst, interface, cookie = _SOCKID.unpack_from(body, _SOCKID_OFFSET)
    return TcpSocket(family, src, int.from_bytes(sport, "big"), dst,
                     int.from_bytes(dport, "big"), interface, cookie)


def destroy(sockets: list[TcpSocket]) -> int:
    """Abort these sockets; how many were (one that closed meanwhile is not an error)."""
    destroyed = 0
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        for seq, sock in enumerate(sockets, start=1):
            nl.sendall(_message(SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, sock.request(), seq))
            for kind, body in _messages(nl.recv(1 << 16)):
                if kind != NLMSG_ERROR:
                    continue
                err = _error(body)
                if err == 0:
                    destroyed += 1
                elif err != errno.ENOENT:
                    raise OSError(err, f"SOCK_DESTROY: {os.strerror(err)}")
    return destroyed
