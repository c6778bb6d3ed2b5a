"""A pod's effective amounts, as Kubernetes' PodRequests sums them."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from corral.podresources import pod_amounts


def _cpu(container: Mapping[str, Any]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in (container.get("requests") or {}).items()}


def test_a_sidecar_started_before_an_init_container_counts_in_its_peak() -> None:
    spec = {"containers": [{"requests": {"cpu": "1"}}],
            "initContainers": [{"restartPolicy": "Always", "requests": {"cpu": "0.5"}},
                               {"requests": {"cpu": "2", "memory": "3"}}]}
    # running: 0.5 sidecar + 2 init = 2.5 > 1 + 0.5; memory only the init's 3
    assert pod_amounts(spec, _cpu, {"cpu": Decimal("0.1")}) == {
        "cpu": Decimal("2.6"), "memory": Decimal(3)}


def test_containers_beat_a_smaller_init_peak_and_sidecars_add_up() -> None:
    spec = {"containers": [{"requests": {"cpu": "1"}}, {"requests": {"cpu": "2"}}],
            "initContainers": [{"requests": {"cpu": "2"}},
                               {"restartPolicy": "Always", "requests": {"cpu": "1"}}]}
    assert pod_amounts(spec, _cpu, {}) == {"cpu": Decimal(4)}
    assert pod_amounts({}, _cpu, {}) == {}
