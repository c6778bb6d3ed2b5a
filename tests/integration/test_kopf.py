"""A kopf operator (examples/kopf-operator) run for real against a master: kopf
discovers the WebApp CRD, its create handler makes a Deployment the WebApp owns
and writes the WebApp's status, an update handler rescales, and deleting the
WebApp runs the delete handler behind kopf's finalizer."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Master, stop_process
from tests.kubectl import Kubectl
from tests.poll import wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kopf-operator"
NS = "kopf"
WAIT = 60.0  # kopf's first sync and the loaded machine


@pytest.fixture(scope="module")
def operator(master: Master, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[tuple[Kubectl, subprocess.Popen[bytes]]]:
    kubectl = Kubectl(master, tmp_path_factory.mktemp("kubecache"))
    kubectl("create", "namespace", NS)
    kubectl("apply", "-f", str(EXAMPLE / "webapp-crd.yaml"))
    log = (tmp_path_factory.mktemp("kopf") / "kopf.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", NS,
         str(EXAMPLE / "operator.py")],
        env=kubectl.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield kubectl, proc
    finally:
        stop_process(proc)
        log.close()


def _get(kubectl: Kubectl, *what: str) -> Any:
    proc = kubectl.run("get", *what, "-n", NS, "-o", "json")
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def test_operator_creates_updates_and_cleans_up(
        operator: tuple[Kubectl, subprocess.Popen[bytes]]) -> None:
    kubectl, proc = operator
    kubectl("apply", "-n", NS, "-f", str(EXAMPLE / "webapp.yaml"))
    deployment = wait_for(lambda: _get(kubectl, "deployment", "hello"), WAIT,
                          "the operator's Deployment")
    webapp = _get(kubectl, "webapp", "hello")
    [owner] = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("WebApp", webapp["metadata"]["uid"])
    assert deployment["spec"]["replicas"] == 2
    status = wait_for(lambda: (_get(kubectl, "webapp", "hello") or {}).get("status"), WAIT,
                      "the WebApp's status")
    assert (status["deployment"], status["phase"]) == ("hello", "Deployed")
    assert any(f.startswith("kopf.zalando.org/") for f in
               _get(kubectl, "webapp", "hello")["metadata"]["finalizers"])
    table = kubectl("get", "wa", "-n", NS).split()
    assert table[:4] == ["NAME", "REPLICAS", "DEPLOYMENT", "AGE"] and table[4:7] == [
        "hello", "2", "hello"]

    kubectl("patch", "webapp", "hello", "-n", NS, "--type=merge", "-p",
            '{"spec":{"replicas":3}}')
    wait_for(lambda: _get(kubectl, "deployment", "hello")["spec"]["replicas"] == 3, WAIT,
             "the Deployment rescaled")

    kubectl("delete", "webapp", "hello", "-n", NS, "--wait=false")
    wait_for(lambda: _get(kubectl, "webapp", "hello") is None, WAIT, "the WebApp gone")
    wait_for(lambda: _get(kubectl, "deployment", "hello") is None, WAIT,
             "the Deployment deleted by the delete handler")
    assert proc.poll() is None  # the operator kept running throughout
