"""EndpointSlices (discovery.k8s.io/v1): plan (which slices a Service with a
selector should have, pure), controller (Kubernetes' endpointslice-controller)
and mirroring (Kubernetes' endpointslicemirroring-controller: the Endpoints of
Services without a selector, mirrored)."""

from corral.controllers.endpointslice.controller import EndpointSliceController
from corral.controllers.endpointslice.mirroring import EndpointSliceMirroringController

__all__ = ["EndpointSliceController", "EndpointSliceMirroringController"]
