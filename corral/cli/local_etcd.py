"""A local N-member etcd cluster on loopback, for `corral up --masters N`.

    DATA_DIR/etcd/cluster.json      the members' names and ports, chosen on the
                                    first start and reused after (etcd keeps its
                                    peers' URLs in its data)
    DATA_DIR/etcd/<name>/           each member's data dir
    DATA_DIR/logs/<name>.log        each member's log

Ports: member i takes client port 2379 + 10000*i and peer port 2380 + 10000*i
(etcd's own local-cluster layout: 2379, 12379, 22379) when all are free on the
first start, else ports the kernel hands out. etcd is Debian's `etcd-server`,
which scripts/install.sh installs.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from corral.port_probe import bind_error

HOST = "127.0.0.1"
CLUSTER_TOKEN = "corral-local"


class EtcdMissing(RuntimeError):
    pass


def etcd_binary() -> str:
    path = shutil.which("etcd")
    if path is None:
        raise EtcdMissing("etcd is not installed: run scripts/install.sh (as root it installs "
                          "Debian's etcd-server), or `sudo apt-get install etcd-server`")
    return path


@dataclass(frozen=True)
class EtcdMember:
    name: str
    client_port: int
    peer_port: int

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"http://{HOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{HOST}:{self.peer_port}"


def _port_free(port: int) -> bool:
    return bind_error(HOST, port) is None


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def choose_members(count: int, *, prefer_standard: bool = True) -> list[EtcdMember]:
    standard = [EtcdMember(f"etcd-{i + 1}", 2379 + 10000 * i, 2380 + 10000 * i)
                for i in range(count)]
    if prefer_standard and all(_port_free(m.client_port) and _port_free(m.peer_port)
                               for m in standard):
        return standard
    return [EtcdMember(f"etcd-{i + 1}", _kernel_port(), _kernel_port()) for i in range(count)]


class LocalEtcd:
    """The members of one local cluster and how to start each (as a child the
    caller owns: ``command`` gives the argv, the caller spawns and stops it)."""

    def __init__(self, base: Path, members: list[EtcdMember]) -> None:
        self.base = base
        self.members = members

    @classmethod
    def load_or_create(cls, base: Path, count: int, *,
                       prefer_standard: bool = True) -> LocalEtcd:
        """The cluster recorded under ``base``, or a new one of ``count`` members.
        Raises ValueError if ``base`` holds a cluster of another size."""
        record = base / "cluster.json"
        if record.exists():
            members = [EtcdMember(**m) for m in json.loads(record.read_text())["members"]]
            if len(members) != count:
                raise ValueError(f"{base} holds a {len(members)}-member etcd cluster, not "
                                 f"{count}: use --masters {len(members)} or another --data-dir")
            return cls(base, members)
        members = choose_members(count, prefer_standard=prefer_standard)
        base.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"members": [asdict(m) for m in members]}, indent=1))
        return cls(base, members)

    @property
    def endpoints(self) -> str:
        return ",".join(m.endpoint for m in self.members)

    @property
    def store_url(self) -> str:
        return f"etcd://{self.endpoints}"

    def data_dir(self, member: EtcdMember) -> Path:
        return self.base / member.name

    def command(self, member: EtcdMember) -> list[str]:
        cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        return [
            etcd_binary(), "--name", member.name, "--data-dir", str(self.data_dir(member)),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", CLUSTER_TOKEN,
            "--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
        ]

    def spawn(self, member: EtcdMember, log_path: Path) -> subprocess.Popen[bytes]:
        """Start ``member`` in its own process group, its output to ``log_path``."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            return subprocess.Popen(self.command(member), stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
