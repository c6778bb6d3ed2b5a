"""The `default/kubernetes` Service: where pods find the API (what
KUBERNETES_SERVICE_HOST/PORT name, and `kubernetes.default.svc` resolves to).

As kube-apiserver does, the server makes it on start with the first address of
the service range as its clusterIP and port 443 named https; that address and
the Service's DNS names are in the serving certificate, so an in-cluster
client verifying the master's certificate against its ca.crt succeeds. It has
no selector: its Endpoints are the masters' own addresses, kept current by the
controller manager from the masters' presence Leases
(corral/controllers/masters.py).
"""

from __future__ import annotations

import ipaddress
import logging

from corral.api.errors import AlreadyExists, Invalid
from corral.api.registry import Registry
from corral.api.resources import BY_KIND
from corral.objects import Obj

log = logging.getLogger(__name__)

NAME, NAMESPACE = "kubernetes", "default"
PORT_NAME, PORT = "https", 443
DNS_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local")


def first_service_ip(cidr: str) -> str:
    network = ipaddress.ip_network(cidr, strict=False)
    return str(network.network_address + 1)


def master_service(cidr: str, api_port: int) -> Obj:
    ip = first_service_ip(cidr)
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE,
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                 "sessionAffinity": "None",
                 "ports": [{"name": PORT_NAME, "port": PORT, "protocol": "TCP",
                            "targetPort": api_port}]},
    }


async def ensure_master_service(registry: Registry, cidr: str, api_port: int) -> None:
    try:
        await registry.create(BY_KIND["Service"], NAMESPACE, master_service(cidr, api_port))
    except AlreadyExists:
        pass
    except Invalid as err:  # a data dir whose first address another Service holds
        log.warning("no default/kubernetes Service error=%s", err.message)
