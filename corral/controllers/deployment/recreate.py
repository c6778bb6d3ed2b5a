"""Recreate: every old pod goes first, then the new ReplicaSet comes up.

    old RSes → 0 ─► wait until none of their pods still runs (terminating
    counts as running) ─► create / scale the new RS to replicas ─► clean up
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral.controllers.pods import is_finished
from corral.objects import spec, status

if TYPE_CHECKING:
    from corral.controllers.deployment.sync import Rollout


async def rollout_recreate(r: Rollout) -> None:
    new_rs = await r.new_replica_set(create=False)
    scaled = False
    for rs in r.old:
        if int(spec(rs).get("replicas", 0)) != 0:
            await r.scale(rs, 0)
            scaled = True
    if scaled or old_pods_running(r):
        return await r.sync_status()
    if new_rs is None:
        new_rs = await r.new_replica_set(create=True)
        assert new_rs is not None
    if int(spec(new_rs).get("replicas", 0)) != r.replicas:
        await r.scale(new_rs, r.replicas)
    if r.complete():
        await r.cleanup()
    await r.sync_status()


def old_pods_running(r: Rollout) -> bool:
    for rs in r.old:
        if int(status(rs).get("replicas", 0)) > 0:
            return True
        if any(not is_finished(p) for p in r.pods_of(rs)):
            return True
    return False
