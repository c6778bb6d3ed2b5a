"""One sync of a Deployment: its ReplicaSets sorted into the new one (same
template) and the old ones, the writes a rollout step makes, and the status.

    Rollout(deployment, owned ReplicaSets)
      new_replica_set(create)   find by template (reusing an old RS after an undo
                                gives it the next revision) or create "<name>-<hash>"
      scale(rs, n)              PUT spec.replicas (+ desired/max-replicas annotations),
                                Event ScalingReplicaSet
      sync_scale()              paused or a scaling event: resize proportionally
      cleanup()                 delete old, empty RSes beyond revisionHistoryLimit
      sync_status()             counts + Available + Progressing → status, and a
                                requeue for the progress deadline
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime

from corral.api.errors import AlreadyExists, Conflict, NotFound
from corral.client.events import NORMAL
from corral.client.http import Client
from corral.controllers.deployment.arithmetic import RSView, new_rs_target, resolve_fenceposts
from corral.controllers.deployment.progress import (
    FOUND_NEW_RS,
    NEW_RS_CREATED,
    calculate_status,
    condition,
    deadline_left,
    is_complete,
    paused_conditions,
    rollout_conditions,
    set_condition,
)
from corral.controllers.deployment.rollback import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    POD_TEMPLATE_HASH,
    REVISION,
    max_revision,
    normalized_template,
    reused_annotations,
    revision_of,
    templates_equal,
    with_deployment_annotations,
)
from corral.controllers.owners import owner_reference
from corral.objects import Obj, is_deleting, meta, spec, status, uid_of

SAFE_ALPHABET = "bcdfghjkmnpqrstvwxz2456789"
Emit = Callable[[Obj, str, str, str], None]
PodsOf = Callable[[Obj], list[Obj]]


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """A short, stable name suffix for a template (FNV-32a, as Kubernetes, over
    the canonical JSON of the template without its hash label), in the
    vowel-free alphabet Kubernetes uses so it never spells a word."""
    data = json.dumps(normalized_template(template), sort_keys=True, separators=(",", ":"))
    if collision_count:
        data += str(collision_count)
    value = fnv32a(data.encode())
    out = []
    for _ in range(10):
        value, digit = divmod(value, len(SAFE_ALPHABET))
        out.append(SAFE_ALPHABET[digit])
        if value == 0:
            break
    return "".join(out)


def proportional_sizes(sizes: list[int], delta: int) -> list[int]:
    """Spread ``delta`` replicas over ReplicaSets in proportion to their sizes;
    the remainder goes to the first (callers put the newest or largest first).
    Never below zero."""
    total = sum(sizes)
    if not sizes or delta == 0:
        return list(sizes)
    if total == 0:
        return [max(sizes[0] + delta, 0), *sizes[1:]]
    shares = [int(delta * s / total) for s in sizes]
    shares[0] += delta - sum(shares)
    out = [max(s + d, 0) for s, d in zip(sizes, shares, strict=True)]
    shortfall = (total + delta) - sum(out)  # a share clipped at zero
    for i in range(len(out)):
        if shortfall >= 0:
            break
        take = min(out[i], -shortfall)
        out[i] -= take
        shortfall += take
    return out


def _created(obj: Obj) -> str:
    return str(meta(obj).get("creationTimestamp") or "")


class Rollout:
    def __init__(self, client: Client, deployment: Obj, rses: list[Obj], emit: Emit,
                 pods_of: PodsOf) -> None:
        self.client = client
        self.d = deployment
        self.emit = emit
        self.pods_of = pods_of
        self.now = datetime.now(UTC)
        template = spec(deployment).get("template") or {}
        matching = sorted((rs for rs in rses if templates_equal(
            spec(rs).get("template") or {}, template)), key=_created)
        self.new: Obj | None = matching[0] if matching else None
        self.old = sorted((rs for rs in rses if rs is not self.new), key=_created)
        self._progress_note: tuple[str, str] | None = None
        self.requeue: float | None = None  # seconds, for the progress deadline

    # -- reading ----------------------------------------------------------------

    @property
    def spec(self) -> Obj:
        return spec(self.d)

    @property
    def replicas(self) -> int:
        return int(self.spec.get("replicas", 1))

    @property
    def name(self) -> str:
        return str(meta(self.d).get("name"))

    def all_rs(self) -> list[Obj]:
        return [*self.old, *([self.new] if self.new is not None else [])]

    def fenceposts(self) -> tuple[int, int]:
        strategy = self.spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            return 0, 0
        rolling = strategy.get("rollingUpdate") or {}
        return resolve_fenceposts(rolling.get("maxSurge", "25%"),
                                  rolling.get("maxUnavailable", "25%"), self.replicas)

    @staticmethod
    def view(rs: Obj) -> RSView:
        return RSView(str(meta(rs).get("name")), int(spec(rs).get("replicas", 0)),
                      int(status(rs).get("availableReplicas") or 0))

    def status(self) -> Obj:
        return calculate_status(self.d, self.all_rs(), self.new, self.fenceposts()[1], self.now)

    def complete(self) -> bool:
        return is_complete(self.d, self.status())

    def is_scaling_event(self) -> bool:
        """A replicas change outside a template change: some active RS was sized
        for a different deployment size."""
        for rs in self.all_rs():
            if int(spec(rs).get("replicas", 0)) == 0:
                continue
            desired = ((meta(rs).get("annotations") or {}).get(DESIRED_REPLICAS))
            if desired is not None and desired != str(self.replicas):
                return True
        return False

    # -- the new ReplicaSet -------------------------------------------------------

    async def new_replica_set(self, create: bool) -> Obj | None:
        next_revision = max_revision(self.old) + 1
        if self.new is not None:
            if revision_of(self.new) < next_revision or self._min_ready_differs(self.new) \
                    or self._annotations_differ(self.new):
                self.new = await self._update_rs(self.new, lambda rs: self._sync_rs(
                    rs, next_revision))
            if condition(status(self.d).get("conditions") or [],
                         "Progressing") is None:
                name = meta(self.new)["name"]
                self._progress_note = (FOUND_NEW_RS, f'Found new replica set "{name}"')
            await self._annotate_revision(max(revision_of(self.new), next_revision))
            return self.new
        if not create:
            return None
        self.new = await self._create_rs(next_revision)
        await self._annotate_revision(next_revision)
        return self.new

    def _min_ready_differs(self, rs: Obj) -> bool:
        return spec(rs).get("minReadySeconds") != self.spec.get("minReadySeconds")

    def _annotations_differ(self, rs: Obj) -> bool:
        return with_deployment_annotations(self.d, rs) != (meta(rs).get("annotations") or {})

    def _sync_rs(self, rs: Obj, next_revision: int) -> None:
        if revision_of(rs) < next_revision:
            meta(rs)["annotations"] = reused_annotations(rs, next_revision)
        meta(rs)["annotations"] = with_deployment_annotations(self.d, rs)
        if self.spec.get("minReadySeconds") is None:
            spec(rs).pop("minReadySeconds", None)
        else:
            rs["spec"]["minReadySeconds"] = self.spec["minReadySeconds"]

    def _new_rs_body(self, revision: int, replicas: int) -> Obj:
        collisions = int(status(self.d).get("collisionCount") or 0)
        template = copy.deepcopy(self.spec.get("template") or {})
        pod_hash = template_hash(template, collisions)
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), POD_TEMPLATE_HASH: pod_hash}
        selector = copy.deepcopy(self.spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}),
                                   POD_TEMPLATE_HASH: pod_hash}
        surge = self.fenceposts()[0]
        spec: Obj = {"replicas": replicas, "selector": selector, "template": template}
        if self.spec.get("minReadySeconds") is not None:
            spec["minReadySeconds"] = self.spec["minReadySeconds"]
        return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
            "name": f"{self.name}-{pod_hash}", "namespace": meta(self.d).get("namespace"),
            "labels": dict(tmeta["labels"]), "ownerReferences": [owner_reference(self.d)],
            "annotations": with_deployment_annotations(self.d, {"metadata": {"annotations": {
                REVISION: str(revision), DESIRED_REPLICAS: str(self.replicas),
                MAX_REPLICAS: str(self.replicas + surge)}}})}, "spec": spec}

    def _initial_replicas(self) -> int:
        if (self.spec.get("strategy") or {}).get("type") == "Recreate":
            return self.replicas
        empty = RSView("", 0, 0)
        views = [self.view(rs) for rs in self.old] + [empty]
        return new_rs_target(self.replicas, self.fenceposts()[0], views, empty)

    async def _create_rs(self, revision: int) -> Obj:
        body = self._new_rs_body(revision, self._initial_replicas())
        name = body["metadata"]["name"]
        try:
            created = await self.client.create(body)
        except AlreadyExists:
            existing = await self.client.get("ReplicaSet", name, meta(self.d).get("namespace"))
            ref = next((r for r in meta(existing).get("ownerReferences") or []
                        if r.get("controller")), None)
            same = templates_equal(spec(existing).get("template") or {},
                                   self.spec.get("template") or {})
            if same and ref is not None and ref.get("uid") == uid_of(self.d):
                return existing  # ours: the cache had not shown it yet
            await self._bump_collision_count()
            raise Conflict(f"replica set {name} exists with another template: "
                           "collisionCount bumped, retrying") from None
        replicas = int(created["spec"].get("replicas", 0))
        self._progress_note = (NEW_RS_CREATED, f'Created new replica set "{name}"')
        if replicas > 0:
            self.emit(self.d, NORMAL, "ScalingReplicaSet",
                      f"Scaled up replica set {name} from 0 to {replicas}")
        return created

    async def _bump_collision_count(self) -> None:
        fresh = copy.deepcopy(self.d)
        status = fresh.setdefault("status", {})
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        await self.client.update_status(fresh)

    async def _annotate_revision(self, revision: int) -> None:
        annotations = meta(self.d).get("annotations") or {}
        if annotations.get(REVISION) == str(revision):
            return
        fresh = copy.deepcopy(self.d)
        meta(fresh)["annotations"] = {**annotations, REVISION: str(revision)}
        self.d = await self.client.update(fresh)

    # -- writes ---------------------------------------------------------------------

    async def _update_rs(self, rs: Obj, change: Callable[[Obj], None]) -> Obj:
        fresh = copy.deepcopy(rs)
        change(fresh)
        written = await self.client.update(fresh)
        self._replace(rs, written)
        return written

    def _replace(self, old: Obj, new: Obj) -> None:
        if self.new is old:
            self.new = new
        self.old = [new if rs is old else rs for rs in self.old]

    async def scale(self, rs: Obj, replicas: int) -> Obj:
        before = int(spec(rs).get("replicas", 0))
        surge = self.fenceposts()[0]

        def resize(fresh: Obj) -> None:
            fresh["spec"]["replicas"] = replicas
            meta(fresh)["annotations"] = {**(meta(fresh).get("annotations") or {}),
                                          DESIRED_REPLICAS: str(self.replicas),
                                          MAX_REPLICAS: str(self.replicas + surge)}

        written = await self._update_rs(rs, resize)
        if before != replicas:
            direction = "up" if replicas > before else "down"
            self.emit(self.d, NORMAL, "ScalingReplicaSet",
                      f"Scaled {direction} replica set {meta(rs)['name']} from {before} "
                      f"to {replicas}")
        return written

    async def sync_scale(self) -> None:
        """Paused, or replicas changed: size the ReplicaSets without rolling."""
        active = [rs for rs in self.all_rs() if int(spec(rs).get("replicas", 0))]
        if len(active) <= 1:
            target = active[0] if active else (self.new or (self.old[-1] if self.old else None))
            if target is not None and int(spec(target).get("replicas", 0)) \
                    != self.replicas:
                await self.scale(target, self.replicas)
            return
        if self.new is not None and self.view(self.new).replicas == self.replicas \
                and self.view(self.new).available == self.replicas:
            for rs in self.old:
                if int(spec(rs).get("replicas", 0)):
                    await self.scale(rs, 0)
            return
        ordered = sorted(active, key=lambda rs: (self.view(rs).replicas, _created(rs)),
                         reverse=True)
        sizes = [self.view(rs).replicas for rs in ordered]
        allowed = self.replicas + self.fenceposts()[0]
        for rs, size in zip(ordered, proportional_sizes(sizes, allowed - sum(sizes)),
                            strict=True):
            if size != self.view(rs).replicas:
                await self.scale(rs, size)

    async def cleanup(self) -> None:
        limit = self.spec.get("revisionHistoryLimit")
        if limit is None:
            return
        empty = [rs for rs in self.old if not is_deleting(rs)
                 and int(spec(rs).get("replicas", 0)) == 0
                 and int(status(rs).get("replicas") or 0) == 0]
        empty.sort(key=revision_of)
        for rs in empty[:max(len(empty) - int(limit), 0)]:
            try:
                await self.client.delete("ReplicaSet", meta(rs)["name"], meta(rs).get("namespace"),
                                         preconditions={"uid": uid_of(rs)})
            except NotFound:
                pass

    # -- status ----------------------------------------------------------------------

    async def sync_status(self, rollout: bool = True) -> None:
        status = self.status()
        if self._progress_note is not None:
            reason, message = self._progress_note
            status["conditions"] = set_condition(status["conditions"], "Progressing", "True",
                                                 reason, message, self.now)
        new_name = str(meta(self.new)["name"]) if self.new is not None else ""
        if rollout and self.new is not None:
            status["conditions"] = rollout_conditions(self.d, status, new_name, self.now)
        left = deadline_left(self.d, status, self.now)
        if left is not None and not is_complete(self.d, status):
            self.requeue = max(left, 0.0) + 0.5
        await self._write_status(status)

    async def sync_paused_condition(self) -> None:
        conditions = paused_conditions(self.d, self.now)
        if conditions != (status(self.d).get("conditions") or []):
            fresh = copy.deepcopy(self.d)
            fresh.setdefault("status", {})["conditions"] = conditions
            self.d = await self.client.update_status(fresh)

    async def _write_status(self, status: Obj) -> None:
        if status == (self.d.get("status") or {}):
            return
        fresh = copy.deepcopy(self.d)
        fresh["status"] = status
        self.d = await self.client.update_status(fresh)
