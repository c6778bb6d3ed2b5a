"""The real kubectl against a real `corral master` over HTTPS with the bearer token."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from tests.cluster import Master
from tests.kubectl import kubectl_binary
from tests.poll import wait_for

MANIFEST = """
apiVersion: v1
kind: Namespace
metadata:
  name: kc
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: kc
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: http
          image: python:3.11
          imagePullPolicy: IfNotPresent
          command: ["python3", "-m", "http.server", "$(PORT)"]
          env:
            - {name: GREETING, value: hello}
            - {name: MODE, value: fast}
          ports:
            - {name: http, containerPort: 8080}
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {cpu: 500m, memory: 128Mi}
          readinessProbe:
            httpGet: {path: /, port: http}
            periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: kc
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: kc
data:
  level: "3"
"""


@pytest.fixture(scope="module")
def kubectl(master: Master, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cache = tmp_path_factory.mktemp("kubecache")
    env = {**os.environ, "KUBECONFIG": str(master.kubeconfig), "KUBECACHEDIR": str(cache)}

    def run(*args: str, input: str | None = None, check: bool = True) -> str:
        proc = subprocess.run([kubectl_binary(), "--cache-dir", str(cache), *args], input=input,
                              capture_output=True, text=True, env=env, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stderr}")
        return proc.stdout + (proc.stderr if not check else "")

    run.env = env  # type: ignore[attr-defined]
    run("apply", "-f", "-", input=MANIFEST)
    return run


def test_apply_created_everything(kubectl) -> None:  # type: ignore[no-untyped-def]
    out = kubectl("get", "deployments,services,configmaps", "-n", "kc", "-o", "name")
    assert "deployment.apps/web" in out and "service/web" in out
    assert "configmap/settings" in out


def test_get_table(kubectl) -> None:  # type: ignore[no-untyped-def]
    out = kubectl("get", "deployments", "-n", "kc")
    header = out.splitlines()[0].split()
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out.splitlines()[1].split()[:2] == ["web", "0/2"]
    wide = kubectl("get", "deployments", "-n", "kc", "-o", "wide").splitlines()[0].split()
    assert "CONTAINERS" in wide and "SELECTOR" in wide
    ns = kubectl("get", "namespaces").splitlines()
    assert ns[0].split() == ["NAME", "STATUS", "AGE"]
    assert any(line.split()[:2] == ["kc", "Active"] for line in ns)


def test_get_pods_wide_and_all_namespaces(kubectl, master: Master) -> None:  # type: ignore[no-untyped-def]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo", "namespace": "kc"},
           "spec": {"nodeName": "node-1",
                    "containers": [{"name": "c", "image": "x", "command": ["sleep", "9"]}]}}
    kubectl("create", "-f", "-", input=json.dumps(pod))
    out = kubectl("get", "pods", "-n", "kc", "-o", "wide").splitlines()
    assert out[0].split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "NODE" in out[0] and "IP" in out[0]
    row = next(line for line in out if line.startswith("solo"))
    assert "0/1" in row and "Pending" in row and "node-1" in row
    everything = kubectl("get", "pods", "-A").splitlines()
    assert everything[0].split()[0] == "NAMESPACE"
    assert any(line.split()[:2] == ["kc", "solo"] for line in everything)


def test_get_yaml(kubectl) -> None:  # type: ignore[no-untyped-def]
    obj = yaml.safe_load(kubectl("get", "deployment", "web", "-n", "kc", "-o", "yaml"))
    assert obj["kind"] == "Deployment" and obj["spec"]["replicas"] == 2
    annotations = obj["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in annotations


def test_describe(kubectl) -> None:  # type: ignore[no-untyped-def]
    out = kubectl("describe", "deployment", "web", "-n", "kc")
    assert "Name:" in out and "web" in out and "Replicas:" in out
    assert "RollingUpdate" in out


def test_patch_and_scale(kubectl) -> None:  # type: ignore[no-untyped-def]
    kubectl("patch", "configmap", "settings", "-n", "kc", "-p", '{"data":{"level":"4"}}')
    got = json.loads(kubectl("get", "configmap", "settings", "-n", "kc", "-o", "json"))
    assert got["data"]["level"] == "4"
    out = kubectl("scale", "deployment", "web", "-n", "kc", "--replicas=4")
    assert "scaled" in out
    got = json.loads(kubectl("get", "deployment", "web", "-n", "kc", "-o", "json"))
    assert got["spec"]["replicas"] == 4


def test_apply_again_after_edit(kubectl) -> None:  # type: ignore[no-untyped-def]
    edited = MANIFEST.replace("replicas: 2", "replicas: 3").replace(
        "            - {name: MODE, value: fast}\n", "").replace("hello", "bonjour")
    out = kubectl("apply", "-f", "-", input=edited)
    assert "deployment.apps/web configured" in out
    assert "configmap/settings unchanged" in out or "configmap/settings configured" in out
    got = json.loads(kubectl("get", "deployment", "web", "-n", "kc", "-o", "json"))
    assert got["spec"]["replicas"] == 3
    env = got["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "GREETING", "value": "bonjour"}]  # MODE removed by the 3-way patch
    assert got["metadata"]["generation"] >= 2


def test_diff_shows_only_what_would_change(kubectl) -> None:  # type: ignore[no-untyped-def]
    """kubectl diff compares the live object with a server-side dry run, which
    keeps the resourceVersion (nothing was written): only the change shows."""
    settings = MANIFEST[MANIFEST.rindex("apiVersion: v1\nkind: ConfigMap"):]
    proc = subprocess.run([kubectl_binary(), "diff", "-f", "-"],
                          input=settings.replace('level: "3"', 'level: "5"'),
                          capture_output=True, text=True, env=kubectl.env, timeout=60,
                          check=False)
    assert proc.returncode == 1, proc.stderr  # 1: differences found
    changed = [line for line in proc.stdout.splitlines()
               if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert '+  level: "5"' in changed, proc.stdout
    assert not [line for line in changed if "resourceVersion" in line], proc.stdout


def test_get_watch_receives_event(kubectl, master: Master) -> None:  # type: ignore[no-untyped-def]
    def create(name: str) -> None:
        kubectl("apply", "-f", "-", input=kubectl("create", "configmap", name, "-n", "kc",
                                                  "--from-literal=a=b", "--dry-run=client",
                                                  "-o", "yaml"))

    create("listed")  # printed by the list kubectl -w starts with: its watch follows from there
    proc = subprocess.Popen(
        [kubectl_binary(), "get", "configmaps", "-n", "kc", "-w", "--request-timeout=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kubectl.env,
        start_new_session=True,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)

        def printed(name: str) -> bool:
            while chunk := proc.stdout.readline():  # type: ignore[union-attr]
                lines.append(chunk)
            return any(line.startswith(name) for line in lines)

        wait_for(lambda: printed("listed"), timeout=15, what="kubectl's list")
        create("watched")
        wait_for(lambda: printed("watched"), timeout=15, what="the watch event")
    finally:
        proc.kill()
        proc.wait()


def test_errors_read_like_kubernetes(kubectl) -> None:  # type: ignore[no-untyped-def]
    out = kubectl("get", "pod", "nope", "-n", "kc", check=False)
    assert 'Error from server (NotFound): pods "nope" not found' in out
    bad = MANIFEST.split("---")[1].replace("replicas: 2", "replicas: -1")
    out = kubectl("apply", "-f", "-", input=bad, check=False)
    assert "is invalid" in out and "spec.replicas" in out


def test_delete(kubectl) -> None:  # type: ignore[no-untyped-def]
    kubectl("delete", "configmap", "settings", "-n", "kc")
    out = kubectl("get", "configmap", "settings", "-n", "kc", check=False)
    assert "NotFound" in out


def test_version(kubectl) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(kubectl("version", "-o", "json"))
    assert out["serverVersion"]["minor"].startswith("32")
