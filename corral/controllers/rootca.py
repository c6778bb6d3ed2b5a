"""The `kube-root-ca.crt` ConfigMap of every namespace (Kubernetes'
root-ca-cert-publisher): the CA bundle a pod verifies the API server by, at
kubernetes.default.svc. Client libraries and projected service-account volumes
read it there; one deleted or changed by hand comes back as it was.

    Namespace added or changed / that ConfigMap changed or deleted ─► key = namespace
    reconcile: namespace gone or terminating?        nothing to do
               none there?                            create it
               data not exactly {"ca.crt": the CA},
               or its description annotation gone?    put them back (other fields kept)

The CA is the one the controller manager trusts the API server by (its
kubeconfig's, or the master's own when it runs in the master), as
kube-controller-manager's --root-ca-file defaults to it. Without one (an API
served over plain HTTP) there is nothing to publish and the controller idles.
"""

from __future__ import annotations

import copy

from corral.api.errors import NotFound
from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller
from corral.controllers.informers import SharedInformers
from corral.controllers.per_namespace import create_kept, open_namespace
from corral.objects import Obj, meta, name_of, namespace_of

CONFIGMAP = "kube-root-ca.crt"
DATA_KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when "
               "using internal endpoints such as the internal service IP or "
               "kubernetes.default.svc. No other usage is guaranteed across distributions "
               "of Kubernetes clusters.")


class RootCAPublisher(Controller):
    name = "root-ca-cert-publisher"

    def __init__(self, client: Client, informers: SharedInformers,
                 recorder: EventRecorder) -> None:
        super().__init__(client, informers, recorder, workers=1)
        self.ca = client.ca_pem.decode() if client.ca_pem else ""
        self.namespaces = informers.get("Namespace")
        self.configmaps = informers.get("ConfigMap")
        if not self.ca:
            return
        self.namespaces.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.configmaps.add_handler(self._configmap, lambda old, new: self._configmap(new),
                                    self._configmap)

    def _configmap(self, obj: Obj) -> None:
        if name_of(obj) == CONFIGMAP:
            self.enqueue_key(namespace_of(obj))

    async def reconcile(self, key: str) -> None:
        if open_namespace(self.namespaces, key) is None:
            return
        current = self.configmaps.get(key, CONFIGMAP)
        if current is None:
            await create_kept(self.client, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": CONFIGMAP, "namespace": key,
                             "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                "data": {DATA_KEY: self.ca}}, key)
        elif current.get("data") != {DATA_KEY: self.ca} or \
                (meta(current).get("annotations") or {}).get(DESCRIPTION_ANNOTATION) \
                != DESCRIPTION:
            fixed = copy.deepcopy(current)
            fixed["data"] = {DATA_KEY: self.ca}
            fixed.pop("binaryData", None)
            meta(fixed).setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = DESCRIPTION
            try:
                await self.client.update(fixed)
            except NotFound:
                self.enqueue_key(key)  # deleted meanwhile: made again with the next look
