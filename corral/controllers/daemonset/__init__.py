"""The DaemonSet controller: plan (what should run where, pure) and controller
(caches, writes)."""

from __future__ import annotations

from corral.controllers.daemonset.controller import DaemonSetController

__all__ = ["DaemonSetController"]
