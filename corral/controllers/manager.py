"""The controller manager: one set of shared informers, every controller on it.

    ControllerManager.run(stop)
      build controllers (each registers handlers on the shared informers)
      ─► start informers ─► wait until every cache is synced
      ─► run every controller's workers (and the events writer) until stop

    run_in_master(client, stop)   inside `corral master`, leader-elected over the
                                  Lease kube-system/corral-controller-manager
    `corral controllers`          the same as its own process (corral/cli/controllers.py)
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field

from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.client.leaderelection import LeaseTiming, master_identity, run_elected
from corral.controllers.autoscaling import HorizontalController, HPAOptions
from corral.controllers.base import Controller
from corral.controllers.cronjob import CronJobController
from corral.controllers.csrcleaner import CsrCleanerController
from corral.controllers.daemonset import DaemonSetController
from corral.controllers.deployment import DeploymentController
from corral.controllers.disruption import DisruptionController
from corral.controllers.endpoints import EndpointsController
from corral.controllers.endpointslice import (
    EndpointSliceController,
    EndpointSliceMirroringController,
)
from corral.controllers.endpointslice.plan import MAX_ENDPOINTS_PER_SLICE, max_per_slice
from corral.controllers.garbagecollector import GarbageCollector
from corral.controllers.informers import SharedInformers
from corral.controllers.job import JobController, JobOptions
from corral.controllers.masters import MasterEndpointsController
from corral.controllers.namespace import NamespaceController
from corral.controllers.nodelifecycle import NodeLifecycleController, NodeLifecycleOptions
from corral.controllers.quota import QuotaController, sync_seconds_from_env
from corral.controllers.replicaset import ReplicaSetController, ReplicationControllerController
from corral.controllers.rootca import RootCAPublisher
from corral.controllers.serviceaccounts import ServiceAccountsController
from corral.controllers.statefulset import StatefulSetController

log = logging.getLogger("corral.controllers")

LEASE_NAME = "corral-controller-manager"  # in kube-system
ALL_CONTROLLERS = ("replicaset", "replicationcontroller", "deployment", "daemonset",
                   "statefulset", "job", "nodelifecycle", "endpoints", "endpointslice",
                   "endpointslicemirroring", "garbagecollector",
                   "namespace", "disruption", "cronjob", "resourcequota", "serviceaccount",
                   "kubernetesendpoints", "horizontalpodautoscaling", "csrcleaner",
                   "root-ca-cert-publisher")


@dataclass
class ManagerOptions:
    controllers: tuple[str, ...] = ALL_CONTROLLERS
    node: NodeLifecycleOptions = field(default_factory=NodeLifecycleOptions)
    job: JobOptions = field(default_factory=JobOptions)
    quota_sync: float = field(default_factory=sync_seconds_from_env)
    hpa: HPAOptions = field(default_factory=HPAOptions)
    max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE

    @classmethod
    def from_env(cls) -> ManagerOptions:
        """Options from CORRAL_* environment variables (how `corral master`,
        which has no controller flags, is tuned)."""
        names = os.environ.get("CORRAL_CONTROLLERS", "")
        chosen = tuple(n for n in names.split(",") if n) or ALL_CONTROLLERS
        return cls(chosen, NodeLifecycleOptions.from_env(), JobOptions.from_env(),
                   hpa=HPAOptions.from_env(), max_endpoints_per_slice=max_per_slice(
                       os.environ.get("CORRAL_MAX_ENDPOINTS_PER_SLICE",
                                      str(MAX_ENDPOINTS_PER_SLICE))))


def build(name: str, client: Client, informers: SharedInformers, recorder: EventRecorder,
          options: ManagerOptions) -> Controller:
    if name == "replicaset":
        return ReplicaSetController(client, informers, recorder)
    if name == "replicationcontroller":
        return ReplicationControllerController(client, informers, recorder)
    if name == "statefulset":
        return StatefulSetController(client, informers, recorder)
    if name == "daemonset":
        return DaemonSetController(client, informers, recorder)
    if name == "deployment":
        return DeploymentController(client, informers, recorder)
    if name == "job":
        return JobController(client, informers, recorder, options=options.job)
    if name == "nodelifecycle":
        return NodeLifecycleController(client, informers, recorder, options=options.node)
    if name == "endpoints":
        return EndpointsController(client, informers, recorder)
    if name == "endpointslice":
        return EndpointSliceController(client, informers, recorder,
                                       max_per_slice=options.max_endpoints_per_slice)
    if name == "endpointslicemirroring":
        return EndpointSliceMirroringController(client, informers, recorder)
    if name == "garbagecollector":
        return GarbageCollector(client, informers, recorder)
    if name == "namespace":
        return NamespaceController(client, informers, recorder)
    if name == "cronjob":
        return CronJobController(client, informers, recorder)
    if name == "disruption":
        return DisruptionController(client, informers, recorder)
    if name == "horizontalpodautoscaling":
        return HorizontalController(client, informers, recorder, options=options.hpa)
    if name == "resourcequota":
        return QuotaController(client, informers, recorder, sync_seconds=options.quota_sync)
    if name == "serviceaccount":
        return ServiceAccountsController(client, informers, recorder)
    if name == "kubernetesendpoints":
        return MasterEndpointsController(client, informers, recorder)
    if name == "csrcleaner":
        return CsrCleanerController(client, informers, recorder)
    if name == "root-ca-cert-publisher":
        return RootCAPublisher(client, informers, recorder)
    raise ValueError(f"unknown controller {name!r}; known: {', '.join(ALL_CONTROLLERS)}")


class ControllerManager:
    def __init__(self, client: Client, options: ManagerOptions | None = None) -> None:
        self.client = client
        self.options = options or ManagerOptions()
        self.informers = SharedInformers(client)
        self.recorder = EventRecorder(client)
        self.controllers = [build(name, client, self.informers, self.recorder, self.options)
                            for name in self.options.controllers]

    async def run(self, stop: asyncio.Event) -> None:
        self.informers.start()
        self.recorder.start()
        try:
            synced = asyncio.create_task(self.informers.wait_synced())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({synced, stopped}, return_when=asyncio.FIRST_COMPLETED)
            for task in (synced, stopped):
                task.cancel()
            await asyncio.gather(synced, stopped, return_exceptions=True)
            if stop.is_set():
                return
            log.info("controllers running names=%s", ",".join(self.options.controllers))
            await asyncio.gather(*(c.run(stop) for c in self.controllers))
        finally:
            await self.recorder.stop()
            await self.informers.stop()


async def run_in_master(client: Client, stop: asyncio.Event, timing: LeaseTiming) -> None:
    """The in-process controller manager of `corral master`, leader-elected, its
    writes fenced by its term."""
    identity = master_identity(client.server)
    options = ManagerOptions.from_env()

    async def work(fenced: Client) -> None:
        # A fresh manager per term of leadership: caches start clean.
        await ControllerManager(fenced, options).run(stop)

    await run_elected(client, stop, LEASE_NAME, identity, work, timing)
