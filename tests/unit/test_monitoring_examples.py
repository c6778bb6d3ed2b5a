"""examples/monitoring/ stays true to the metrics the components expose, and
is never mistaken for manifests by `corral up --apply examples/`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from corral.agent.metrics import AGENT_METRICS
from corral.api.metrics import API_METRICS
from corral.cli.apply import manifest_files
from corral.client.metrics import WORKQUEUE_METRICS
from corral.scheduler.metrics import SCHEDULER_METRICS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MONITORING = EXAMPLES / "monitoring"
PROMQL_WORDS = {"sum", "by", "rate", "histogram_quantile", "max", "le", "verb", "code",
                "resource", "result", "queue", "name", "operation_type", "node"}


def exposed_samples() -> set[str]:
    names: set[str] = set()
    for registry in (API_METRICS.registry, SCHEDULER_METRICS.registry,
                     WORKQUEUE_METRICS.registry, AGENT_METRICS.registry):
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            names.add(family.name)
            names.update(s.name for s in family.samples)
            if family.type == "counter":
                names.add(f"{family.name}_total")
            if family.type == "histogram":
                names.update(f"{family.name}_{s}" for s in ("bucket", "sum", "count"))
    return names


def test_every_grafana_query_names_an_exposed_metric() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exposed = exposed_samples()
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^]]*\]', "", target["expr"])
            used.update(w for w in re.findall(r"[a-z_]+", expr) if w not in PROMQL_WORDS)
    assert used, "no metric found in the dashboard"
    assert used <= exposed, sorted(used - exposed)
    families = {"apiserver_", "scheduler_", "workqueue_", "kubelet_", "corral_proxy_",
                "corral_agent_"}
    assert all(any(u.startswith(f) for u in used) for f in families)


def test_scrape_config_covers_every_component() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"corral-master", "corral-agents", "corral-scheduler",
                         "corral-controllers"}
    relabel = jobs["corral-agents"]["relabel_configs"]
    assert any(r.get("replacement") == "/api/v1/nodes/${1}/proxy/metrics" for r in relabel)


def test_apply_of_examples_does_not_read_the_monitoring_folder() -> None:
    files = manifest_files(str(EXAMPLES))
    assert files and all(f.parent == EXAMPLES for f in files)
