"""The horizontal pod autoscaler controller (Kubernetes' horizontal.go,
reconcileAutoscaler), each HPA every sync period (15 s):

    scaleTargetRef ─► its scale (targets.py)      fail: AbleToScale False FailedGetScale
    current = scale.spec.replicas
      0 (and minReplicas > 0)   → nothing: ScalingActive False ScalingDisabled
      above max / below min     → max / min
      else the pods of its selector (also another HPA's? ScalingActive False
           AmbiguousSelector) and their metrics (compute.py) → proposal
           ─► behavior.normalize (windows, rates, min/max; AbleToScale, ScalingLimited)
    desired ≠ current ─► PUT the scale; Event SuccessfulRescale; lastScaleTime
    status: currentReplicas, desiredReplicas, currentMetrics, conditions

HPAs are enqueued when created or when their spec changes, then every sync
period; a status write does not enqueue (that would loop at write speed).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from datetime import timedelta

from corral.api.errors import APIError, NotFound
from corral.api.selectors import LabelSelector, parse_label_selector
from corral.client.clock import Clock, RealClock
from corral.client.events import NORMAL, WARNING, EventRecorder
from corral.client.http import Client
from corral.client.informer import key_of
from corral.controllers.autoscaling.behavior import Bounds, History, normalize, record_scale
from corral.controllers.autoscaling.compute import Computed, Inputs, compute
from corral.controllers.autoscaling.conditions import (
    ABLE_TO_SCALE,
    SCALING_ACTIVE,
    SCALING_LIMITED,
    StatusDraft,
)
from corral.controllers.autoscaling.replicas import PodMetric, Timing
from corral.controllers.autoscaling.targets import (
    ScaleTarget,
    ScaleTargets,
    UnknownKind,
    pod_metrics,
)
from corral.controllers.base import Controller, split_key
from corral.controllers.informers import NAMESPACE, SharedInformers
from corral.objects import Obj, labels_of, meta, spec, status


@dataclass(frozen=True)
class HPAOptions:
    """kube-controller-manager's --horizontal-pod-autoscaler-* flags."""

    sync_period: float = 15.0
    tolerance: float = 0.1
    downscale_stabilization: float = 300.0
    cpu_initialization_period: float = 300.0
    initial_readiness_delay: float = 30.0

    @classmethod
    def from_env(cls) -> HPAOptions:
        def number(name: str, default: float) -> float:
            return float(os.environ.get(f"CORRAL_HPA_{name}", default))

        return cls(number("SYNC_PERIOD", 15.0), number("TOLERANCE", 0.1),
                   number("DOWNSCALE_STABILIZATION", 300.0),
                   number("CPU_INITIALIZATION_PERIOD", 300.0),
                   number("INITIAL_READINESS_DELAY", 30.0))

    @property
    def timing(self) -> Timing:
        return Timing(self.tolerance, timedelta(seconds=self.cpu_initialization_period),
                      timedelta(seconds=self.initial_readiness_delay))


class HorizontalController(Controller):
    name = "horizontal-pod-autoscaler"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, options: HPAOptions | None = None, clock: Clock | None = None) -> None:
        super().__init__(client, informers, recorder)
        self.options = options or HPAOptions()
        self.clock = clock or RealClock()
        self.targets = ScaleTargets(client, self.clock)
        self.histories: dict[str, History] = {}
        # Each HPA's target selector as last seen, to tell two HPAs on one set of pods.
        self.selectors: dict[str, LabelSelector] = {}
        self.hpas = informers.get("HorizontalPodAutoscaler")
        self.pods = informers.get("Pod")
        self.hpas.add_handler(self.enqueue, self._updated, self.enqueue)

    def _updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("generation") != meta(new).get("generation"):
            self.enqueue(new)

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        hpa = self.hpas.get(namespace, name)
        if hpa is None:
            self.histories.pop(key, None)
            self.selectors.pop(key, None)
            return
        try:
            await self._autoscale(key, copy.deepcopy(hpa))
        finally:
            self.requeue_after(key, self.options.sync_period)

    async def _autoscale(self, key: str, hpa: Obj) -> None:
        now = self.clock.now()
        draft = StatusDraft(hpa, now)
        namespace = str(meta(hpa).get("namespace"))
        try:
            target = await self.targets.resolve(namespace, spec(hpa).get("scaleTargetRef") or {})
            scale = await self.targets.get(target)
        except (UnknownKind, APIError) as err:
            self.emit(hpa, WARNING, "FailedGetScale", _text(err))
            draft.condition(ABLE_TO_SCALE, "False", "FailedGetScale", "the HPA controller was "
                            f"unable to get the target's current scale: {_text(err)}")
            await self._write(hpa, draft.conditions_only())
            return
        draft.condition(ABLE_TO_SCALE, "True", "SucceededGetScale",
                        "the HPA controller was able to get the target's current scale")
        current = int(spec(scale).get("replicas") or 0)
        history = self.histories.setdefault(key, History())
        history.start(current, now)
        await self._decide(hpa, draft, history, target, scale)

    async def _decide(self, hpa: Obj, draft: StatusDraft, history: History,
                      target: ScaleTarget, scale: Obj) -> None:
        hpa_spec = spec(hpa)
        current = int(spec(scale).get("replicas") or 0)
        minimum = int(hpa_spec.get("minReplicas") or 1)
        maximum = int(hpa_spec.get("maxReplicas") or 0)
        statuses: list[Obj] = []
        reason = ""
        if current == 0 and minimum != 0:
            draft.condition(SCALING_ACTIVE, "False", "ScalingDisabled",
                            "scaling is disabled since the replica count of the target is zero")
            await self._write(hpa, draft.build(current, 0, None, False))
            return
        if current > maximum:
            desired, reason = maximum, "Current number of replicas above Spec.MaxReplicas"
        elif current < minimum:
            desired, reason = minimum, "Current number of replicas below Spec.MinReplicas"
        else:
            computed = await self._metrics(hpa, draft, scale, current)
            statuses = computed.statuses
            if computed.replicas == -1:
                await self._write(hpa, draft.build(current, None, statuses, False))
                self.emit(hpa, WARNING, "FailedComputeMetricsReplicas", computed.error or "")
                return
            desired = max(computed.replicas, 0)
            if desired > current:
                reason = f"{computed.metric} above target"
            elif desired < current:
                reason = "All metrics below target"
            normalized = normalize(history, hpa_spec.get("behavior"),
                                   Bounds(current, minimum, maximum), desired, draft.now,
                                   timedelta(seconds=self.options.downscale_stabilization))
            draft.condition(ABLE_TO_SCALE, "True", normalized.able_reason,
                            normalized.able_message)
            draft.condition(SCALING_LIMITED, "True" if normalized.limited else "False",
                            normalized.limited_reason, normalized.limited_message)
            desired = normalized.replicas
        if desired == current:
            await self._write(hpa, draft.build(current, current, statuses, False))
            return
        await self._rescale(hpa, draft, history, target, scale, desired, reason, statuses)

    async def _rescale(self, hpa: Obj, draft: StatusDraft, history: History,
                       target: ScaleTarget, scale: Obj, desired: int, reason: str,
                       statuses: list[Obj]) -> None:
        current = int(spec(scale).get("replicas") or 0)
        updated = copy.deepcopy(scale)
        updated.setdefault("spec", {})["replicas"] = desired
        try:
            await self.targets.update(target, updated)
        except APIError as err:
            self.emit(hpa, WARNING, "FailedRescale",
                      f"New size: {desired}; reason: {reason}; error: {_text(err)}")
            draft.condition(ABLE_TO_SCALE, "False", "FailedUpdateScale", "the HPA controller "
                            f"was unable to update the target scale: {_text(err)}")
            await self._write(hpa, draft.build(current, None, statuses, False))
            return
        draft.condition(ABLE_TO_SCALE, "True", "SucceededRescale",
                        f"the HPA controller was able to update the target scale to {desired}")
        self.emit(hpa, NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
        record_scale(history, spec(hpa).get("behavior"), current, desired, draft.now)
        await self._write(hpa, draft.build(current, desired, statuses, True))

    async def _metrics(self, hpa: Obj, draft: StatusDraft, scale: Obj,
                       current: int) -> Computed:
        """computeReplicasForMetrics, with the selector checks before it."""
        text = str(status(scale).get("selector") or "")
        if not text:
            self.emit(hpa, WARNING, "SelectorRequired", "selector is required")
            draft.condition(SCALING_ACTIVE, "False", "InvalidSelector",
                            "the HPA target's scale is missing a selector")
            return Computed(-1, "", [], "selector is required")
        try:
            selector = parse_label_selector(text)
        except ValueError as err:
            message = ("couldn't convert selector into a corresponding internal selector "
                       f"object: {err}")
            self.emit(hpa, WARNING, "InvalidSelector", message)
            draft.condition(SCALING_ACTIVE, "False", "InvalidSelector", message)
            return Computed(-1, "", [], message)
        namespace = str(meta(hpa).get("namespace"))
        pods = [p for p in self.pods.by_index(NAMESPACE, namespace)
                if selector.matches(labels_of(p))]
        self.selectors[key_of(hpa)] = selector
        others = self._controlling(pods, namespace)
        if len(others) > 1:
            message = (f"pods by selector {text} are controlled by multiple HPAs: "
                       f"[{' '.join(others)}]")
            self.emit(hpa, WARNING, "AmbiguousSelector", message)
            draft.condition(SCALING_ACTIVE, "False", "AmbiguousSelector", message)
            return Computed(-1, "", [], message)

        async def fetch(resource: str, container: str) -> dict[str, PodMetric]:
            return await pod_metrics(self.client, namespace, text, resource, container)

        computed = await compute(spec(hpa).get("metrics") or [],
                                 Inputs(current, pods, fetch, draft.now, self.options.timing))
        for failure in computed.failures:
            self.emit(hpa, WARNING, failure.reason, failure.message)
        if computed.replicas == -1 and computed.failures:
            first = computed.failures[0]
            draft.condition(SCALING_ACTIVE, "False", first.reason, first.condition_message)
        elif computed.replicas != -1:
            draft.condition(SCALING_ACTIVE, "True", "ValidMetricFound", "the HPA was able to "
                            f"successfully calculate a replica count from {computed.metric}")
        return computed

    def _controlling(self, pods: list[Obj], namespace: str) -> list[str]:
        """hpasControllingPodsUnderSelector: the HPAs of the namespace whose last
        seen selector takes in any of these pods (two would fight over them)."""
        found = [key for key, selector in self.selectors.items()
                 if split_key(key)[0] == namespace
                 and any(selector.matches(labels_of(p)) for p in pods)]
        return sorted(found)

    async def _write(self, hpa: Obj, new_status: Obj) -> None:
        """updateStatusIfNeeded: only a changed status is written."""
        if (hpa.get("status") or {}) == new_status:
            return
        hpa["status"] = new_status
        try:
            await self.client.update_status(hpa)
        except NotFound:
            return


def _text(err: Exception) -> str:
    return err.message if isinstance(err, APIError) else str(err)

