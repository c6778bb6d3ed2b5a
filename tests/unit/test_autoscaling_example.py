"""examples/autoscaling/ stays a valid demo: its manifests decode and validate as
the API would take them, the autoscaler targets the Deployment in the same file,
and that Deployment requests the CPU a Utilization target is measured against."""

from __future__ import annotations

from pathlib import Path

from corral.api import kinds
from corral.api.defaults import apply_defaults
from corral.api.validation import validate
from corral.cli.apply import manifest_files, parse_manifests

DEMO = Path(__file__).resolve().parents[2] / "examples" / "autoscaling"


def test_the_demo_is_valid_and_consistent() -> None:
    objects = [obj for f in manifest_files(str(DEMO))
               for obj in parse_manifests(f.read_text(), str(f))]
    by_kind = {obj["kind"]: obj for obj in objects}
    assert set(by_kind) == {"Namespace", "Deployment", "Service", "HorizontalPodAutoscaler"}
    for obj in objects:
        model = kinds.decode(obj["kind"], obj)
        assert not kinds.unknown_fields(model), obj["kind"]
        apply_defaults(model)
        assert validate(model) == [], obj["kind"]
    hpa, deploy = by_kind["HorizontalPodAutoscaler"], by_kind["Deployment"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deploy["metadata"]["name"]}
    for container in deploy["spec"]["template"]["spec"]["containers"]:
        assert container["resources"]["requests"]["cpu"]
