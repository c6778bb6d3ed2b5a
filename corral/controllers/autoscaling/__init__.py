"""The horizontal pod autoscaler: replicas (the replica calculator, pure),
behavior (stabilization windows and scaling rates, pure), compute (all metrics
of one HPA), targets (scale subresources and the metrics API, through the
client), conditions (the status) and controller (the reconcile)."""

from __future__ import annotations

from corral.controllers.autoscaling.controller import HorizontalController, HPAOptions

__all__ = ["HPAOptions", "HorizontalController"]
