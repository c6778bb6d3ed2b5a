"""The pod: its spec (containers plus where and how to run them), its template
(as controllers stamp it out) and its status as the agent reports it."""

from __future__ import annotations

from pydantic import Field

from corral.api.kinds.affinity import Affinity, Toleration, TopologySpreadConstraint
from corral.api.kinds.base import Int32, Int64, KubeModel, Opaque, Quantity, Time
from corral.api.kinds.container import Container
from corral.api.kinds.meta import Condition, ObjectMeta


class Volume(KubeModel):
    """A named volume. Sources are kept as written: the agent interprets the few
    it supports (emptyDir, hostPath, configMap, secret)."""

    name: str
    empty_dir: Opaque | None = None
    host_path: Opaque | None = None
    config_map: Opaque | None = None
    secret: Opaque | None = None
    projected: Opaque | None = None
    downward_api: Opaque | None = Field(default=None, alias="downwardAPI")
    persistent_volume_claim: Opaque | None = None
    ephemeral: Opaque | None = None
    csi: Opaque | None = None
    nfs: Opaque | None = None
    image: Opaque | None = None
    git_repo: Opaque | None = None
    iscsi: Opaque | None = None
    rbd: Opaque | None = None
    cephfs: Opaque | None = None
    fc: Opaque | None = None
    glusterfs: Opaque | None = None
    flex_volume: Opaque | None = None
    aws_elastic_block_store: Opaque | None = None
    gce_persistent_disk: Opaque | None = None
    azure_disk: Opaque | None = None
    azure_file: Opaque | None = None
    cinder: Opaque | None = None
    flocker: Opaque | None = None
    photon_persistent_disk: Opaque | None = None
    portworx_volume: Opaque | None = None
    quobyte: Opaque | None = None
    scale_io: Opaque | None = Field(default=None, alias="scaleIO")
    storageos: Opaque | None = None
    vsphere_volume: Opaque | None = None


class LocalObjectReference(KubeModel):
    name: str | None = None


class HostAlias(KubeModel):
    ip: str
    hostnames: list[str] | None = None


class PodSpec(KubeModel):
    containers: list[Container] = Field(default_factory=list)
    init_containers: list[Container] | None = None
    ephemeral_containers: list[Opaque] | None = None
    volumes: list[Volume] | None = None
    restart_policy: str | None = None  # Always, OnFailure, Never
    termination_grace_period_seconds: Int64 | None = None
    active_deadline_seconds: Int64 | None = None
    dns_policy: str | None = None
    dns_config: Opaque | None = None
    node_selector: dict[str, str] | None = None
    node_name: str | None = None
    service_account_name: str | None = None
    service_account: str | None = None  # deprecated alias of serviceAccountName
    automount_service_account_token: bool | None = None
    host_network: bool | None = None
    host_pid: bool | None = Field(default=None, alias="hostPID")
    host_ipc: bool | None = Field(default=None, alias="hostIPC")
    host_users: bool | None = None
    share_process_namespace: bool | None = None
    security_context: Opaque | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    hostname: str | None = None
    hostname_override: str | None = None
    subdomain: str | None = None
    set_hostname_as_fqdn: bool | None = Field(default=None, alias="setHostnameAsFQDN")
    host_aliases: list[HostAlias] | None = None
    affinity: Affinity | None = None
    scheduler_name: str | None = None
    tolerations: list[Toleration] | None = None
    priority_class_name: str | None = None
    priority: Int32 | None = None
    preemption_policy: str | None = None  # PreemptLowerPriority, Never
    readiness_gates: list[Opaque] | None = None
    runtime_class_name: str | None = None
    enable_service_links: bool | None = None
    overhead: dict[str, Quantity] | None = None
    topology_spread_constraints: list[TopologySpreadConstraint] | None = None
    os: Opaque | None = None
    scheduling_gates: list[Opaque] | None = None
    resource_claims: list[Opaque] | None = None
    resources: Opaque | None = None


class PodTemplateSpec(KubeModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec = Field(default_factory=PodSpec)


class ContainerStateWaiting(KubeModel):
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(KubeModel):
    started_at: Time | None = None


class ContainerStateTerminated(KubeModel):
    exit_code: Int32
    signal: Int32 | None = None
    reason: str | None = None
    message: str | None = None
    started_at: Time | None = None
    finished_at: Time | None = None
    container_id: str | None = Field(default=None, alias="containerID")


class ContainerState(KubeModel):
    """Exactly one of waiting, running, terminated is set."""

    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class ContainerStatus(KubeModel):
    name: str
    ready: bool = False
    restart_count: Int32 = 0
    image: str = ""
    image_id: str = Field(default="", alias="imageID")
    state: ContainerState | None = None
    last_state: ContainerState | None = None
    started: bool | None = None
    container_id: str | None = Field(default=None, alias="containerID")
    allocated_resources: dict[str, Quantity] | None = None
    allocated_resources_status: list[Opaque] | None = None
    resources: Opaque | None = None
    user: Opaque | None = None
    volume_mounts: list[Opaque] | None = None
    stop_signal: str | None = None


class PodIP(KubeModel):
    ip: str


class PortMapping(KubeModel):
    """corral extension: where a containerPort really listens. Processes share the
    node's network, so the agent allocates a host port per containerPort and
    reports it here; the Endpoints controller and the proxy target hostIP:hostPort."""

    container_name: str
    container_port: Int32
    host_ip: str = Field(alias="hostIP")
    host_port: Int32
    protocol: str = "TCP"
    name: str | None = None


class PodStatus(KubeModel):
    phase: str | None = None  # Pending, Running, Succeeded, Failed, Unknown
    conditions: list[Condition] | None = None
    message: str | None = None
    reason: str | None = None
    nominated_node_name: str | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")
    host_ips: list[PodIP] | None = Field(default=None, alias="hostIPs")
    pod_ip: str | None = Field(default=None, alias="podIP")
    pod_ips: list[PodIP] | None = Field(default=None, alias="podIPs")
    start_time: Time | None = None
    init_container_statuses: list[ContainerStatus] | None = None
    container_statuses: list[ContainerStatus] | None = None
    ephemeral_container_statuses: list[ContainerStatus] | None = None
    qos_class: str | None = None  # Guaranteed, Burstable, BestEffort
    resize: str | None = None
    observed_generation: Int64 | None = None
    resources: Opaque | None = None
    resource_claim_statuses: list[Opaque] | None = None
    port_mappings: list[PortMapping] | None = None  # corral extension, see PortMapping
