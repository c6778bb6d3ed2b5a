"""A node's pressure conditions carry the kubelet's reasons (`kubectl describe node`)."""

from __future__ import annotations

from pathlib import Path

from corral.agent.node import node_conditions
from corral.agent.runtime.base import Isolation

# (under pressure, not under pressure), as the kubelet words them
REASONS = {"MemoryPressure": ("KubeletHasInsufficientMemory", "KubeletHasSufficientMemory"),
           "DiskPressure": ("KubeletHasDiskPressure", "KubeletHasNoDiskPressure"),
           "PIDPressure": ("KubeletHasInsufficientPID", "KubeletHasSufficientPID")}


def test_pressure_conditions_use_the_kubelets_reasons(tmp_path: Path) -> None:
    conditions = {c["type"]: c for c in node_conditions(Isolation("rlimits", "test"), tmp_path)}
    for type_, (under, ok) in REASONS.items():
        condition = conditions[type_]
        assert condition["reason"] == (under if condition["status"] == "True" else ok)
