from __future__ import annotations

from corral.proxy.resolvconf import resolv_conf


def test_cluster_first_search_path() -> None:
    assert resolv_conf("127.0.0.53", "prod") == (
        "nameserver 127.0.0.53\n"
        "search prod.svc.cluster.local svc.cluster.local cluster.local\n"
        "options ndots:5\n")
