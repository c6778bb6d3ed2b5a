"""Resource usage of the node's pods, in the kubelet's /stats/summary shape.

The runtime reports cumulative CPU time and current memory per instance; a rate
(usageNanoCores) needs two samples, so the collector keeps a baseline sample of
each instance and, when it has none usable, takes a second one a moment later.
The baseline moves on only once it is RATE_WINDOW_SECONDS old: reads in quick
succession (kubectl top right after an autoscaler's poll) then still measure
over a real interval rather than the few milliseconds between them, which
coarse CPU counters would report as zero. The node's figures are the sum of its pods (several agents may
share a host, each with its slice).

    {"node": {"nodeName", "cpu": {time, usageNanoCores, usageCoreNanoSeconds,
                                  windowSeconds (what the rate was measured over)},
              "memory": {time, workingSetBytes, usageBytes}},
     "pods": [{"podRef": {name, namespace, uid}, "cpu": ..., "memory": ...,
               "containers": [{"name", "cpu": ..., "memory": ...}]}]}
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from corral.agent.pods import PodManager
from corral.agent.runtime.base import ResourceUsage
from corral.objects import Obj, now_rfc3339

SAMPLE_GAP_SECONDS = 0.25
SAMPLE_MAX_AGE_SECONDS = 60.0
RATE_WINDOW_SECONDS = 10.0  # as metrics-server's scrape interval, roughly


@dataclass(frozen=True)
class Usage:
    cpu_ns: int  # cumulative
    nano_cores: int  # rate over the last interval
    memory_bytes: int
    window: float = 0.0  # seconds the rate was measured over

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpu_ns + other.cpu_ns, self.nano_cores + other.nano_cores,
                     self.memory_bytes + other.memory_bytes, max(self.window, other.window))


ZERO = Usage(0, 0, 0)


def _rate(old: ResourceUsage | None, new: ResourceUsage) -> int:
    if old is None or new.timestamp <= old.timestamp:
        return 0
    return max(int((new.cpu_usage_ns - old.cpu_usage_ns) / (new.timestamp - old.timestamp)), 0)


def _usable(base: ResourceUsage | None, new: ResourceUsage) -> bool:
    """A baseline a rate can be measured from: there, and not a moment ago."""
    return base is not None and new.timestamp - base.timestamp >= SAMPLE_GAP_SECONDS


def _aged(base: ResourceUsage | None, new: ResourceUsage) -> bool:
    return base is None or new.timestamp - base.timestamp >= RATE_WINDOW_SECONDS


def _window(old: ResourceUsage | None, new: ResourceUsage) -> float:
    return max(new.timestamp - old.timestamp, 0.0) if old is not None else 0.0


def _blocks(usage: Usage, stamp: str) -> Obj:
    return {"cpu": {"time": stamp, "usageNanoCores": usage.nano_cores,
                    "usageCoreNanoSeconds": usage.cpu_ns,
                    "windowSeconds": round(usage.window, 3)},
            "memory": {"time": stamp, "workingSetBytes": usage.memory_bytes,
                       "usageBytes": usage.memory_bytes}}


class StatsCollector:
    def __init__(self, pods: PodManager, node_name: str) -> None:
        self.pods = pods
        self.node_name = node_name
        self._last: dict[str, ResourceUsage] = {}

    async def _sample(self) -> dict[str, ResourceUsage]:
        runtime = self.pods.ctx.runtime
        out: dict[str, ResourceUsage] = {}
        for worker in list(self.pods.workers.values()):
            for track in worker.tracks:
                if track.current is not None and track.current.running:
                    cid = track.current.container_id
                    # an instance may be removed between listing and reading it
                    with contextlib.suppress(KeyError, OSError):
                        usage = await runtime.usage(cid)
                        if usage is not None:
                            out[cid] = usage
        return out

    async def usage_by_instance(self) -> dict[str, Usage]:
        now = time.time()
        base = {cid: u for cid, u in self._last.items()
                if now - u.timestamp < SAMPLE_MAX_AGE_SECONDS}
        sample = await self._sample()
        if any(not _usable(base.get(cid), u) for cid, u in sample.items()):
            await asyncio.sleep(SAMPLE_GAP_SECONDS)
            base = {**base, **{cid: u for cid, u in sample.items()
                               if not _usable(base.get(cid), u)}}
            sample = await self._sample()
        self._last = {cid: u if _aged(base.get(cid), u) else base[cid]
                      for cid, u in sample.items()}
        return {cid: Usage(u.cpu_usage_ns, _rate(base.get(cid), u), u.memory_bytes,
                           _window(base.get(cid), u))
                for cid, u in sample.items()}

    async def summary(self) -> Obj:
        usage = await self.usage_by_instance()
        stamp = now_rfc3339()
        pods, node_total = [], ZERO
        for worker in list(self.pods.workers.values()):
            containers, pod_total = [], ZERO
            for track in worker.tracks:
                cid = track.current.container_id if track.current else None
                if cid in usage:
                    containers.append({"name": track.name, **_blocks(usage[cid], stamp)})
                    pod_total = pod_total + usage[cid]
            node_total = node_total + pod_total
            pods.append({"podRef": {"name": worker.name, "namespace": worker.namespace,
                                    "uid": worker.uid},
                         **_blocks(pod_total, stamp), "containers": containers})
        return {"node": {"nodeName": self.node_name, **_blocks(node_total, stamp)},
                "pods": pods}

