"""``open_store(url)``: the Store a URL names.

    sqlite:///abs/path/state.db   SqliteStore on that file (sqlite://rel/path: relative)
        ?history=N&compact_interval=S   keep N revisions of history, compact every S s
        &history_seconds=A              and no history older than A s (default 300)
    etcd://h1:2379,h2:2379        EtcdStore on those members (any one up with a quorum serves)
        ?prefix=/p&timeout=S&history=N&compact_interval=S&history_seconds=A
                                  keys under /p (default none: /registry/... as kube-apiserver),
                                  S seconds per call (default 5), keep N revisions of history,
                                  compact every S s (default 300)
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
    return await SqliteStore.open(path, history=history, compact_interval=interval,
                                  history_seconds=options.get("history_seconds", 300.0))


def _sqlite_options(query: str) -> dict[str, float]:
    return _numbers("sqlite", _options("sqlite", query, ("history", "compact_interval",
                                                         "history_seconds")))


async def _open_etcd(rest: str) -> Store:
    from corral.store.etcd import DEFAULT_TIMEOUT, EtcdStore

    endpoints, _, query = rest.partition("?")
    endpoints = endpoints.rstrip("/")
    options = _options("etcd", query, ("prefix", "timeout", "history", "compact_interval",
                                       "history_seconds"))
    prefix = options.pop("prefix", "")
    if prefix and not prefix.startswith("/"):
        raise ValueError(f"etcd store option prefix must start with '/', got {prefix!r}")
    numbers = _numbers("etcd", options)
    if numbers.get("timeout", 1.0) <= 0:
        raise ValueError("etcd store option timeout must be more than 0 seconds")
    return await EtcdStore.open(
        endpoints, root=prefix.rstrip("/"), timeout=numbers.get("timeout", DEFAULT_TIMEOUT),
        history=int(numbers.get("history", 10000)),
        compact_interval=numbers.get("compact_interval", 300.0),
        history_seconds=numbers.get("history_seconds", 300.0))


def _options(scheme: str, query: str, known: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name not in known:
            raise ValueError(f"unknown {scheme} store option {name!r} "
                             f"(known: {', '.join(known)})")
        options[name] = values[-1]
    return options


def _numbers(scheme: str, options: dict[str, str]) -> dict[str, float]:
    numbers: dict[str, float] = {}
    for name, text in options.items():
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{scheme} store option {name} must be a number, "
                             f"got {text!r}") from None
        if value < 0:
            raise ValueError(f"{scheme} store option {name} must not be negative")
        numbers[name] = value
    return numbers


# scheme -> opener of what follows "scheme://".
OPENERS: dict[str, Opener] = {
    "sqlite": _open_sqlite,
    "etcd": _open_etcd,
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
