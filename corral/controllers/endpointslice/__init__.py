"""EndpointSlices (discovery.k8s.io/v1) of Services: plan (which slices a
Service should have, pure) and controller (reconcile, writes)."""

from corral.controllers.endpointslice.controller import EndpointSliceController

__all__ = ["EndpointSliceController"]
