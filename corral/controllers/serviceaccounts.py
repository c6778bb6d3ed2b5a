"""The `default` ServiceAccount of every namespace (Kubernetes'
serviceaccounts-controller): a namespace that appears gets one, and one deleted
by hand comes back. Pods that name no ServiceAccount run as it.

    Namespace added / ServiceAccount "default" deleted ─► key = the namespace
    reconcile: namespace gone or terminating? nothing to do
               "default" in the cache?           nothing to do
               else create it (AlreadyExists is success: the cache lagged)
"""

from __future__ import annotations

from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller
from corral.controllers.informers import SharedInformers
from corral.controllers.per_namespace import create_kept, open_namespace
from corral.objects import Obj, name_of, namespace_of

DEFAULT = "default"


class ServiceAccountsController(Controller):
    name = "serviceaccount-controller"

    def __init__(self, client: Client, informers: SharedInformers,
                 recorder: EventRecorder) -> None:
        super().__init__(client, informers, recorder, workers=1)
        self.namespaces = informers.get("Namespace")
        self.accounts = informers.get("ServiceAccount")
        self.namespaces.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.accounts.add_handler(on_delete=self._account_deleted)

    def _account_deleted(self, obj: Obj) -> None:
        if name_of(obj) == DEFAULT:
            self.enqueue_key(namespace_of(obj))

    async def reconcile(self, key: str) -> None:
        if open_namespace(self.namespaces, key) is None:
            return
        if self.accounts.get(key, DEFAULT) is not None:
            return
        await create_kept(self.client, {"apiVersion": "v1", "kind": "ServiceAccount",
                                        "metadata": {"name": DEFAULT, "namespace": key}}, key)
