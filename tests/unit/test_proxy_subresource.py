"""pods|services/{name}/proxy: how the target is named and resolved (Kubernetes'
[scheme:]name[:port], its error wording)."""

from __future__ import annotations

import pytest

from corral.api.errors import BadRequest, ServiceUnavailable
from corral.api.handlers.proxy import pod_address, service_address, split_name

POD = {"metadata": {"name": "web-0"}, "status": {"portMappings": [
    {"containerName": "web", "name": "http", "containerPort": 8080, "protocol": "TCP",
     "hostIP": "127.0.1.2", "hostPort": 31000},
    {"containerName": "web", "name": "dns", "containerPort": 53, "protocol": "UDP",
     "hostIP": "127.0.1.2", "hostPort": 31001}]}}
SERVICE = {"metadata": {"name": "web"}, "spec": {"ports": [
    {"name": "http", "port": 80, "targetPort": "http"}, {"name": "admin", "port": 81}]}}
ENDPOINTS = {"subsets": [{"addresses": [{"ip": "127.0.1.2"}], "notReadyAddresses":
                          [{"ip": "127.0.1.9"}],
                          "ports": [{"name": "http", "port": 31000}]}]}


def test_split_name() -> None:
    assert split_name("web") == ("http", "web", "")
    assert split_name("web:8080") == ("http", "web", "8080")
    assert split_name("https:web:443") == ("https", "web", "443")
    with pytest.raises(BadRequest):
        split_name("ftp:web:21")


def test_pod_ports_by_number_name_or_first() -> None:
    assert pod_address(POD, "8080") == pod_address(POD, "http") == pod_address(POD, "") == \
        ("127.0.1.2", 31000)
    with pytest.raises(BadRequest, match="no container port '53'"):
        pod_address(POD, "53")  # UDP is not proxied
    with pytest.raises(ServiceUnavailable, match="has no ports"):
        pod_address({"metadata": {"name": "bare"}}, "")


def test_service_ports_go_to_ready_endpoints() -> None:
    assert service_address(SERVICE, ENDPOINTS, "") == ("127.0.1.2", 31000)
    assert service_address(SERVICE, ENDPOINTS, "80") == ("127.0.1.2", 31000)
    with pytest.raises(ServiceUnavailable, match='no service port "99" found for service "web"'):
        service_address(SERVICE, ENDPOINTS, "99")
    with pytest.raises(ServiceUnavailable, match='no endpoints available for service "web"'):
        service_address(SERVICE, ENDPOINTS, "admin")
    with pytest.raises(ServiceUnavailable, match="no endpoints"):
        service_address(SERVICE, None, "http")
