"""RollingUpdate: the new ReplicaSet grows and the old ones shrink, never
above replicas + maxSurge pods, never below replicas - maxUnavailable available.
The arithmetic (arithmetic.py) is pure; this step applies it through the
Rollout (sync.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral.controllers.deployment.arithmetic import new_rs_target, plan_old

if TYPE_CHECKING:
    from corral.controllers.deployment.sync import Rollout


async def rollout_rolling(r: Rollout) -> None:
    new_rs = await r.new_replica_set(create=True)
    assert new_rs is not None
    replicas = r.replicas
    surge, unavailable = r.fenceposts()
    new_view = r.view(new_rs)
    all_views = [r.view(rs) for rs in r.all_rs()]
    if new_view.replicas > replicas:
        target = replicas
    else:
        target = new_rs_target(replicas, surge, all_views, new_view)
    if target != new_view.replicas:
        await r.scale(new_rs, target)
        return await r.sync_status()
    old_views = [r.view(rs) for rs in r.old]
    planned = plan_old(replicas, unavailable, old_views, new_view)
    changed = False
    for rs, before, after in zip(r.old, old_views, planned, strict=True):
        if after.replicas != before.replicas:
            await r.scale(rs, after.replicas)
            changed = True
    if not changed and r.complete():
        await r.cleanup()
    await r.sync_status()
