"""The resolv.conf written into a pod's directory, pointing at the node's DNS server.

Kubernetes' ClusterFirst policy: short names are tried in the pod's namespace
first, then across namespaces, then the cluster domain; ndots:5 makes even
`web.prod` go through the search list before being tried as-is. resolv.conf
cannot name a port, so this only reaches a server on port 53; pods are also told
the server's address and port in env.
"""

from __future__ import annotations

from corral.proxy.dns import DEFAULT_DOMAIN


def resolv_conf(nameserver_ip: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    search = f"{namespace}.svc.{domain} svc.{domain} {domain}"
    return f"nameserver {nameserver_ip}\nsearch {search}\noptions ndots:5\n"
