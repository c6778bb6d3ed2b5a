"""How a component process (agent, scheduler, controllers) finds the master:
`--server` (one URL, or several: the client fails over between them), `--kubeconfig`, `--token-file`,
`--ca-file`, `--insecure-skip-tls-verify`. Flags win over the kubeconfig; with
neither a server flag nor a kubeconfig path, kubectl's search order applies."""

from __future__ import annotations

import argparse
from pathlib import Path

from corral.client.kubeconfig import ClusterConfig, KubeconfigError, load_kubeconfig


def _urls(value: str) -> list[str]:
    urls = [u.strip().rstrip("/") for u in value.split(",") if u.strip()]
    if not urls or any(not u.startswith(("http://", "https://")) for u in urls):
        raise argparse.ArgumentTypeError("--server wants URL[,URL2,...]")
    return urls


def add_connection_flags(p: argparse.ArgumentParser, *, several_servers: bool = False,
                         insecure: bool = True) -> None:
    p.add_argument("--server", type=_urls, default=None,
                   help=("master URL(s), comma-separated" if several_servers else "master URL")
                   + " (default: the kubeconfig's)")
    p.add_argument("--kubeconfig", default=None, help="kubeconfig with server, CA and token")
    p.add_argument("--token-file", type=Path, default=None, help="file holding the token")
    p.add_argument("--ca-file", type=Path, default=None, help="the cluster CA (PEM)")
    if insecure:
        p.add_argument("--insecure-skip-tls-verify", action="store_true",
                       help="do not verify the master's certificate")


def connection(args: argparse.Namespace) -> tuple[list[str], ClusterConfig]:
    """(every server URL given, their config: ``server`` lists them all, comma-
    separated, which the Client takes as masters to fail over between). Raises
    KubeconfigError."""
    servers: list[str] = list(args.server or [])
    token: str | None = None
    ca_pem: bytes | None = None
    insecure = bool(getattr(args, "insecure_skip_tls_verify", False))
    client_cert: tuple[str, str] | None = None
    if args.kubeconfig or not servers:
        cluster = load_kubeconfig(args.kubeconfig)
        servers = servers or [cluster.server]
        token, ca_pem, insecure = cluster.token, cluster.ca_pem, insecure or cluster.insecure
        client_cert = cluster.client_cert
    if args.token_file:
        token = args.token_file.read_text().strip()
    if args.ca_file:
        ca_pem = args.ca_file.read_bytes()
    if not servers:
        raise KubeconfigError("no master: give --server or --kubeconfig")
    return servers, ClusterConfig(",".join(servers), ca_pem, token, insecure, client_cert)
