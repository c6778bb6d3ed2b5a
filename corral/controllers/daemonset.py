"""The DaemonSet controller: one pod on every node that fits.

    DaemonSet, Pod or Node event ─► key "ns/ds" ─► reconcile:
      nodes that should run it: the template's nodeSelector matches and its
        tolerations (plus those Kubernetes gives every daemon pod) cover the
        node's NoSchedule/NoExecute taints
      pods (claimed as a ReplicaSet claims them) by node
      expectations satisfied? ─ no ─► only status
      create a pod on each such node without one, bound to the node
        (spec.nodeName, as the DaemonSet controller did before kube-scheduler
        placed daemon pods: a daemon pod belongs on that node or nowhere)
      delete pods on nodes that should not run one, and a node's extras
      RollingUpdate: pods of an older template generation are deleted, at most
        maxUnavailable daemon pods unavailable at once; OnDelete: left alone
      status: desired, current, misscheduled, ready, updated, available

A pod's template generation is its ``pod-template-generation`` label (what
Kubernetes' DaemonSets labelled pods with before ControllerRevisions).
"""

from __future__ import annotations

import copy
import logging
import math
from datetime import UTC, datetime

from corral.api.errors import NotFound
from corral.client.events import NORMAL, EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, split_key
from corral.controllers.expectations import Expectations
from corral.controllers.informers import NAMESPACE, SharedInformers
from corral.controllers.owners import claim, controller_ref
from corral.controllers.pods import is_active, is_available, is_ready, pod_from_template
from corral.controllers.replicaset import create_pods, delete_pods
from corral.objects import Obj, is_deleting, meta, uid_of

log = logging.getLogger("corral.controllers.daemonset")

GENERATION_LABEL = "pod-template-generation"
# What Kubernetes adds to every daemon pod: it stays through node trouble.
DAEMON_TOLERATIONS: tuple[Obj, ...] = tuple(
    {"key": f"node.kubernetes.io/{key}", "operator": "Exists", "effect": effect}
    for key, effect in (("not-ready", "NoExecute"), ("unreachable", "NoExecute"),
                        ("disk-pressure", "NoSchedule"), ("memory-pressure", "NoSchedule"),
                        ("pid-pressure", "NoSchedule"), ("unschedulable", "NoSchedule")))


def tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration.get("key") == taint.get("key")
    return (toleration.get("key") == taint.get("key")
            and (toleration.get("value") or "") == (taint.get("value") or ""))


def should_run(ds: Obj, node: Obj) -> bool:
    """Whether the node is one of the DaemonSet's: selector matched, taints tolerated."""
    pod_spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    labels = meta(node).get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    tolerations = [*(pod_spec.get("tolerations") or []), *DAEMON_TOLERATIONS]
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(
                tolerates(t, taint) for t in tolerations):
            return False
    return True


def max_unavailable(ds: Obj, desired: int) -> int:
    rolling = (((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate")
               or {})
    value = rolling.get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        return max(math.floor(desired * int(value[:-1]) / 100), 1)
    return max(int(value), 1)


def generation(ds: Obj) -> str:
    return str(meta(ds).get("generation") or 1)


def is_updated(pod: Obj, ds: Obj) -> bool:
    return (meta(pod).get("labels") or {}).get(GENERATION_LABEL) == generation(ds)


def node_of(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def daemon_status(ds: Obj, wanted: set[str], by_node: dict[str, list[Obj]],
                  now: datetime) -> Obj:
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    first = {node: pods[0] for node, pods in by_node.items() if pods}
    mine = [pod for node, pod in first.items() if node in wanted]
    available = sum(1 for p in mine if is_available(p, min_ready, now))
    return {**(ds.get("status") or {}),
            "desiredNumberScheduled": len(wanted),
            "currentNumberScheduled": len(mine),
            "numberMisscheduled": sum(1 for node in first if node not in wanted),
            "numberReady": sum(1 for p in mine if is_ready(p)),
            "updatedNumberScheduled": sum(1 for p in mine if is_updated(p, ds)),
            "numberAvailable": available,
            "numberUnavailable": len(wanted) - available,
            "observedGeneration": int(meta(ds).get("generation") or 1)}


class DaemonSetController(Controller):
    name = "daemonset-controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, workers: int = 2) -> None:
        super().__init__(client, informers, recorder, workers=workers)
        self.expectations = Expectations()
        self.daemonsets = informers.get("DaemonSet")
        self.pods = informers.get("Pod")
        self.nodes = informers.get("Node")
        self.daemonsets.add_handler(self.enqueue, lambda old, new: self.enqueue(new),
                                    self.enqueue)
        self.pods.add_handler(self._pod_added, lambda old, new: self._pod_changed(new),
                              self._pod_deleted)
        everything = self._enqueue_every_daemonset
        self.nodes.add_handler(everything, lambda old, new: everything(new), everything)

    # -- events ------------------------------------------------------------------

    def _enqueue_every_daemonset(self, _node: Obj) -> None:
        self.enqueue_all(self.daemonsets)

    def _owner_key(self, pod: Obj) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "DaemonSet":
            return None
        return f"{meta(pod).get('namespace')}/{ref.get('name')}"

    def _pod_added(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue_key(key)

    def _pod_changed(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.enqueue_key(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, uid_of(pod))
            self.enqueue_key(key)

    # -- reconcile -----------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        ds = self.daemonsets.get_by_key(key)
        if ds is None:
            self.expectations.forget(key)
            return
        namespace, _ = split_key(key)
        owned = await claim(self.client, self.pods.by_index(NAMESPACE, namespace or ""), ds)
        by_node: dict[str, list[Obj]] = {}
        for pod in owned:
            if is_active(pod) and node_of(pod):
                by_node.setdefault(node_of(pod), []).append(pod)
        nodes = {str(meta(n).get("name")): n for n in self.nodes.list()}
        wanted = {name for name, node in nodes.items() if should_run(ds, node)}
        if self.expectations.satisfied(key) and not is_deleting(ds):
            await self._manage(key, ds, wanted, by_node)
        await self._write_status(ds, wanted, by_node)

    async def _manage(self, key: str, ds: Obj, wanted: set[str],
                      by_node: dict[str, list[Obj]]) -> None:
        missing = sorted(wanted - set(by_node))
        doomed = [p for node, pods in by_node.items()
                  for p in (pods if node not in wanted else pods[1:])]
        doomed += self._rolled_out(ds, wanted, by_node, len(missing))
        if missing:
            await self._create(key, ds, missing)
        if doomed:
            await self._delete(key, ds, doomed)

    def _rolled_out(self, ds: Obj, wanted: set[str], by_node: dict[str, list[Obj]],
                    missing: int) -> list[Obj]:
        """Old-generation pods to replace now, within maxUnavailable."""
        strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type")
        if strategy == "OnDelete":
            return []
        now = datetime.now(UTC)
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        current = [pods[0] for node, pods in by_node.items() if node in wanted and pods]
        old = [p for p in current if not is_updated(p, ds)]
        unavailable = missing + sum(1 for p in current if not is_available(p, min_ready, now))
        budget = max_unavailable(ds, len(wanted)) - unavailable
        old_unavailable = [p for p in old if not is_available(p, min_ready, now)]
        old_available = [p for p in old if is_available(p, min_ready, now)]
        return old_unavailable + old_available[:max(budget, 0)]

    async def _create(self, key: str, ds: Obj, nodes: list[str]) -> None:
        namespace = str(meta(ds).get("namespace"))
        template = (ds.get("spec") or {}).get("template") or {}
        pods = []
        for node in nodes:
            pod = pod_from_template(template, ds, namespace,
                                    extra_labels={GENERATION_LABEL: generation(ds)})
            spec = pod["spec"]
            spec["nodeName"] = node
            spec["tolerations"] = [*(spec.get("tolerations") or []),
                                   *copy.deepcopy(DAEMON_TOLERATIONS)]
            pods.append(pod)
        self.expectations.expect_creations(key, len(pods))
        created, err = await create_pods(self.client, pods)
        for _ in range(len(pods) - created):
            self.expectations.creation_observed(key)
        if created:
            self.emit(ds, NORMAL, "SuccessfulCreate",
                      f"Created {created} daemon pod{'s' if created > 1 else ''}")
        if err is not None:
            raise err

    async def _delete(self, key: str, ds: Obj, pods: list[Obj]) -> None:
        deleted, err = await delete_pods(self.client, self.expectations, key, pods)
        for pod in deleted:
            self.emit(ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta(pod)['name']}")
        if err is not None:
            raise err

    async def _write_status(self, ds: Obj, wanted: set[str],
                            by_node: dict[str, list[Obj]]) -> None:
        status = daemon_status(ds, wanted, by_node, datetime.now(UTC))
        if status == (ds.get("status") or {}):
            return
        fresh = copy.deepcopy(ds)
        fresh["status"] = status
        try:
            await self.client.update_status(fresh)
        except NotFound:
            pass
