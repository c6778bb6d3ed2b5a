"""The StatefulSet controller: pods with stable names web-0..N-1.

    StatefulSet, Pod or ControllerRevision event ─► key "ns/web" ─► reconcile:
      revisions ─► update revision (the template now), current revision (status)
      pods of the namespace ─► claim ─► by ordinal
      expectations satisfied? ─► plan (plan.py) ─► delete / create
      status ─► written when it changed

A pod is named ``<set>-<ordinal>``, labelled with its revision, pod name and
index, and gets hostname = its name and subdomain = serviceName (its DNS name
under the governing headless Service).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from datetime import UTC, datetime

from corral.api.errors import AlreadyExists, Conflict, NotFound
from corral.client.events import NORMAL, WARNING, EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, OwnedPodEvents, split_key
from corral.controllers.expectations import Expectations
from corral.controllers.history import (
    REVISION_HASH,
    revision_template,
    sync_update_revision,
    truncate_history,
)
from corral.controllers.informers import NAMESPACE, OWNER_UID, SharedInformers
from corral.controllers.owners import claim
from corral.controllers.podcontrol import delete_owned
from corral.controllers.pods import pod_from_template, seconds_until_available
from corral.controllers.statefulset.locality import (
    annotation_patch,
    has_claims,
    observed,
    prefer_node,
    recorded,
)
from corral.controllers.statefulset.plan import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    claim_volumes,
    ordinal_of,
    plan,
    revision_of,
    settings_of,
    stateful_status,
)
from corral.objects import Obj, is_deleting, name_of, namespace_of, spec, status, uid_of

log = logging.getLogger("corral.controllers.statefulset")


class StatefulSetController(Controller):
    name = "statefulset-controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, workers: int = 2) -> None:
        super().__init__(client, informers, recorder, workers=workers)
        self.expectations = Expectations()
        self.sets = informers.get("StatefulSet")
        self.pods = informers.get("Pod")
        self.revisions = informers.get("ControllerRevision")
        self.pod_events = OwnedPodEvents(self, "StatefulSet", self.sets, self.pods,
                                         self.expectations)
        self.sets.add_handler(self.enqueue, lambda old, new: self.enqueue(new),
                              self.pod_events.owner_deleted)

    async def reconcile(self, key: str) -> None:
        sts = self.sets.get_by_key(key)
        if sts is None:
            self.expectations.forget(key)
            return
        namespace, _ = split_key(key)
        owned = await claim(self.client, self.pods.by_index(NAMESPACE, namespace or ""), sts)
        by_ordinal: dict[int, Obj] = {}
        for pod in owned:
            ordinal = ordinal_of(name_of(sts), pod)
            if ordinal is not None:
                by_ordinal[ordinal] = pod
        revisions = self.revisions.by_index(OWNER_UID, uid_of(sts))
        if is_deleting(sts):
            return
        update = await sync_update_revision(self.client, sts, revisions)
        known = {name_of(r): r for r in [*revisions, update]}
        current = str(status(sts).get("currentRevision") or "")
        if current not in known:
            current = name_of(update)
        settings = settings_of(sts, current, name_of(update))
        nodes = observed(sts, owned)
        if self.expectations.satisfied(key):
            todo = plan(by_ordinal, settings)
            await self._delete(key, sts, todo.delete)
            for ordinal, revision in todo.create:
                await self._create(key, sts, ordinal, revision, known, name_of(update),
                                   nodes)
        now = datetime.now(UTC)
        new_status = stateful_status(sts, owned, settings, now)
        await truncate_history(self.client, sts, revisions, {
            revision_of(p) for p in owned} | {new_status["currentRevision"], name_of(update)})
        await self._write_status(key, sts, new_status)
        if nodes != recorded(sts):
            with contextlib.suppress(NotFound):
                await self.client.patch("StatefulSet", name_of(sts), annotation_patch(nodes),
                                        namespace_of(sts))
        min_ready = int(spec(sts).get("minReadySeconds") or 0)
        waits = [w for p in owned if (w := seconds_until_available(p, min_ready, now))]
        if waits:
            self.requeue_after(key, min(waits) + 0.05)

    async def _create(self, key: str, sts: Obj, ordinal: int, revision: str,
                      known: dict[str, Obj], update: str, nodes: dict[str, str]) -> None:
        template = spec(sts).get("template") or {} if revision == update else \
            revision_template(known[revision])
        name = f"{name_of(sts)}-{ordinal}"
        pod = pod_from_template(template, sts, namespace_of(sts), name=name, extra_labels={
            REVISION_HASH: revision, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)})
        pod["spec"]["hostname"] = name
        pod["spec"]["volumes"] = claim_volumes(sts, name, pod["spec"].get("volumes") or [])
        if has_claims(sts) and name in nodes:
            prefer_node(pod, nodes[name])  # where its claims' directories are
        if spec(sts).get("serviceName"):
            pod["spec"]["subdomain"] = spec(sts)["serviceName"]
        self.expectations.expect_creations(key, 1)
        try:
            await self.client.create(pod)
        except AlreadyExists:
            self.expectations.creation_observed(key)  # its namesake is still going
            return
        except Exception as err:
            self.expectations.creation_observed(key)
            self.emit(sts, WARNING, "FailedCreate",
                      f"create Pod {name} in StatefulSet {name_of(sts)} failed error: {err}")
            raise
        self.emit(sts, NORMAL, "SuccessfulCreate",
                  f"create Pod {name} in StatefulSet {name_of(sts)} successful")

    async def _delete(self, key: str, sts: Obj, victims: list[Obj]) -> None:
        def deleted(pod: Obj) -> str:
            return f"delete Pod {name_of(pod)} in StatefulSet {name_of(sts)} successful"
        await delete_owned(self, self.expectations, key, sts, victims, deleted)

    async def _write_status(self, key: str, sts: Obj, new_status: Obj) -> None:
        if new_status == status(sts):
            return
        fresh = copy.deepcopy(sts)
        fresh["status"] = new_status
        try:
            await self.client.update_status(fresh)
        except NotFound:
            return
        except Conflict:
            self.enqueue_key(key)
