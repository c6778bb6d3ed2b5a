"""The socket-level load balancer's eBPF programs and the layout of their maps.

Programs all on the cgroup2 root, so every process on the host runs them:

    connect4   (CGROUP_SOCK_ADDR, INET4_CONNECT) at connect() of a TCP socket:
               services[(netns cookie, dst ip, dst port)] → (count, base, next, random)
               slot = base + (random ? prandom : next++) % count
               backends[slot] → (ip, port): the socket's destination is rewritten,
               frontends[socket cookie] = (dst ip, dst port) remembers the Service
    connect6   (INET6_CONNECT) the same for an IPv6 socket connecting to
               ::ffff:<clusterIP> (a dual-stack socket: Java's default)
    getpeername4, getpeername6 (INET4/6_GETPEERNAME): a socket in frontends reports
               its Service address, as a DNATed one would (Cilium does the same)
    release    (CGROUP_SOCK, INET_SOCK_RELEASE): the socket's frontends entry goes

Every program returns 1 (allow): the hook never blocks a connect. The netns
cookie in the key scopes a program to the network namespace its agent runs in
(programs on a cgroup see sockets of every namespace). Addresses and ports are
kept in network byte order, as `struct bpf_sock_addr` has them, so the programs
copy bytes and never swap them.
"""

from __future__ import annotations

import socket
import struct

from corral.bpf.asm import (
    ADD,
    DW,
    FP,
    JEQ,
    JNE,
    MOD,
    R0,
    R1,
    R2,
    R3,
    R4,
    R6,
    R7,
    R8,
    H,
    Helper,
    Program,
    W,
)

# struct bpf_sock_addr (include/uapi/linux/bpf.h): user_ip6 is 4 words at 8..23
USER_IP4, USER_PORT, SOCK_TYPE = 4, 24, 32
USER_IP6_PREFIX, USER_IP6_LAST = (8, 12, 16), 20
V4_MAPPED = (0, 0, 0xFFFF0000)  # ::ffff:0:0/96 as three little-endian loads
SOCK_STREAM = 1

# services key: u64 netns cookie, be32 ip, be16 port, u16 zero
SERVICE_KEY = struct.Struct("<Q4s2sH")
# services value: u32 backend count, u32 first slot, u32 round-robin counter, u32 random
SERVICE_VALUE = struct.Struct("<IIII")
SLOT_KEY = struct.Struct("<I")
# backends value, and frontends value: be32 ip, be16 port, u16 zero
ADDRESS = struct.Struct("<4s2sH")
COOKIE = struct.Struct("<Q")

# Stack slots (offsets from the frame pointer).
_KEY, _FRONTEND, _SLOT, _COOKIE = -16, -8, -24, -32


def pack_address(ip: str, port: int) -> bytes:
    return ADDRESS.pack(socket.inet_aton(ip), port.to_bytes(2, "big"), 0)


def unpack_address(value: bytes) -> tuple[str, int]:
    ip, port, _ = ADDRESS.unpack(value)
    return socket.inet_ntoa(ip), int.from_bytes(port, "big")


def service_key(netns: int, ip: str, port: int) -> bytes:
    return SERVICE_KEY.pack(netns, socket.inet_aton(ip), port.to_bytes(2, "big"), 0)


def service_value(count: int, base: int, random: bool) -> bytes:
    return SERVICE_VALUE.pack(count, base, 0, int(random))


def connect4(services: int, backends: int, frontends: int) -> bytes:
    """The connect() hook of IPv4 sockets, for these map descriptors."""
    return _connect(services, backends, frontends, USER_IP4)


def connect6(services: int, backends: int, frontends: int) -> bytes:
    """The connect() hook of IPv6 sockets: a dual-stack socket (Java's default)
    connecting to ::ffff:<clusterIP> is steered as an IPv4 one; others are left."""
    return _connect(services, backends, frontends, USER_IP6_LAST)


def _connect(services: int, backends: int, frontends: int, ip: int) -> bytes:
    p = Program()
    p.mov(R6, R1)  # r6 = ctx for the whole program
    p.ldx(W, R1, R6, SOCK_TYPE)
    p.jump(JNE, R1, SOCK_STREAM, "out")  # TCP only: UDP Services stay with nftables
    if ip == USER_IP6_LAST:  # only ::ffff:a.b.c.d, an IPv4 address seen from IPv6
        for offset, word in zip(USER_IP6_PREFIX, V4_MAPPED, strict=True):
            p.ldx(W, R1, R6, offset).jump(JNE, R1, word, "out", bits=32)
    # The key on the stack: netns cookie, then the destination as the socket has it.
    p.mov(R1, R6).call(Helper.GET_NETNS_COOKIE)
    p.stx(DW, FP, _KEY, R0)
    p.ldx(W, R1, R6, ip).stx(W, FP, _FRONTEND, R1)
    p.ldx(W, R1, R6, USER_PORT).stx(H, FP, _FRONTEND + 4, R1)
    p.st(H, FP, _FRONTEND + 6, 0)
    p.ld_map_fd(R1, services).mov(R2, FP).add_imm(R2, _KEY)
    p.call(Helper.MAP_LOOKUP_ELEM)
    p.jump(JEQ, R0, 0, "out")  # not a Service of this namespace (or not ours)
    p.mov(R7, R0)  # r7 = &service
    p.ldx(W, R8, R7, 0)  # r8 = backend count
    p.jump(JEQ, R8, 0, "out")
    p.ldx(W, R1, R7, 12)
    p.jump(JNE, R1, 0, "random")
    p.mov_imm(R1, 1).fetch_add(W, R7, 8, R1)  # r1 = next++ (round-robin)
    p.goto("pick")
    p.label("random")
    p.call(Helper.GET_PRANDOM_U32).mov(R1, R0)
    p.label("pick")
    p.alu(MOD, R1, R8, reg=True, bits=32)
    p.ldx(W, R2, R7, 4).alu(ADD, R1, R2, reg=True, bits=32)  # slot = base + index
    p.stx(W, FP, _SLOT, R1)
    p.ld_map_fd(R1, backends).mov(R2, FP).add_imm(R2, _SLOT)
    p.call(Helper.MAP_LOOKUP_ELEM)
    p.jump(JEQ, R0, 0, "out")  # a slot being replaced: leave the connect to nftables
    p.ldx(W, R1, R0, 0).stx(W, R6, ip, R1)
    p.ldx(H, R1, R0, 4).stx(W, R6, USER_PORT, R1)
    # Remember the Service for getpeername and for dropping it when its endpoint goes.
    p.mov(R1, R6).call(Helper.GET_SOCKET_COOKIE)
    p.stx(DW, FP, _COOKIE, R0)
    p.ld_map_fd(R1, frontends).mov(R2, FP).add_imm(R2, _COOKIE)
    p.mov(R3, FP).add_imm(R3, _FRONTEND).mov_imm(R4, 0)
    p.call(Helper.MAP_UPDATE_ELEM)  # full map: the connection works, unremembered
    _allow(p.label("out"))
    return p.assemble()


def getpeername4(frontends: int) -> bytes:
    """getpeername() of a rewritten socket answers with its Service's address."""
    return _getpeername(frontends, USER_IP4)


def getpeername6(frontends: int) -> bytes:
    """The same for a dual-stack socket (its peer is ::ffff:<endpoint>)."""
    return _getpeername(frontends, USER_IP6_LAST)


def _getpeername(frontends: int, ip: int) -> bytes:
    p = Program()
    p.mov(R6, R1).call(Helper.GET_SOCKET_COOKIE)
    p.stx(DW, FP, _COOKIE, R0)
    p.ld_map_fd(R1, frontends).mov(R2, FP).add_imm(R2, _COOKIE)
    p.call(Helper.MAP_LOOKUP_ELEM)
    p.jump(JEQ, R0, 0, "out")
    p.ldx(W, R1, R0, 0).stx(W, R6, ip, R1)
    p.ldx(H, R1, R0, 4).stx(W, R6, USER_PORT, R1)
    _allow(p.label("out"))
    return p.assemble()


def release(frontends: int) -> bytes:
    """A socket closing leaves frontends (so the map holds live connections only)."""
    p = Program()
    p.call(Helper.GET_SOCKET_COOKIE)  # r1 is still the socket
    p.stx(DW, FP, _COOKIE, R0)
    p.ld_map_fd(R1, frontends).mov(R2, FP).add_imm(R2, _COOKIE)
    p.call(Helper.MAP_DELETE_ELEM)
    _allow(p)
    return p.assemble()


def _allow(p: Program) -> None:
    p.mov_imm(R0, 1).exit()
