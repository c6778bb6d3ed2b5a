"""The Endpoints of `default/kubernetes`: the live masters' API addresses
(kube-apiserver's lease endpoint reconciler, run here as a controller).

    presence Leases kube-system/corral-master-* (corral/client/presence.py:
    each master renews its own every 2 s, its URL in an annotation)
        │ any change, and every RECHECK_SECONDS (a silent master's Lease
        ▼ expires without an event)
    reconcile: live masters = Leases renewed within their duration
               Endpoints = one subset per API port: {addresses: [ip...],
               ports: [{name: https, port}]}; written only when it differs

The Service itself is made by the API server on start (api/master_service.py);
this writes nothing while it is missing, and never empties the Endpoints (the
controller is itself talking to a live master: no live Lease means clocks or
Leases lag, not that no master serves).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from urllib.parse import urlsplit

from corral.api.errors import AlreadyExists, Conflict, NotFound
from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.client.presence import NAMESPACE as PRESENCE_NAMESPACE
from corral.client.presence import ROLE_LABEL, URL_ANNOTATION
from corral.controllers.base import Controller
from corral.controllers.informers import SharedInformers
from corral.objects import Obj, annotations_of, labels_of, parse_time, spec

SERVICE, NAMESPACE, PORT_NAME = "kubernetes", "default", "https"
KEY = f"{NAMESPACE}/{SERVICE}"
RECHECK_SECONDS = 5.0


def live_addresses(leases: list[Obj], now: dt.datetime) -> list[tuple[str, int]]:
    """(ip, port) of each master whose presence Lease is current, sorted."""
    found: set[tuple[str, int]] = set()
    for lease in leases:
        if labels_of(lease).get(ROLE_LABEL) != "master":
            continue
        renewed = parse_time(spec(lease).get("renewTime"))
        duration = float(spec(lease).get("leaseDurationSeconds") or 0)
        if renewed is None or renewed + dt.timedelta(seconds=duration) < now:
            continue
        address = _address(annotations_of(lease).get(URL_ANNOTATION, ""))
        if address is not None:
            found.add(address)
    return sorted(found)


def _address(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    try:
        ip = ipaddress.ip_address(parts.hostname or "")
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None  # a name, not an address: Endpoints hold addresses only
    return str(ip), port


def subsets(addresses: list[tuple[str, int]]) -> list[Obj]:
    by_port: dict[int, list[str]] = {}
    for ip, port in addresses:
        by_port.setdefault(port, []).append(ip)
    return [{"addresses": [{"ip": ip} for ip in ips],
             "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]}
            for port, ips in sorted(by_port.items())]


class MasterEndpointsController(Controller):
    name = "kubernetes-endpoints-controller"

    def __init__(self, client: Client, informers: SharedInformers,
                 recorder: EventRecorder) -> None:
        super().__init__(client, informers, recorder, workers=1)
        self.leases = informers.get("Lease", PRESENCE_NAMESPACE)
        self.services = informers.get("Service")
        self.endpoints = informers.get("Endpoints")
        self.leases.add_handler(self._poke, lambda old, new: self._poke(new), self._poke)
        self.services.add_handler(self._poke_if_ours, lambda old, new: self._poke_if_ours(new))

    def _poke(self, obj: Obj) -> None:
        if labels_of(obj).get(ROLE_LABEL) == "master":
            self.enqueue_key(KEY)

    def _poke_if_ours(self, obj: Obj) -> None:
        if (obj.get("metadata") or {}).get("name") == SERVICE and (
                obj.get("metadata") or {}).get("namespace") == NAMESPACE:
            self.enqueue_key(KEY)

    async def reconcile(self, key: str) -> None:
        self.requeue_after(KEY, RECHECK_SECONDS)
        if self.services.get(NAMESPACE, SERVICE) is None:
            return
        live = live_addresses(self.leases.list(), dt.datetime.now(dt.UTC))
        if not live:
            return
        want = subsets(live)
        current = self.endpoints.get(NAMESPACE, SERVICE)
        if current is not None and current.get("subsets") == want:
            return
        await self._write(current, want)

    async def _write(self, current: Obj | None, want: list[Obj]) -> None:
        if current is None:
            try:
                await self.client.create({"apiVersion": "v1", "kind": "Endpoints",
                                          "metadata": {"name": SERVICE, "namespace": NAMESPACE},
                                          "subsets": want}, NAMESPACE)
            except AlreadyExists:
                self.enqueue_key(KEY)  # the cache lagged: compare again
            return
        try:
            await self.client.update({**current, "subsets": want})
        except (Conflict, NotFound):
            self.enqueue_key(KEY)
