"""A container: what to run, its environment, ports, resources, probes."""

from __future__ import annotations

from pydantic import Field

from corral.api.kinds.base import Int32, Int64, IntOrString, KubeModel, Opaque, Quantity


class ObjectFieldSelector(KubeModel):
    field_path: str
    api_version: str | None = None


class KeySelector(KubeModel):
    """configMapKeyRef / secretKeyRef."""

    key: str
    name: str | None = None
    optional: bool | None = None


class EnvVarSource(KubeModel):
    field_ref: ObjectFieldSelector | None = None
    config_map_key_ref: KeySelector | None = None
    secret_key_ref: KeySelector | None = None
    resource_field_ref: Opaque | None = None


class EnvVar(KubeModel):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class NameRef(KubeModel):
    name: str | None = None
    optional: bool | None = None


class EnvFromSource(KubeModel):
    prefix: str | None = None
    config_map_ref: NameRef | None = None
    secret_ref: NameRef | None = None


class ContainerPort(KubeModel):
    container_port: Int32
    name: str | None = None
    host_port: Int32 | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")
    protocol: str | None = None  # TCP, UDP, SCTP


class ResourceRequirements(KubeModel):
    requests: dict[str, Quantity] | None = None
    limits: dict[str, Quantity] | None = None
    claims: list[Opaque] | None = None


class ExecAction(KubeModel):
    command: list[str] | None = None


class HTTPHeader(KubeModel):
    name: str
    value: str


class HTTPGetAction(KubeModel):
    port: IntOrString
    path: str | None = None
    host: str | None = None
    scheme: str | None = None  # HTTP, HTTPS
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(KubeModel):
    port: IntOrString
    host: str | None = None


class GRPCAction(KubeModel):
    port: Int32
    service: str | None = None


class Probe(KubeModel):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    grpc: GRPCAction | None = None
    initial_delay_seconds: Int32 | None = None
    period_seconds: Int32 | None = None
    timeout_seconds: Int32 | None = None
    success_threshold: Int32 | None = None
    failure_threshold: Int32 | None = None
    termination_grace_period_seconds: Int64 | None = None

    def handlers(self) -> list[str]:
        """The wire names of the handlers set (exactly one is valid)."""
        named = {"exec": self.exec, "httpGet": self.http_get, "tcpSocket": self.tcp_socket,
                 "grpc": self.grpc}
        return [name for name, handler in named.items() if handler is not None]


class VolumeMount(KubeModel):
    name: str
    mount_path: str
    read_only: bool | None = None
    sub_path: str | None = None
    sub_path_expr: str | None = None
    mount_propagation: str | None = None
    recursive_read_only: str | None = None


class Container(KubeModel):
    name: str
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    env: list[EnvVar] | None = None
    env_from: list[EnvFromSource] | None = None
    ports: list[ContainerPort] | None = None
    resources: ResourceRequirements | None = None
    resize_policy: list[Opaque] | None = None
    restart_policy: str | None = None  # "Always" makes an init container a sidecar
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: Opaque | None = None
    image_pull_policy: str | None = None  # Always, IfNotPresent, Never
    volume_mounts: list[VolumeMount] | None = None
    volume_devices: list[Opaque] | None = None
    security_context: Opaque | None = None
    termination_message_path: str | None = None
    termination_message_policy: str | None = None
    stdin: bool | None = None
    stdin_once: bool | None = None
    tty: bool | None = None

    def probes(self) -> dict[str, Probe]:
        """The probes set, by wire name (livenessProbe, readinessProbe, startupProbe)."""
        named = {"livenessProbe": self.liveness_probe, "readinessProbe": self.readiness_probe,
                 "startupProbe": self.startup_probe}
        return {name: probe for name, probe in named.items() if probe is not None}
