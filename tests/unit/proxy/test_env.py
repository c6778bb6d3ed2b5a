"""Service env vars, compared with what the kubelet writes for the same Services."""

from __future__ import annotations

from corral.proxy.env import service_env
from corral.proxy.model import ServicePortKey, ServiceProxySpec


def test_kubernetes_and_docker_link_variables() -> None:
    services = {
        ServicePortKey("default", "redis-primary", "redis"): ServiceProxySpec("10.0.0.11", 6379),
        ServicePortKey("default", "redis-primary", "metrics"): ServiceProxySpec(
            "10.0.0.11", 9121, "UDP"),
    }
    assert service_env(services) == {
        "REDIS_PRIMARY_SERVICE_HOST": "10.0.0.11",
        "REDIS_PRIMARY_SERVICE_PORT": "6379",
        "REDIS_PRIMARY_SERVICE_PORT_REDIS": "6379",
        "REDIS_PRIMARY_SERVICE_PORT_METRICS": "9121",
        "REDIS_PRIMARY_PORT": "tcp://10.0.0.11:6379",
        "REDIS_PRIMARY_PORT_6379_TCP": "tcp://10.0.0.11:6379",
        "REDIS_PRIMARY_PORT_6379_TCP_PROTO": "tcp",
        "REDIS_PRIMARY_PORT_6379_TCP_PORT": "6379",
        "REDIS_PRIMARY_PORT_6379_TCP_ADDR": "10.0.0.11",
        "REDIS_PRIMARY_PORT_9121_UDP": "udp://10.0.0.11:9121",
        "REDIS_PRIMARY_PORT_9121_UDP_PROTO": "udp",
        "REDIS_PRIMARY_PORT_9121_UDP_PORT": "9121",
        "REDIS_PRIMARY_PORT_9121_UDP_ADDR": "10.0.0.11",
    }


def test_unnamed_port_has_no_named_variable() -> None:
    env = service_env({ServicePortKey("default", "web"): ServiceProxySpec("127.100.0.1", 80)})
    assert env["WEB_SERVICE_PORT"] == "80"
    assert not [name for name in env if name.startswith("WEB_SERVICE_PORT_")]


def test_headless_and_other_namespaces_are_left_out() -> None:
    services = {
        ServicePortKey("default", "web"): ServiceProxySpec("127.100.0.1", 80),
        ServicePortKey("default", "db"): ServiceProxySpec(None, 5432),
        ServicePortKey("prod", "api"): ServiceProxySpec("127.100.0.2", 80),
    }
    env = service_env(services, namespace="default")
    assert "WEB_SERVICE_HOST" in env
    assert not [name for name in env if name.startswith(("DB_", "API_"))]
    assert "API_SERVICE_HOST" in service_env(services)
