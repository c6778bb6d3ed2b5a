"""Secrets at rest with a real master, the real kubectl and the real SQLite file:
what the file holds is read from its bytes and tables, never through corral."""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.cluster import Master
from tests.kubectl import Kubectl
from tests.poll import wait_for

IDENTITY_ONLY = """apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers: [{identity: {}}]
"""


def on_disk(data_dir: Path, value: str) -> bool:
    """Whether the base64 of ``value`` (how a Secret's data is stored) is anywhere
    in the database file or its write-ahead log."""
    mark = base64.b64encode(value.encode())
    return any(mark in p.read_bytes() for p in data_dir.glob("state.db*") if p.is_file())


def stored_prefix(data_dir: Path, name: str, namespace: str = "default") -> bytes:
    db = sqlite3.connect(data_dir / "state.db")
    try:
        row = db.execute("SELECT value FROM current WHERE name = ?",
                         (f"/registry/core/secrets/{namespace}/{name}",)).fetchone()
    finally:
        db.close()
    return b":".join(bytes(row[0]).split(b":", 5)[:5]) + b":"  # k8s:enc:<provider>:v1:<key>:


def test_secrets_are_sealed_in_state_db_and_identity_data_stays_readable(
        tmp_path: Path) -> None:
    data = tmp_path / "master"
    plain_config = tmp_path / "identity.yaml"
    plain_config.write_text(IDENTITY_ONLY)
    quiet = ["--disable", "scheduler", "--disable", "controllers"]  # only the test writes
    master = Master(data, extra_args=[*quiet, "--encryption-provider-config", str(plain_config)])
    kubectl = Kubectl(master, tmp_path / "kubecache")
    master.start()
    try:
        kubectl("create", "secret", "generic", "before", "--from-literal=pw=OLD-value-7f3a")
        assert on_disk(data, "OLD-value-7f3a")  # the check can see a value in clear
    finally:
        master.stop()

    master.extra_args = quiet  # the default: DATA_DIR/encryption-config.yaml, made now
    master.start()
    try:
        config = data / "encryption-config.yaml"
        assert config.stat().st_mode & 0o777 == 0o600
        assert _value(kubectl, "before") == "OLD-value-7f3a"  # written under identity
        kubectl("create", "secret", "generic", "after", "--from-literal=pw=NEW-value-9c1e")
        assert _value(kubectl, "after") == "NEW-value-9c1e"
        assert not on_disk(data, "NEW-value-9c1e")
        assert stored_prefix(data, "after") == b"k8s:enc:secretbox:v1:key1:"
        kubectl("replace", "-f", "-", input=kubectl("get", "secret", "before", "-o", "json"))
        assert stored_prefix(data, "before") == b"k8s:enc:secretbox:v1:key1:"

        # The key taken away (the file is re-read while serving): a 503 naming it.
        kept = config.read_text()
        config.write_text(IDENTITY_ONLY)
        refused = wait_for(lambda: _refused(kubectl, "after"), what="the key to be gone")
        assert "ServiceUnavailable" in refused and "key 'key1' of secretbox" in refused
        config.write_text(kept)
        assert wait_for(lambda: _value(kubectl, "after") == "NEW-value-9c1e",
                        what="the key to be back")
    finally:
        master.stop()


def _value(kubectl: Kubectl, name: str, namespace: str = "default") -> str:
    out = kubectl.run("get", "secret", name, "-n", namespace, "-o", "jsonpath={.data.pw}")
    return base64.b64decode(out.stdout).decode() if out.returncode == 0 else ""


def _refused(kubectl: Kubectl, name: str) -> str:
    out = kubectl.run("get", "secret", name)
    return out.stderr if out.returncode != 0 else ""


def test_rotate_key_reseals_every_secret_and_retires_the_old_key(tmp_path: Path) -> None:
    data = tmp_path / "master"
    master = Master(data, extra_args=["--disable", "scheduler", "--disable", "controllers"])
    kubectl = Kubectl(master, tmp_path / "kubecache")
    master.start()
    try:
        kubectl("create", "namespace", "other")
        for ns, name in (("default", "a"), ("default", "b"), ("other", "c")):
            kubectl("create", "secret", "generic", name, "-n", ns, f"--from-literal=pw={name}-v")
        assert stored_prefix(data, "a") == b"k8s:enc:secretbox:v1:key1:"
        rotated = subprocess.run(
            [sys.executable, "-m", "corral.cli.main", "secrets", "rotate-key",
             "--data-dir", str(data), "--timeout", "60"],
            capture_output=True, text=True, timeout=180, check=False)
        assert rotated.returncode == 0, rotated.stderr
        lines = rotated.stdout.splitlines()
        assert lines[0].startswith("staged key2") and lines[1].startswith("promoted key2")
        assert "re-wrote 3 Secrets with key2" in lines[2] and lines[3].startswith("retired key1")
        keys = (data / "encryption-config.yaml").read_text()
        assert "key2" in keys and "key1" not in keys  # the old key is gone from the file
        for ns, name in (("default", "a"), ("default", "b"), ("other", "c")):
            assert _value(kubectl, name, ns) == f"{name}-v"
            assert stored_prefix(data, name, ns) == b"k8s:enc:secretbox:v1:key2:"
    finally:
        master.stop()
