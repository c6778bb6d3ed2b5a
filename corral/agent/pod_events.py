"""The Events the agent records about a pod's containers, with the kubelet's
reasons and wording (pkg/kubelet/events), so `kubectl describe pod` says why:

    Pulled    Normal   the image is not pulled: corral runs the command on the node
    Created   Normal   Created container: web
    Started   Normal   Started container web
    Failed    Warning  Error: <why the container could not be started>
    BackOff   Warning  Back-off restarting failed container web in pod p_ns(uid)
    Unhealthy Warning  Liveness probe failed: <the probe's answer>
    Killing   Normal   Stopping container web / Container web failed liveness
                       probe, will be restarted

Each names the container by fieldPath ("spec.containers{web}") and comes from
component "kubelet" on this node, as the kubelet's do. Events go through the
shared recorder (corral/client/events.py): repeats of one event are counted,
not written again, and a failed write never holds the pod worker up.
(corral runs no postStart/preStop hooks, so there is no FailedPostStartHook.)
"""

from __future__ import annotations

from collections.abc import Callable

from corral.client.events import NORMAL, WARNING, EventRecorder
from corral.objects import Obj

COMPONENT = "kubelet"  # what Kubernetes tools filter node events by


class PodEvents:
    """Events about one pod; ``pod`` returns its current object (for the reference)."""

    def __init__(self, recorder: EventRecorder | None, pod: Callable[[], Obj]) -> None:
        self.recorder = recorder
        self.pod = pod

    def _record(self, type_: str, reason: str, message: str, container: str,
                init: bool) -> None:
        if self.recorder is None:
            return
        pod = {"apiVersion": "v1", "kind": "Pod", **self.pod()}
        where = "initContainers" if init else "containers"
        self.recorder.event(pod, type_, reason, message, COMPONENT,
                            field_path=f"spec.{where}{{{container}}}")

    def pulled(self, container: str, image: str, init: bool) -> None:
        self._record(NORMAL, "Pulled", f'Container image "{image}" is not pulled: corral '
                     "runs the container's command on the node", container, init)

    def started(self, container: str, init: bool) -> None:
        self._record(NORMAL, "Created", f"Created container: {container}", container, init)
        self._record(NORMAL, "Started", f"Started container {container}", container, init)

    def failed(self, container: str, why: str, init: bool) -> None:
        self._record(WARNING, "Failed", f"Error: {why}", container, init)

    def back_off(self, container: str, pod_name: str, namespace: str, uid: str,
                 init: bool) -> None:
        self._record(WARNING, "BackOff", f"Back-off restarting failed container {container} "
                     f"in pod {pod_name}_{namespace}({uid})", container, init)

    def unhealthy(self, container: str, probe: str, message: str, init: bool) -> None:
        self._record(WARNING, "Unhealthy", f"{probe.capitalize()} probe failed: {message}",
                     container, init)

    def killing(self, container: str, why: str, init: bool) -> None:
        self._record(NORMAL, "Killing", why or f"Stopping container {container}", container,
                     init)
