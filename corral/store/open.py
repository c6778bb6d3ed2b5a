"""``open_store(url)``: the Store a URL names.

    sqlite:///abs/path/state.db   SqliteStore on that file (sqlite://rel/path: relative)
        ?history=N&compact_interval=S   keep N revisions of history, compact every S s
    (etcd:// is not built yet: the HA work adds it to OPENERS; until then it is
    refused as an unknown scheme)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, unquote

from corral.store.base import Store

Opener = Callable[[str], Awaitable[Store]]


async def _open_sqlite(rest: str) -> Store:
    from corral.store.sqlite import SqliteStore

    rest, _, query = rest.partition("?")
    options = _sqlite_options(query)
    path = unquote(rest)
    if path.startswith("/") and path[1:2] == "/":
        path = path[1:]  # sqlite:////abs is also an absolute path
    if not path:
        raise ValueError("sqlite store URL has no path: use sqlite:///path/to/state.db")
    history = int(options.get("history", 10000))
    interval = options.get("compact_interval", 60.0)
    return await SqliteStore.open(path, history=history, compact_interval=interval)


def _sqlite_options(query: str) -> dict[str, float]:
    options: dict[str, float] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name not in ("history", "compact_interval"):
            raise ValueError(f"unknown sqlite store option {name!r} "
                             "(known: history, compact_interval)")
        try:
            value = float(values[-1])
        except ValueError:
            raise ValueError(f"sqlite store option {name} must be a number, "
                             f"got {values[-1]!r}") from None
        if value < 0:
            raise ValueError(f"sqlite store option {name} must not be negative")
        options[name] = value
    return options


# scheme -> opener of what follows "scheme://". Add "etcd" here.
OPENERS: dict[str, Opener] = {
    "sqlite": _open_sqlite,
}


async def open_store(url: str) -> Store:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"store URL {url!r} has no scheme: use sqlite:///path")
    opener = OPENERS.get(scheme.lower())
    if opener is None:
        known = ", ".join(f"{s}://" for s in sorted(OPENERS))
        raise ValueError(f"unknown store scheme {scheme!r} in {url!r} (known: {known})")
    return await opener(rest)
