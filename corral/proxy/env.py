"""Service discovery by environment, as the kubelet does it.

For each Service with a clusterIP, a pod started after it sees (name upper-cased,
'-' → '_'):

    {SVC}_SERVICE_HOST=10.0.0.11          {SVC}_PORT=tcp://10.0.0.11:6379
    {SVC}_SERVICE_PORT=6379                {SVC}_PORT_6379_TCP=tcp://10.0.0.11:6379
    {SVC}_SERVICE_PORT_{PORTNAME}=6379     {SVC}_PORT_6379_TCP_PROTO=tcp
                                           {SVC}_PORT_6379_TCP_PORT=6379
                                           {SVC}_PORT_6379_TCP_ADDR=10.0.0.11

The first port of a Service (in the mapping's order, which should be the order
of `spec.ports`) is the one `{SVC}_SERVICE_PORT` and `{SVC}_PORT` name.
"""

from __future__ import annotations

from collections.abc import Mapping

from corral.proxy.model import ServicePortKey, ServiceProxySpec


def env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(services: Mapping[ServicePortKey, ServiceProxySpec],
                namespace: str | None = None) -> dict[str, str]:
    """The variables for `services`; only those of `namespace` when it is given."""
    env: dict[str, str] = {}
    for name, ports in _by_service(services, namespace).items():
        env.update(_service_vars(env_name(name), ports))
        env.update(_link_vars(env_name(name), ports))
    return env


Ports = list[tuple[str, ServiceProxySpec]]  # (port name, spec) of one Service, first port first


def _by_service(services: Mapping[ServicePortKey, ServiceProxySpec],
                namespace: str | None) -> dict[str, Ports]:
    grouped: dict[str, Ports] = {}
    for key, spec in services.items():
        if spec.headless or (namespace is not None and key.namespace != namespace):
            continue
        grouped.setdefault(key.service, []).append((key.port_name, spec))
    return grouped


def _service_vars(prefix: str, ports: Ports) -> dict[str, str]:
    first = ports[0][1]
    env = {f"{prefix}_SERVICE_HOST": str(first.cluster_ip),
           f"{prefix}_SERVICE_PORT": str(first.port)}
    for port_name, spec in ports:
        if port_name:
            env[f"{prefix}_SERVICE_PORT_{env_name(port_name)}"] = str(spec.port)
    return env


def _link_vars(prefix: str, ports: Ports) -> dict[str, str]:
    """Docker links' variables, which Kubernetes keeps for old images."""
    env: dict[str, str] = {}
    for index, (_, spec) in enumerate(ports):
        proto = (spec.protocol or "TCP").lower()
        url = f"{proto}://{spec.cluster_ip}:{spec.port}"
        if index == 0:
            env[f"{prefix}_PORT"] = url
        port_prefix = f"{prefix}_PORT_{spec.port}_{proto.upper()}"
        env[port_prefix] = url
        env[f"{port_prefix}_PROTO"] = proto
        env[f"{port_prefix}_PORT"] = str(spec.port)
        env[f"{port_prefix}_ADDR"] = str(spec.cluster_ip)
    return env
