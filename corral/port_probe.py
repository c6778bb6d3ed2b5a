"""Whether a port can be listened on now: bind a socket to it (with SO_REUSEADDR,
as a server does, so connections in TIME_WAIT do not count) and let it go.

Used before handing a port out (the agent's host ports), before choosing one
(`corral up`'s local etcd) and before starting what will listen on it (`up`'s
masters), so that a clash is said up front rather than found by a process that
dies on it. The answer can go stale at once: it is a check, not a reservation.
"""

from __future__ import annotations

import socket


def bind_error(host: str, port: int, protocol: str = "TCP") -> OSError | None:
    """None when ``host:port`` (TCP or UDP) can be bound, else why not."""
    kind = socket.SOCK_DGRAM if protocol.upper() == "UDP" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            return err
    return None
