"""The endpointslice controller (Kubernetes' endpointslice-controller): the
EndpointSlices of every Service with a selector, from its pods.

    Service / Pod / our EndpointSlice event ─► key "ns/service" ─► reconcile:
      Service gone              nothing: its slices are owned by it, the
                                garbage collector deletes them with it
      no selector, ExternalName our slices deleted (a selector-less Service's
                                slices are its user's, or mirrored from its
                                Endpoints by the mirroring controller)
      otherwise                 plan.plan_slices over the selected pods and the
                                slices labelled service-name=<svc>,
                                managed-by=endpointslice-controller.k8s.io
                                ─► creates (generateName <svc>-), updates in
                                place (compare-and-swap), deletes
"""

from __future__ import annotations

import contextlib
import logging

from corral.api.errors import APIError, Conflict, NotFound
from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, split_key
from corral.controllers.endpointslice.plan import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    MAX_ENDPOINTS_PER_SLICE,
    SERVICE_NAME_LABEL,
    Plan,
    desired_endpoints,
    managed_slices,
    plan_slices,
)
from corral.controllers.informers import NAMESPACE, SharedInformers
from corral.controllers.service_pods import selected_pods, selects
from corral.objects import Obj, is_deleting, meta, name_of, namespace_of, spec

log = logging.getLogger("corral.controllers.endpointslice")

NODE_RETRY_SECONDS = 1.0


class EndpointSliceController(Controller):
    name = "endpointslice-controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, workers: int = 2, max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> None:
        super().__init__(client, informers, recorder, workers=workers)
        self.max_per_slice = max_per_slice
        self.services = informers.get("Service")
        self.pods = informers.get("Pod")
        self.slices = informers.get("EndpointSlice")
        self.nodes = informers.get("Node")
        self.services.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._pod_changed, self._pod_updated, self._pod_changed)
        self.slices.add_handler(self._slice_changed, self._slice_updated, self._slice_changed)

    def _pod_changed(self, pod: Obj) -> None:
        for svc in self.services.by_index(NAMESPACE, namespace_of(pod) or ""):
            if selects(svc, pod):
                self.enqueue(svc)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod_changed(new)
        if (meta(old).get("labels") or {}) != (meta(new).get("labels") or {}):
            self._pod_changed(old)

    def _slice_changed(self, eps: Obj) -> None:
        # Ours changed or went behind our back: look at its Service again.
        labels = meta(eps).get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME and labels.get(SERVICE_NAME_LABEL):
            self.enqueue_key(f"{namespace_of(eps)}/{labels[SERVICE_NAME_LABEL]}")

    def _slice_updated(self, old: Obj, new: Obj) -> None:
        self._slice_changed(old)
        self._slice_changed(new)

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        namespace = namespace or "default"
        service = self.services.get_by_key(key)
        if service is None:
            return
        existing = managed_slices(self.slices.by_index(NAMESPACE, namespace), name,
                                  CONTROLLER_NAME)
        if not spec(service).get("selector") or spec(service).get("type") == "ExternalName":
            await self._apply(service, Plan(delete=existing))
            return
        pods = selected_pods(service, self.pods.by_index(NAMESPACE, namespace))
        # Only the nodes these pods run on: a reconcile per pod change must not
        # walk every node of a big cluster.
        nodes = {n: node for n in {spec(p).get("nodeName") for p in pods} if n
                 and (node := self.nodes.get_by_key(n)) is not None}
        groups, waiting = desired_endpoints(service, pods, nodes)
        await self._apply(service, plan_slices(service, groups, existing, self.max_per_slice))
        if waiting:  # their nodes are not in the cache yet: look again soon
            log.info("pods wait for their nodes service=%s pods=%s", key, ",".join(waiting))
            self.requeue_after(key, NODE_RETRY_SECONDS)

    async def _apply(self, service: Obj, plan: Plan) -> None:
        try:
            # No new slices under a Service being deleted (the collector is at work).
            await write_plan(self.client, plan, create=not is_deleting(service))
        except Conflict:
            raise  # a stale cache: the key is retried, nothing to tell
        except APIError as err:
            self.emit(service, "Warning", "FailedToUpdateEndpointSlices",
                      f"Error updating Endpoint Slices for Service {namespace_of(service)}/"
                      f"{name_of(service)}: {err}")
            raise
        if plan.create or plan.update or plan.delete:
            log.info("endpointslices service=%s/%s created=%d updated=%d deleted=%d",
                     namespace_of(service), name_of(service), len(plan.create),
                     len(plan.update), len(plan.delete))


async def write_plan(client: Client, plan: Plan, *, create: bool) -> None:
    """Creates (unless ``create`` is false), updates (compare-and-swap on their
    resourceVersion: a Conflict retries the key), deletes (gone already is fine)."""
    for eps in plan.create if create else []:
        await client.create(eps)
    for eps in plan.update:
        await client.update(eps)
    for eps in plan.delete:
        with contextlib.suppress(NotFound):
            await client.delete("EndpointSlice", name_of(eps), namespace_of(eps))
