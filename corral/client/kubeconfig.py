"""Read and write the kubeconfig file kubectl uses.

Which file: an explicit path, else the first entry of $KUBECONFIG, else
./.corral/kubeconfig (the local master's) if it exists, else ~/.kube/config.
Of that file only the current context is read: its cluster's server and CA
(inline data or a file) and its user's bearer token (inline or a file) or client
certificate and key (files: Python's TLS loads them only from files).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

LOCAL_KUBECONFIG = Path(".corral") / "kubeconfig"


class KubeconfigError(Exception):
    """The kubeconfig is missing, unreadable, or names a context/cluster/user it lacks.
    Retrying does not help: fix the file or point at another one."""


@dataclass(frozen=True)
class ClusterConfig:
    server: str
    ca_pem: bytes | None = None
    token: str | None = None
    insecure: bool = False
    client_cert: tuple[str, str] | None = None  # certificate and key files


def default_path() -> Path:
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    if first:
        return Path(first).expanduser()
    if LOCAL_KUBECONFIG.exists():
        return LOCAL_KUBECONFIG
    return Path.home() / ".kube" / "config"


def load_kubeconfig(path: str | os.PathLike[str] | None = None) -> ClusterConfig:
    file = Path(path).expanduser() if path else default_path()
    try:
        doc = yaml.safe_load(file.read_text())
    except OSError as e:
        raise KubeconfigError(f"cannot read kubeconfig {file}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise KubeconfigError(f"kubeconfig {file} is not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise KubeconfigError(f"kubeconfig {file} is empty or not a mapping")
    return _from_document(doc, file.parent)


def _named(doc: dict[str, Any], section: str, name: str, file_dir: Path) -> dict[str, Any]:
    key = section[:-1]  # "clusters" -> "cluster"
    for entry in doc.get(section) or []:
        if entry.get("name") == name:
            return dict(entry.get(key) or {})
    raise KubeconfigError(f"kubeconfig in {file_dir} has no {key} named {name!r}")


def _from_document(doc: dict[str, Any], file_dir: Path) -> ClusterConfig:
    current = doc.get("current-context") or ""
    contexts = doc.get("contexts") or []
    if not current and len(contexts) == 1:
        current = contexts[0].get("name", "")
    if not current:
        raise KubeconfigError("kubeconfig has no current-context")
    context = _named(doc, "contexts", current, file_dir)
    cluster = _named(doc, "clusters", context.get("cluster", ""), file_dir)
    user = _named(doc, "users", context["user"], file_dir) if context.get("user") else {}
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f"cluster {context.get('cluster')!r} has no server")
    return ClusterConfig(
        server=str(server).rstrip("/"),
        ca_pem=_ca_pem(cluster, file_dir),
        token=_token(user, file_dir),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        client_cert=_client_cert(user, file_dir),
    )


def _resolve(file_dir: Path, name: str) -> Path:
    # Relative paths in a kubeconfig are relative to the file, as kubectl reads them.
    p = Path(name).expanduser()
    return p if p.is_absolute() else file_dir / p


def _ca_pem(cluster: dict[str, Any], file_dir: Path) -> bytes | None:
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    if cluster.get("certificate-authority"):
        path = _resolve(file_dir, cluster["certificate-authority"])
        try:
            return path.read_bytes()
        except OSError as e:
            raise KubeconfigError(f"cannot read certificate-authority {path}: {e.strerror}") \
                from None
    return None


def _token(user: dict[str, Any], file_dir: Path) -> str | None:
    if user.get("token"):
        return str(user["token"])
    if user.get("tokenFile"):
        path = _resolve(file_dir, user["tokenFile"])
        try:
            return path.read_text().strip()
        except OSError as e:
            raise KubeconfigError(f"cannot read tokenFile {path}: {e.strerror}") from None
    return None


def _client_cert(user: dict[str, Any], file_dir: Path) -> tuple[str, str] | None:
    if user.get("client-certificate-data") or user.get("client-key-data"):
        raise KubeconfigError("client-certificate-data is not supported: name the "
                              "certificate and key files (client-certificate, client-key)")
    cert, key = user.get("client-certificate"), user.get("client-key")
    if not cert and not key:
        return None
    if not (cert and key):
        raise KubeconfigError("a kubeconfig user needs both client-certificate and client-key")
    return str(_resolve(file_dir, cert)), str(_resolve(file_dir, key))


def write_kubeconfig(path: str | os.PathLike[str], server: str, ca_pem: bytes | None,
                     token: str | None, context_name: str = "corral",
                     client_cert: tuple[str, str] | None = None) -> None:
    """Write a one-context kubeconfig readable only by its owner (it holds the token),
    with a bearer token or the paths of a client certificate and key."""
    cluster: dict[str, Any] = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    user: dict[str, str] = {"token": token} if token else {}
    if client_cert is not None:
        user = {"client-certificate": client_cert[0], "client-key": client_cert[1]}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context_name, "cluster": cluster}],
        "users": [{"name": context_name, "user": user}],
        "contexts": [{"name": context_name,
                      "context": {"cluster": context_name, "user": context_name}}],
        "current-context": context_name,
        "preferences": {},
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Several masters sharing a data dir write the same file: a temp name each.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(yaml.safe_dump(doc, sort_keys=False))
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)  # readers never see a half-written file
