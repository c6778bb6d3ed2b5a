"""The bpf(2) system call from Python: maps, program loading, cgroup links, queries.

Every object is a file descriptor owned by this process. Closing it (or the
process dying, kill -9 included) releases the kernel object once nothing else
holds it: a program attached through a bpf_link is detached when the link's last
descriptor closes, and its maps go with it. Nothing is pinned, so nothing is
left behind.

    Map.create(HASH, key_size, value_size, max_entries)   BPF_MAP_CREATE
      .update(key, value) .delete(key) .lookup(key) .keys()
    load(prog_type, insns, expected_attach_type)        BPF_PROG_LOAD → fd;
      a refusal raises VerifierError carrying the verifier's log
    link_cgroup(prog_fd, cgroup_fd, attach_type)        BPF_LINK_CREATE → fd
    query_cgroup(cgroup_fd, attach_type)                BPF_PROG_QUERY → program ids

Struct layouts are `union bpf_attr` of include/uapi/linux/bpf.h; the kernel
accepts a larger attr as long as the bytes it does not know are zero.
"""

from __future__ import annotations

import ctypes
import enum
import errno
import os
import platform
import struct
from collections.abc import Iterator

_SYSCALL_NR = {"x86_64": 321, "aarch64": 280}
_ATTR_SIZE = 144
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class Cmd(enum.IntEnum):
    MAP_CREATE = 0
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    MAP_GET_NEXT_KEY = 4
    PROG_LOAD = 5
    PROG_GET_FD_BY_ID = 13
    PROG_QUERY = 16
    LINK_CREATE = 28


class MapType(enum.IntEnum):
    HASH = 1
    ARRAY = 2


class ProgType(enum.IntEnum):
    CGROUP_SOCK = 9
    CGROUP_SOCK_ADDR = 18


class AttachType(enum.IntEnum):
    CGROUP_INET4_CONNECT = 10
    CGROUP_INET6_CONNECT = 11
    CGROUP_INET4_GETPEERNAME = 29
    CGROUP_INET6_GETPEERNAME = 30
    CGROUP_INET_SOCK_RELEASE = 34


NO_PREALLOC = 1  # BPF_F_NO_PREALLOC: a hash map's memory grows with its elements
QUERY_EFFECTIVE = 1  # BPF_F_QUERY_EFFECTIVE: programs inherited from ancestors too
LOG_SIZE = 1 << 20


class BpfError(OSError):
    """A bpf() command failed (errno and the command in the message)."""


class VerifierError(BpfError):
    """BPF_PROG_LOAD refused a program; `log` is the verifier's own account of why."""

    def __init__(self, err: int, name: str, log: str) -> None:
        super().__init__(err, f"the verifier refused program {name!r} "
                              f"({os.strerror(err)}):\n{log.strip() or '(no log)'}")
        self.log = log


def _nr() -> int:
    machine = platform.machine()
    if machine not in _SYSCALL_NR:
        raise BpfError(errno.ENOSYS, f"bpf(): no syscall number known for {machine}")
    return _SYSCALL_NR[machine]


def bpf(cmd: Cmd, attr: ctypes.Array[ctypes.c_char]) -> int:
    """bpf(cmd, &attr, sizeof attr); its non-negative result, else BpfError."""
    result = int(_libc.syscall(_nr(), int(cmd), ctypes.byref(attr), ctypes.sizeof(attr)))
    if result < 0:
        err = ctypes.get_errno()
        raise BpfError(err, f"bpf({cmd.name}): {os.strerror(err)}")
    return result


def _attr(*fields: tuple[int, str, object]) -> ctypes.Array[ctypes.c_char]:
    """A zeroed bpf_attr with (offset, struct format, value) fields set."""
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    for offset, fmt, value in fields:
        struct.pack_into("<" + fmt, attr, offset, value)
    return attr


def _address(buffer: ctypes.Array[ctypes.c_char]) -> int:
    return ctypes.addressof(buffer)


class Map:
    """One BPF map, by its descriptor; keys and values are the raw bytes the
    programs see (the caller packs them)."""

    def __init__(self, fd: int, key_size: int, value_size: int, name: str) -> None:
        self.fd = fd
        self.key_size = key_size
        self.value_size = value_size
        self.name = name

    @classmethod
    def create(cls, map_type: MapType, key_size: int, value_size: int, max_entries: int,
               name: str, flags: int = 0) -> Map:
        fd = bpf(Cmd.MAP_CREATE, _attr((0, "I", map_type), (4, "I", key_size),
                                       (8, "I", value_size), (12, "I", max_entries),
                                       (16, "I", flags), (28, "16s", _name(name))))
        return cls(fd, key_size, value_size, name)

    def _key(self, key: bytes) -> ctypes.Array[ctypes.c_char]:
        if len(key) != self.key_size:
            raise ValueError(f"map {self.name}: key of {len(key)} bytes, not {self.key_size}")
        return ctypes.create_string_buffer(key, self.key_size)

    def update(self, key: bytes, value: bytes) -> None:
        if len(value) != self.value_size:
            raise ValueError(f"map {self.name}: value of {len(value)} bytes, "
                             f"not {self.value_size}")
        k, v = self._key(key), ctypes.create_string_buffer(value, self.value_size)
        bpf(Cmd.MAP_UPDATE_ELEM, _attr((0, "I", self.fd), (8, "Q", _address(k)),
                                       (16, "Q", _address(v)), (24, "Q", 0)))

    def delete(self, key: bytes) -> bool:
        """Remove the element; False when there was none."""
        k = self._key(key)
        try:
            bpf(Cmd.MAP_DELETE_ELEM, _attr((0, "I", self.fd), (8, "Q", _address(k))))
        except BpfError as err:
            if err.errno == errno.ENOENT:
                return False
            raise
        return True

    def lookup(self, key: bytes) -> bytes | None:
        k, v = self._key(key), ctypes.create_string_buffer(self.value_size)
        try:
            bpf(Cmd.MAP_LOOKUP_ELEM, _attr((0, "I", self.fd), (8, "Q", _address(k)),
                                           (16, "Q", _address(v))))
        except BpfError as err:
            if err.errno == errno.ENOENT:
                return None
            raise
        return v.raw

    def keys(self) -> Iterator[bytes]:
        """Every key (a hash map's order; elements changed meanwhile may be missed)."""
        previous: ctypes.Array[ctypes.c_char] | None = None
        while True:
            following = ctypes.create_string_buffer(self.key_size)
            try:
                bpf(Cmd.MAP_GET_NEXT_KEY, _attr(
                    (0, "I", self.fd), (8, "Q", 0 if previous is None else _address(previous)),
                    (16, "Q", _address(following))))
            except BpfError as err:
                if err.errno == errno.ENOENT:
                    return
                raise
            yield following.raw
            previous = following

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _name(name: str) -> bytes:
    """An object name: at most 15 characters of [A-Za-z0-9_.] (the kernel's rule)."""
    return name.encode()[:15]


def load(prog_type: ProgType, insns: bytes, name: str,
         expected_attach_type: AttachType | None = None) -> int:
    """Load a program; its descriptor. A refusal raises VerifierError with the log
    (loaded again with the log on, so a program that passes pays nothing for it)."""
    license_ = ctypes.create_string_buffer(b"GPL")
    code = ctypes.create_string_buffer(insns, len(insns))

    def attempt(log: ctypes.Array[ctypes.c_char] | None) -> int:
        return bpf(Cmd.PROG_LOAD, _attr(
            (0, "I", prog_type), (4, "I", len(insns) // 8), (8, "Q", _address(code)),
            (16, "Q", _address(license_)), (24, "I", 1 if log is not None else 0),
            (28, "I", ctypes.sizeof(log) if log is not None else 0),
            (32, "Q", _address(log) if log is not None else 0), (48, "16s", _name(name)),
            (68, "I", expected_attach_type if expected_attach_type is not None else 0)))

    try:
        return attempt(None)
    except BpfError as first:
        if first.errno not in (errno.EINVAL, errno.EACCES, errno.E2BIG, errno.ERANGE):
            raise  # EPERM and the like: no verifier involved
        log = ctypes.create_string_buffer(LOG_SIZE)
        try:
            return attempt(log)  # accepted the second time: not expected, but fine
        except BpfError as err:
            raise VerifierError(err.errno or first.errno or errno.EINVAL, name,
                                log.value.decode(errors="replace")) from None


def link_cgroup(prog_fd: int, cgroup_fd: int, attach_type: AttachType) -> int:
    """Attach a program to a cgroup through a bpf_link (multi-attach: other
    programs on the same hook keep running); the link's descriptor."""
    return bpf(Cmd.LINK_CREATE, _attr((0, "I", prog_fd), (4, "I", cgroup_fd),
                                      (8, "I", attach_type), (12, "I", 0)))


def query_cgroup(cgroup_fd: int, attach_type: AttachType, effective: bool = False,
                 capacity: int = 256) -> list[int]:
    """Ids of the programs attached to a cgroup's hook (and its ancestors' with
    ``effective``)."""
    ids = (ctypes.c_uint32 * capacity)()
    attr = _attr((0, "I", cgroup_fd), (4, "I", attach_type),
                 (8, "I", QUERY_EFFECTIVE if effective else 0),
                 (16, "Q", ctypes.addressof(ids)), (24, "I", capacity))
    bpf(Cmd.PROG_QUERY, attr)
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:count])


def program_exists(prog_id: int) -> bool:
    """Whether a program of that id is still loaded (ENOENT once it is freed)."""
    try:
        fd = bpf(Cmd.PROG_GET_FD_BY_ID, _attr((0, "I", prog_id)))
    except BpfError as err:
        if err.errno == errno.ENOENT:
            return False
        raise
    os.close(fd)
    return True
