"""The Deployment controller, split by concept as Kubernetes' own:
controller (dispatch), sync (ReplicaSets, scaling, status), rolling, recreate,
rollback (revisions), progress (conditions)."""

from __future__ import annotations

from corral.controllers.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
