"""Dropping the connections of endpoints that left a Service (as kube-proxy does).

A connection DNATed to an endpoint keeps its conntrack entry after the endpoint
leaves the table, so it would go on reaching the old endpoint, or hang if that
is gone. Deleting the entry makes the client's next segment a new flow: DNATed to
a remaining endpoint (which knows no such connection and resets it) or reset by
the no-endpoint rule, so the client fails fast.

One `conntrack -L` per departed endpoint lists its established flows (filtered
on the reply tuple; TIME_WAIT entries, by far the most on a busy host, keep no
client waiting); only flows that match a departed (frontend, endpoint) pair are
deleted, each by its exact tuple. One `conntrack -D` per departed pair instead
would cost thousands of processes when a thousand Services that share their
endpoints go away.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from corral.proxy.nftrules import Stale

log = logging.getLogger(__name__)

# Nothing waits on these any more: deleting them changes nothing for anyone.
_FINISHED = frozenset({"TIME_WAIT", "CLOSE"})


@dataclass(frozen=True)
class Flow:
    """One TCP conntrack entry: its original tuple and where replies come from."""

    state: str
    src: str
    dst: str
    sport: int
    dport: int
    reply_src: str
    reply_sport: int

    @property
    def dnated(self) -> bool:
        return (self.reply_src, self.reply_sport) != (self.dst, self.dport)


def parse_flows(listing: str) -> list[Flow]:
    """Flows of `conntrack -L -p tcp` output (other lines are skipped)."""
    flows: list[Flow] = []
    for line in listing.splitlines():
        words = line.split()
        if "tcp" not in words:
            continue
        pairs = [w.split("=", 1) for w in words if "=" in w]
        values: dict[str, list[str]] = {}
        for key, value in pairs:
            values.setdefault(key, []).append(value)
        try:
            state = words[words.index("tcp") + 3]
            flows.append(Flow(state, values["src"][0], values["dst"][0],
                              int(values["sport"][0]), int(values["dport"][0]),
                              values["src"][1], int(values["sport"][1])))
        except (KeyError, IndexError, ValueError):
            continue
    return flows


def to_drop(flows: Iterable[Flow], stale: Iterable[Stale]) -> list[Flow]:
    """The live DNATed flows from a departed pair's frontend to its endpoint."""
    by_endpoint: dict[tuple[str, int], list[Stale]] = {}
    for s in stale:
        by_endpoint.setdefault(s.endpoint, []).append(s)
    return [f for f in flows
            if f.state not in _FINISHED and f.dnated
            and any(s.frontend_port == f.dport and s.frontend_ip in (None, f.dst)
                    for s in by_endpoint.get((f.reply_src, f.reply_sport), ()))]


def drop_connections(stale: Sequence[Stale], conntrack: str = "conntrack") -> int:
    """Delete the conntrack entries of connections to departed endpoints; how many."""
    flows: list[Flow] = []
    for ip, port in sorted({s.endpoint for s in stale}):
        listed = _run([conntrack, "-L", "-p", "tcp", "--state", "ESTABLISHED",
                       "--reply-src", ip, "--reply-port-src", str(port)])
        flows += parse_flows(listed.stdout) if listed is not None else []
    dropped = 0
    for flow in to_drop(flows, stale):
        done = _run([conntrack, "-D", "-p", "tcp", "--orig-src", flow.src, "--orig-dst",
                     flow.dst, "--sport", str(flow.sport), "--dport", str(flow.dport)])
        dropped += done is not None and done.returncode == 0
    return dropped


def _run(args: list[str]) -> subprocess.CompletedProcess[str] | None:
    """Exit status 1 means "0 flow entries" (a flow that ended meanwhile): not an error."""
    done = subprocess.run(args, check=False, capture_output=True, text=True, timeout=30)
    if done.returncode not in (0, 1):
        log.warning("conntrack failed args=%s error=%s", args[1:], done.stderr.strip()[:500])
        return None
    return done
