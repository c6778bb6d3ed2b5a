"""The StatefulSet controller: plan (ordinals, ordering, rolling update with a
partition, status; pure) and controller (caches, writes)."""

from __future__ import annotations

from corral.controllers.statefulset.controller import StatefulSetController

__all__ = ["StatefulSetController"]
