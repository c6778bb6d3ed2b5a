"""The CLI verbs as a user runs them, against a real master."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.cluster import Master, stop_process
from tests.poll import wait_for

MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: clitest}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: clitest, labels: {app: web}}
data: {color: blue}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: clitest}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: python, command: [sleep, "100"]}]
"""


def corral(master: Master, *args: str, stdin: str | None = None,
           ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(master.kubeconfig)}
    return subprocess.run([sys.executable, "-m", "corral.cli.main", *args], env=env, check=False,
                          input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("manifests") / "app.yaml"
    path.write_text(MANIFEST)
    return path


def test_apply_create_unchanged_configured(master: Master, manifest: Path) -> None:
    first = corral(master, "apply", "-f", str(manifest))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["namespace/clitest created",
                                         "configmap/settings created",
                                         "deployment.apps/web created"]
    again = corral(master, "apply", "-f", str(manifest))
    assert again.stdout.splitlines()[1:] == ["configmap/settings unchanged",
                                             "deployment.apps/web unchanged"]
    changed = corral(master, "apply", "-f", "-",
                     stdin=MANIFEST.replace("color: blue", "color: red"))
    assert "configmap/settings configured" in changed.stdout.splitlines()
    shown = corral(master, "get", "configmap", "settings", "-n", "clitest", "-o", "json")
    assert '"color": "red"' in shown.stdout


def test_get_table_name_yaml(master: Master, manifest: Path) -> None:
    corral(master, "apply", "-f", str(manifest))
    table = corral(master, "get", "deploy", "-n", "clitest")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[0] == "NAME" and rows[0].split()[0] == "web"
    all_ns = corral(master, "get", "configmaps", "-A", "-l", "app=web")
    assert all_ns.stdout.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    # Every namespace has the cluster's CA as kube-root-ca.crt, as in Kubernetes.
    wait_for(lambda: corral(master, "get", "deploy,cm", "-n", "clitest", "-o", "name")
             .stdout.split() == ["deployment.apps/web", "configmap/kube-root-ca.crt",
                                 "configmap/settings"], what="both kinds listed by name")
    assert "kind: Deployment" in corral(master, "get", "deploy", "web", "-n", "clitest",
                                        "-o", "yaml").stdout


def test_errors_are_one_line_and_exit_1(master: Master) -> None:
    missing = corral(master, "get", "configmap", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): configmaps "nope" not found'
    unknown = corral(master, "get", "gizmos")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == 'error: the server doesn\'t have a resource type "gizmos"'
    bad_config = corral(master, "get", "pods", "--kubeconfig", "/nonexistent/kubeconfig")
    assert bad_config.returncode == 1 and "Traceback" not in bad_config.stderr


def test_describe_shows_summary_and_events(master: Master, manifest: Path) -> None:
    corral(master, "apply", "-f", str(manifest))
    out = corral(master, "describe", "deployment", "web", "-n", "clitest")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == ["Name:", "web"]
    assert "Namespace:          clitest" in out.stdout
    assert "last-applied-configuration" not in out.stdout
    assert "Events:" in out.stdout


def test_get_watch_streams_new_rows(master: Master) -> None:
    env = {**os.environ, "KUBECONFIG": str(master.kubeconfig)}
    proc = subprocess.Popen([sys.executable, "-m", "corral.cli.main", "get", "cm", "-w",
                             "-n", "default", "-l", "watched=yes"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    guard = threading.Timer(60, lambda: stop_process(proc))  # never hang the suite
    guard.start()
    try:
        assert proc.stdout is not None
        cm = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: seen, namespace: default, "
              "labels: {watched: 'yes'}}\n")
        created = corral(master, "apply", "-f", "-", stdin=cm)
        assert created.returncode == 0, created.stderr
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[0].split()[0] == "NAME" and lines[1].split()[0] == "seen"
    finally:
        guard.cancel()
        stop_process(proc)


def test_delete_waits_until_gone(master: Master, manifest: Path) -> None:
    corral(master, "apply", "-f", str(manifest))
    out = corral(master, "delete", "cm", "settings", "-n", "clitest")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'configmap "settings" deleted'
    assert corral(master, "get", "cm", "settings", "-n", "clitest").returncode == 1
    again = corral(master, "delete", "cm", "settings", "-n", "clitest")
    assert again.returncode == 1 and "NotFound" in again.stdout + again.stderr
