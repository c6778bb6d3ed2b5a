"""The Endpoints controller: for each Service with a selector, where its pods
really listen.

    Service / Pod event ─► key "ns/service" ─► reconcile:
      selected pods, not being deleted, with an IP
        ready      → subsets[].addresses          (ip, nodeName, targetRef)
        not ready  → subsets[].notReadyAddresses  (publishNotReadyAddresses: ready)
      ports per pod (service_pods.serving_ports, shared with the EndpointSlice
        controller): the Service port's targetPort looked up in the pod's
        status.portMappings → hostIP:hostPort, else the containerPort itself
      pods with the same resolved ports share a subset
      Endpoints named like the Service, no owner (as Kubernetes), labelled
      endpointslice.kubernetes.io/skip-mirror=true; written only when it
      changes; deleted with the Service
"""

from __future__ import annotations

import contextlib

from corral.api.errors import AlreadyExists, NotFound
from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, split_key
from corral.controllers.endpointslice.plan import SKIP_MIRROR_LABEL
from corral.controllers.informers import NAMESPACE, SharedInformers
from corral.controllers.pods import is_ready
from corral.controllers.service_pods import selected_pods, selects, serving_ports
from corral.objects import Obj, is_deleting, meta, name_of, spec

PortKey = tuple[tuple[str, int, str], ...]  # (name, port, protocol) per service port


def pod_address(pod: Obj, ip: str, service: str = "") -> Obj:
    """An address of the pod; with its hostname when the pod names ``service`` as
    its subdomain (a StatefulSet's pods under their governing Service), which is
    what gives it a DNS name of its own: <hostname>.<service>.<ns>.svc."""
    m = meta(pod)
    address: Obj = {"ip": ip, "targetRef": {"kind": "Pod", "namespace": m.get("namespace"),
                                            "name": m.get("name"), "uid": m.get("uid")}}
    pod_spec = spec(pod)
    if pod_spec.get("hostname") and service and pod_spec.get("subdomain") == service:
        address["hostname"] = pod_spec["hostname"]
    node = pod_spec.get("nodeName")
    if node:
        address["nodeName"] = node
    return address


def build_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    ports = spec(service).get("ports") or []
    publish_not_ready = bool(spec(service).get("publishNotReadyAddresses"))
    groups: dict[PortKey, tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        serving = None if is_deleting(pod) else serving_ports(service, pod)
        if serving is None or (ports and not serving[1]):
            continue
        ip, usable = serving
        key: PortKey = tuple((str(p.get("name") or ""), port, str(p.get("protocol") or "TCP"))
                             for p, port in usable)
        ready, not_ready = groups.setdefault(key, ([], []))
        (ready if is_ready(pod) or publish_not_ready else not_ready).append(
            pod_address(pod, ip, name_of(service)))
    return [_subset(key, ready, not_ready) for key, (ready, not_ready) in sorted(groups.items())]


def _subset(key: PortKey, ready: list[Obj], not_ready: list[Obj]) -> Obj:
    subset: Obj = {}
    if ready:
        subset["addresses"] = sorted(ready, key=_address_order)
    if not_ready:
        subset["notReadyAddresses"] = sorted(not_ready, key=_address_order)
    ports = []
    for name, port, protocol in key:
        entry: Obj = {"port": port, "protocol": protocol}
        if name:
            entry["name"] = name
        ports.append(entry)
    if ports:
        subset["ports"] = ports
    return subset


def _address_order(address: Obj) -> tuple[str, str]:
    return str(address.get("ip")), str((address.get("targetRef") or {}).get("name"))


class EndpointsController(Controller):
    name = "endpoint-controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, workers: int = 2) -> None:
        super().__init__(client, informers, recorder, workers=workers)
        self.services = informers.get("Service")
        self.pods = informers.get("Pod")
        self.endpoints = informers.get("Endpoints")
        self.services.add_handler(self.enqueue, lambda old, new: self.enqueue(new),
                                  self.enqueue)
        self.pods.add_handler(self._pod_changed, lambda old, new: self._pod_updated(old, new),
                              self._pod_changed)
        self.endpoints.add_handler(None, lambda old, new: self._endpoints_changed(new),
                                   self._endpoints_changed)

    def _pod_changed(self, pod: Obj) -> None:
        for svc in self.services.by_index(NAMESPACE, str(meta(pod).get("namespace"))):
            if selects(svc, pod):
                self.enqueue(svc)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod_changed(new)
        if (meta(old).get("labels") or {}) != (meta(new).get("labels") or {}):
            self._pod_changed(old)

    def _endpoints_changed(self, endpoints: Obj) -> None:
        # Someone else changed (or deleted) what we manage: look again.
        self.enqueue(endpoints)

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        service = self.services.get_by_key(key)
        current = self.endpoints.get_by_key(key)
        if service is None:
            if current is not None:
                with contextlib.suppress(NotFound):
                    await self.client.delete("Endpoints", name, namespace)
            return
        selector = spec(service).get("selector")
        if not selector:
            return  # endpoints of a selector-less Service are the user's
        pods = selected_pods(service, self.pods.by_index(NAMESPACE, namespace or ""))
        subsets = build_subsets(service, pods)
        # Kubernetes' label: these Endpoints are the controller's, not to be
        # mirrored into EndpointSlices (the endpointslice controller makes those).
        labels = {**(meta(service).get("labels") or {}), SKIP_MIRROR_LABEL: "true"}
        if current is not None and (current.get("subsets") or []) == subsets \
                and (meta(current).get("labels") or {}) == labels:
            return
        await self._write(namespace or "default", name, labels, subsets, current)

    async def _write(self, namespace: str, name: str, labels: dict[str, str],
                     subsets: list[Obj], current: Obj | None) -> None:
        body: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": name, "namespace": namespace, "labels": labels},
                     "subsets": subsets}
        if current is None:
            try:
                await self.client.create(body)
                return
            except AlreadyExists:
                current = await self.client.get("Endpoints", name, namespace)
        body["metadata"]["resourceVersion"] = meta(current).get("resourceVersion")
        await self.client.update(body)
