"""ServiceAccount admission, as kube-apiserver's ``ServiceAccount`` plugin does it:
a pod may run only as a ServiceAccount that exists.

    Pod CREATE: spec.serviceAccountName (defaults.py made it "default" when unset)
        the ServiceAccount is in the pod's namespace ─► admitted
        not there, and it is "default" ─► looked up again, 100–200 ms apart: the
            serviceaccounts controller makes it just after its namespace, and a pod
            created right after `kubectl create namespace` must not lose that race.
            Kubernetes looks 10 times (1–2 s); corral 30 (3–6 s), as a controller
            manager on a loaded small machine may take longer than 2 s
        not there (any other name: once) ─► 403 'pods "x" is forbidden: error looking
            up service account ns/sa: serviceaccount "sa" not found'

Controllers that create pods (ReplicaSet, Job, StatefulSet, DaemonSet) record the
refusal as a FailedCreate event and retry with their queue's back-off, so a pod
template naming an account still to be made works once it is.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from corral.api.admission.priority import forbidden
from corral.api.registry import Registry
from corral.api.registry.objects import shown_name
from corral.api.resources import BY_KIND, Resource
from corral.objects import Obj, namespace_of, spec

SERVICE_ACCOUNT = BY_KIND["ServiceAccount"]
DEFAULT = "default"
DEFAULT_ATTEMPTS = 30  # Kubernetes' numAttempts for the default account is 10


def retry_interval() -> float:
    """Kubernetes' wait between looks: 100 ms plus up to 100 ms, drawn once per pod."""
    return 0.1 + random.random() * 0.1


class ServiceAccountAdmission:
    def __init__(self, registry: Registry,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.registry = registry
        self.sleep = sleep  # a seam: tests count the waits instead of sleeping

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> None:
        if res.kind != "Pod" or op != "CREATE":
            return
        account = str(spec(obj).get("serviceAccountName") or DEFAULT)
        namespace = namespace_of(obj)
        if not await self._exists(namespace, account):
            raise forbidden(res, shown_name(obj), f"error looking up service account "
                            f"{namespace}/{account}: serviceaccount \"{account}\" not found")

    async def _exists(self, namespace: str, account: str) -> bool:
        attempts = DEFAULT_ATTEMPTS if account == DEFAULT else 1
        interval = retry_interval()
        for attempt in range(attempts):
            if attempt:
                await self.sleep(interval)
            if await self.registry.find(SERVICE_ACCOUNT, namespace, account) is not None:
                return True
        return False
