"""kubeconfig: which file is read, what is read from it, and how it is written."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
import yaml

from corral.client.kubeconfig import (
    ClusterConfig,
    KubeconfigError,
    default_path,
    load_kubeconfig,
    write_kubeconfig,
)

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "kubeconfig"
    write_kubeconfig(path, "https://127.0.0.1:6443", CA, "tok")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_kubeconfig(path) == ClusterConfig("https://127.0.0.1:6443", CA, "tok", False)


def test_written_file_is_what_kubectl_reads(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    write_kubeconfig(path, "https://h:1", CA, "tok", context_name="dev")
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "dev"
    assert doc["clusters"][0]["cluster"]["certificate-authority-data"] == \
        base64.b64encode(CA).decode()
    assert doc["users"][0]["user"]["token"] == "tok"


def test_without_ca_no_ca_field(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    write_kubeconfig(path, "http://127.0.0.1:8080", None, "tok")
    assert "certificate-authority-data" not in path.read_text()
    assert load_kubeconfig(path).ca_pem is None


def _multi_context(tmp_path: Path) -> Path:
    (tmp_path / "ca.crt").write_bytes(CA)
    (tmp_path / "token").write_text("from-file\n")
    doc = {
        "current-context": "b",
        "clusters": [
            {"name": "ca", "cluster": {"server": "https://a:1/"}},
            {"name": "cb", "cluster": {"server": "https://b:2", "certificate-authority": "ca.crt",
                                       "insecure-skip-tls-verify": True}},
        ],
        "users": [{"name": "ua", "user": {"token": "a"}},
                  {"name": "ub", "user": {"tokenFile": str(tmp_path / "token")}}],
        "contexts": [{"name": "a", "context": {"cluster": "ca", "user": "ua"}},
                     {"name": "b", "context": {"cluster": "cb", "user": "ub"}}],
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_current_context_ca_file_token_file(tmp_path: Path) -> None:
    cfg = load_kubeconfig(_multi_context(tmp_path))
    assert cfg == ClusterConfig("https://b:2", CA, "from-file", True)


def test_missing_user_in_file_is_an_error(tmp_path: Path) -> None:
    path = _multi_context(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["users"] = []
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(KubeconfigError, match="no user named 'ub'"):
        load_kubeconfig(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="cannot read kubeconfig"):
        load_kubeconfig(tmp_path / "absent")


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert default_path() == tmp_path / "home" / ".kube" / "config"
    (tmp_path / ".corral").mkdir()
    (tmp_path / ".corral" / "kubeconfig").write_text("")
    assert default_path() == Path(".corral") / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path}/first:{tmp_path}/second")
    assert default_path() == tmp_path / "first"
