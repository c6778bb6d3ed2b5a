"""The API server process part: store, bootstrap, credentials, HTTP(S) listener.

First start in a data dir makes a CA and serving certificate (pki/) and an admin
token (token); later starts reuse them. The kubeconfig that kubectl and every
corral command read is written by the command that starts the master
(corral/cli/master.py) from ``url``, ``ca_pem`` and ``token``: the API layer
knows nothing of clients.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from ssl import CERT_OPTIONAL, SSLContext
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from corral.aiotasks import cancel_and_wait
from corral.api.admission import default_plugins
from corral.api.alloc_users import TaskUserCheck
from corral.api.allocation import (
    DEFAULT_NODE_PORT_RANGE,
    DEFAULT_SERVICE_CIDR,
    IpRange,
    PortRange,
    ServiceAllocation,
)
from corral.api.app import build_app
from corral.api.audit.policy import Policy, PolicyError, default_policy, load_policy
from corral.api.audit.sink import AuditLog
from corral.api.auth import (
    CONTROLLER_MANAGER,
    MESOS_MASTER,
    SCHEDULER,
    TokenAuthenticator,
    User,
    ensure_admin_token,
    ensure_user_token,
)
from corral.api.cert_reload import DEFAULT_INTERVAL_SECONDS, CertificateReloader, LoadedPair
from corral.api.certificates.admission import CsrAdmission
from corral.api.certificates.signer import (
    DEFAULT_DURATION,
    KUBELET_CLIENT_CN,
    KUBELET_CLIENT_STEM,
    Signer,
)
from corral.api.connections import ConnectionLimits, TlsWebSocketProtocol, guarded_protocol
from corral.api.crd.serving import CrdServing
from corral.api.encryption.config import load_config
from corral.api.encryption.files import ensure_default
from corral.api.encryption.store import EncryptingStore
from corral.api.errors import AlreadyExists
from corral.api.fairness import MAX_REQUESTS_INFLIGHT
from corral.api.fencing import FencingStore
from corral.api.handlers.node_proxy import AgentCredentials, NodeProxy
from corral.api.handlers.oidc import IssuerDiscovery
from corral.api.handlers.proxy import ProxyHandler
from corral.api.handlers.reviews import TokenCheck
from corral.api.handlers.streams import StreamRelay
from corral.api.handlers.token_request import TokenRequests
from corral.api.health import Health
from corral.api.listener import BatchListener
from corral.api.login_tickets import LoginTickets
from corral.api.master_service import DNS_NAMES, ensure_master_service, first_service_ip
from corral.api.metrics import API_METRICS
from corral.api.node_endpoints import EndpointWriterAdmission
from corral.api.node_restriction import NodeLabelAdmission
from corral.api.priorityclasses import priority_class_objects
from corral.api.quiet_server import QuietServer
from corral.api.rbac import RbacAuthorizer
from corral.api.rbac_cache import RbacCache, ensure_default_policy
from corral.api.rbac_escalation import EscalationCheck
from corral.api.registry import Registry
from corral.api.registry.delete import IMMORTAL_NAMESPACES
from corral.api.resources import BY_KIND
from corral.api.sa_auth import ServiceAccountAuthenticator
from corral.api.sa_tokens import ISSUER, TokenSigner, ensure_signing_key
from corral.api.session import SessionCookie
from corral.api.tls import ensure_pki
from corral.api.token_store import TOKENS_FILE, HashedTokens
from corral.private_files import SEARCH_ONLY, private_dir, tighten
from corral.store.base import Store
from corral.store.open import open_store
from corral.ui.app import Dashboard

log = logging.getLogger("corral.api")

DEFAULT_NAMESPACES = IMMORTAL_NAMESPACES
# The in-master components, each with a credential of its own (`corral master`
# also writes DATA_DIR/<name>.kubeconfig for running them as separate processes).
COMPONENT_USERS = {"scheduler": SCHEDULER, "controllers": CONTROLLER_MANAGER,
                   "mesos": MESOS_MASTER}


@dataclass
class ServerConfig:
    data_dir: Path
    store_url: str = ""  # default: sqlite:///<data_dir>/state.db
    host: str = "127.0.0.1"
    port: int = 6443
    insecure_http: bool = False
    extra_sans: list[str] = field(default_factory=list)
    service_cidr: str = DEFAULT_SERVICE_CIDR  # clusterIPs come from here (inside 127/8)
    node_port_range: str = DEFAULT_NODE_PORT_RANGE
    kubeconfig_server: str = ""  # the URL the kubeconfig names (default: this master's)
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    max_requests_inflight: int = MAX_REQUESTS_INFLIGHT  # seats over all lanes (fairness.py)
    # EncryptionConfiguration file; "" = DATA_DIR/encryption-config.yaml, made on first start
    encryption_config: str = ""
    encryption_reload_seconds: float = 1.0  # how often the file is checked for a change
    # how often the master's own certificates are renewed if due and reloaded if changed
    cert_check_seconds: float = DEFAULT_INTERVAL_SECONDS
    audit_log_path: str = ""  # "" = no audit log
    audit_policy_file: str = ""  # "" = audit/policy.py's DEFAULT_POLICY
    audit_log_maxsize: float = 100  # megabytes before the file is rotated (0: never)
    audit_log_maxbackup: int = 10  # rotated files kept (0: all)
    # The longest certificate the cluster CA signs for a CertificateSigningRequest
    # (kube-controller-manager's --cluster-signing-duration).
    cluster_signing_duration: dt.timedelta = DEFAULT_DURATION

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{(self.data_dir / 'state.db').resolve()}"

    @property
    def url(self) -> str:
        scheme = "http" if self.insecure_http else "https"
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"{scheme}://{host}:{self.port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.data_dir / "kubeconfig"

    def encryption_config_path(self) -> Path:
        if self.encryption_config:
            return Path(self.encryption_config)
        return ensure_default(self.data_dir)


async def bootstrap(registry: Registry) -> None:
    ns = BY_KIND["Namespace"]
    for name in DEFAULT_NAMESPACES:
        try:
            await registry.create(ns, None, {"metadata": {"name": name}})
        except AlreadyExists:
            pass
        # The namespaces the server makes have their `default` ServiceAccount from
        # the start, whether or not a controller manager runs yet (it makes the
        # others': corral/controllers/serviceaccounts.py).
        try:
            await registry.create(BY_KIND["ServiceAccount"], name,
                                  {"metadata": {"name": "default", "namespace": name}})
        except AlreadyExists:
            pass
    # Borg's bands ship as PriorityClasses (monitoring, production, batch, best-effort).
    for pc in priority_class_objects():
        try:
            await registry.create(BY_KIND["PriorityClass"], None, pc)
        except AlreadyExists:
            pass


def _cert_hosts(cfg: ServerConfig) -> list[str]:
    # Pods reach the API at the default/kubernetes Service (master_service.py).
    hosts = ["127.0.0.1", "::1", "localhost", socket.gethostname(), *cfg.extra_sans,
             first_service_ip(cfg.service_cidr), *DNS_NAMES]
    if cfg.host not in ("0.0.0.0", "::") and cfg.host not in hosts:
        hosts.append(cfg.host)
    return hosts


def _token_check(static: TokenAuthenticator, accounts: ServiceAccountAuthenticator
                 ) -> TokenCheck:
    """Every token the server accepts, for TokenReview and the request path: the
    token file's and `corral token`'s (meant for this API, so for its audience
    only), then ServiceAccount tokens."""
    async def check(token: str, audiences: tuple[str, ...]) -> tuple[User | None, str]:
        user = static.authenticate(f"Bearer {token}")
        if user is not None:
            if audiences and ISSUER not in audiences:
                return None, "token audiences are invalid for the target audiences"
            return user, ""
        return await accounts.authenticate(token, audiences or (ISSUER,))
    return check


class _Server(QuietServer):
    """uvicorn, quiet (quiet_server.py), with its own listener, which accepts in
    batches (listener.py says why)."""

    def __init__(self, config: uvicorn.Config, handshake_timeout: float) -> None:
        super().__init__(config)
        self.handshake_timeout = handshake_timeout

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # everything but the listening socket
        config = self.config

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state)

        listener = BatchListener.open(config.host, config.port, config.backlog, protocol,
                                      config.ssl, self.handshake_timeout)
        self.servers = [listener]  # type: ignore[list-item]  # closed as uvicorn closes its own


class ApiServer:
    """Owns the store and the HTTP listener; ``run()`` serves until ``stop()``."""

    def __init__(self, cfg: ServerConfig) -> None:
        self.cfg = cfg
        self.store: Store | None = None
        self.registry: Registry | None = None
        self._server: uvicorn.Server | None = None
        self._node_proxy: NodeProxy | None = None
        self._proxy: ProxyHandler | None = None
        self.allocation: ServiceAllocation | None = None
        self.crds: CrdServing | None = None  # serves the stored CRDs' kinds
        self.app: ASGIApp | None = None  # built by open(); served by run()
        self.health: Health | None = None  # built by open(); components add their checks
        self.token = ""
        self.component_tokens: dict[str, str] = {}  # by COMPONENT_USERS name
        self.ca_pem: bytes | None = None  # the cluster CA clients trust (None over plain HTTP)
        self._ssl: dict[str, Any] = {}
        # Who may do what: every request and every access review asks this.
        self.authorizer = RbacAuthorizer()
        self._rbac: RbacCache | None = None
        self.encryption: EncryptingStore | None = None
        self.audit: AuditLog | None = None
        self._reloads: asyncio.Task[None] | None = None
        self._cert_reloads: asyncio.Task[None] | None = None
        self.signer: Signer | None = None

    async def open(self) -> Registry:
        cfg = self.cfg
        ip_range, port_range = IpRange.parse(cfg.service_cidr), PortRange.parse(
            cfg.node_port_range)
        # Keys, tokens and state.db are never a pod's to read: the files are 0600 and
        # their directories 0700; the data dir itself lists nothing to others but
        # lets pods through to their own working directories when it holds agents'
        # state (`corral up`).
        private_dir(cfg.data_dir, SEARCH_ONLY)
        # A bad encryption config stops the start (ConfigError), before the store opens.
        path = cfg.encryption_config_path()
        encryption = load_config(path)
        self.store = await open_store(cfg.resolved_store_url)
        self.encryption = EncryptingStore(self.store, encryption, path)
        self._report_encryption()
        self._reloads = asyncio.create_task(self._reload_encryption(), name="encryption-reload")
        self.registry = Registry(FencingStore(self.encryption))
        # Allocation first: a later plugin refusing leaves claims that settle frees
        # in seconds, while a quota charged before a refused allocation stays
        # until a recount.
        self.allocation = ServiceAllocation(self.registry, ip_range, port_range)
        self.registry.admission.append(self.allocation)
        self.registry.admission.extend(default_plugins(self.registry))
        # Signs approved CertificateSigningRequests with the cluster CA (made below).
        self.signer = None if cfg.insecure_http else Signer(cfg.data_dir / "pki",
                                                            cfg.cluster_signing_duration)
        self.registry.admission.append(CsrAdmission(self.authorizer, self.signer))
        # NodeRestriction's label rule, and who wrote each Node's agent endpoint.
        self.registry.admission += [NodeLabelAdmission(), EndpointWriterAdmission()]
        self.crds = CrdServing(self.registry)
        await bootstrap(self.registry)
        await ensure_master_service(self.registry, cfg.service_cidr, cfg.port)
        await ensure_default_policy(self.registry)
        self._rbac = RbacCache(self.encryption)
        await self._rbac.start()
        self.authorizer.state = self._rbac.state
        self.registry.admission.append(EscalationCheck(self.authorizer))
        self.registry.admission.append(TaskUserCheck(self.authorizer))
        await self.crds.start()
        self.app = self._build_app()
        return self.registry

    def _open_audit(self) -> tuple[Policy, AuditLog] | None:
        cfg = self.cfg
        if not cfg.audit_log_path:
            return None
        # A bad policy or a log that cannot be written stops the start (PolicyError,
        # naming the flag), as a bad encryption config does.
        try:
            policy = load_policy(Path(cfg.audit_policy_file)) if cfg.audit_policy_file \
                else default_policy()
        except PolicyError as err:
            raise PolicyError(f"--audit-policy-file {cfg.audit_policy_file}: {err}") from None
        try:
            self.audit = AuditLog(Path(cfg.audit_log_path), max_megabytes=cfg.audit_log_maxsize,
                                  max_backups=cfg.audit_log_maxbackup)
        except OSError as err:
            raise PolicyError(f"--audit-log-path {cfg.audit_log_path}: {err.strerror or err}"
                              ) from None
        self.audit.start()
        log.info("audit log path=%s policy=%s", cfg.audit_log_path,
                 cfg.audit_policy_file or "default")
        return policy, self.audit

    def _report_encryption(self) -> None:
        assert self.encryption is not None
        server_id = hashlib.sha256(self.cfg.url.encode()).hexdigest()[:16]
        API_METRICS.encryption_config_loaded(server_id, self.encryption.digest)

    async def _reload_encryption(self) -> None:
        """kube-apiserver's automatic reload: a changed file takes effect within
        the interval (a file it cannot use is logged, the old one stays)."""
        assert self.encryption is not None
        while True:
            await asyncio.sleep(self.cfg.encryption_reload_seconds)
            if self.encryption.reload():
                self._report_encryption()

    def _build_app(self) -> ASGIApp:
        assert self.registry is not None
        cfg = self.cfg
        self.token = ensure_admin_token(cfg.data_dir)
        self.component_tokens = {name: ensure_user_token(cfg.data_dir, user)
                                 for name, user in COMPONENT_USERS.items()}
        ssl: dict[str, Any] = {}
        if not cfg.insecure_http:
            pki = ensure_pki(cfg.data_dir, _cert_hosts(cfg))
            # Clients may show a certificate of the cluster CA (x509_auth.py).
            ssl = {"ssl_certfile": str(pki.cert_path), "ssl_keyfile": str(pki.key_path),
                   "ssl_ca_certs": str(pki.ca_path), "ssl_cert_reqs": CERT_OPTIONAL}
            self.ca_pem = pki.ca_pem
        # kubectl sends no Authorization header over plain HTTP, so --insecure-http
        # means no authentication at all (and says so in the log).
        authenticator = None if cfg.insecure_http else TokenAuthenticator(
            cfg.data_dir / "token", HashedTokens(cfg.data_dir / TOKENS_FILE).authenticate)
        session = SessionCookie.for_ca(self.ca_pem) if self.ca_pem is not None else None
        signer = TokenSigner(ensure_signing_key(cfg.data_dir / "pki"))
        accounts = ServiceAccountAuthenticator(signer, self.registry)
        if cfg.insecure_http:
            log.warning("serving plain HTTP without authentication url=%s", cfg.url)
        store = self.store
        assert store is not None
        API_METRICS.track_store_revision(lambda: float(getattr(store, "revision", 0)))
        # The master calls agents with a client certificate of its own (node_proxy.py).
        credentials = None
        if self.signer is not None:
            files = self.signer.ensure_client_cert(KUBELET_CLIENT_STEM, KUBELET_CLIENT_CN)
            credentials = AgentCredentials(cfg.data_dir / "pki" / "ca.crt", files.cert, files.key)
        # After everything the start writes there: what an older master or a copy,
        # or a writer with umask 022 (certificates), left readable.
        tighten(cfg.data_dir, root_mode=SEARCH_ONLY)
        self._node_proxy = NodeProxy(self.registry, credentials)
        self._proxy = ProxyHandler(self.registry)
        self._ssl = ssl
        self.health = Health(self.registry)
        return build_app(self.registry, authenticator, logs=self._node_proxy.pod_log,
                         nodes=self._node_proxy.node_proxy,
                         streams=StreamRelay(self._node_proxy), proxy=self._proxy,
                         health=self.health, max_requests_inflight=cfg.max_requests_inflight,
                         ui=Dashboard(authenticator, session, LoginTickets(self.registry)),
                         session=session, store_status=store.status,
                         authorizer=self.authorizer, summaries=self._node_proxy.stats_summary,
                         token_requests=TokenRequests(self.registry, signer),
                         issuer_discovery=IssuerDiscovery(signer, cfg.kubeconfig_server or cfg.url),
                         tokens=_token_check(authenticator, accounts) if authenticator else None,
                         audit=self._open_audit())

    async def run(self) -> None:
        assert self.app is not None, "open() first"
        cfg, ssl = self.cfg, self._ssl
        config = uvicorn.Config(
            self.app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
            lifespan="off", timeout_keep_alive=120, timeout_graceful_shutdown=2,
            # wsproto (see pyproject.toml: kubectl's port-forward subprotocol), with the
            # client certificate in the scope as for plain HTTP requests
            ws=TlsWebSocketProtocol,
            backlog=4096, http=guarded_protocol(cfg.connections),
            **ssl,
        )
        self._server = _Server(config, cfg.connections.header_timeout)
        config.load()  # the serving SSLContext, built now so it can be reloaded
        if config.ssl is not None:
            self._cert_reloads = asyncio.create_task(
                self._certificates(config.ssl).run(), name="certificate-reload")
        log.info("api server listening url=%s store=%s kubeconfig=%s", cfg.url,
                 cfg.resolved_store_url, cfg.kubeconfig_path)
        await self._server.serve()

    def agent_context(self) -> SSLContext | None:
        """What the master calls agents with (the CA, its kubelet-client pair,
        reloaded when renewed): the node proxy's, and the Mesos component's direct
        line (corral/offers/agentlink.py). None over plain HTTP."""
        return self._node_proxy.tls if self._node_proxy is not None else None

    def _certificates(self, serving: SSLContext) -> CertificateReloader:
        cfg, signer = self.cfg, self.signer
        assert self._node_proxy is not None and signer is not None
        pki = cfg.data_dir / "pki"
        pairs = [LoadedPair("serving", pki / "server.crt", pki / "server.key", serving)]
        if self._node_proxy.tls is not None:
            files = signer.ensure_client_cert(KUBELET_CLIENT_STEM, KUBELET_CLIENT_CN)
            pairs.append(LoadedPair("kubelet-client", files.cert, files.key,
                                    self._node_proxy.tls))
        for pair in pairs:
            pair.mark_loaded()

        def renew() -> None:
            ensure_pki(cfg.data_dir, _cert_hosts(cfg))
            signer.ensure_client_cert(KUBELET_CLIENT_STEM, KUBELET_CLIENT_CN)

        return CertificateReloader(renew, pairs, cfg.cert_check_seconds)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    async def close(self) -> None:
        if self.audit is not None:  # what is queued is written
            await self.audit.close()
            self.audit = None
        for task in (self._reloads, self._cert_reloads):
            if task is not None:
                await cancel_and_wait(task)
        self._reloads = self._cert_reloads = None
        if self._rbac is not None:
            await self._rbac.close()
            self._rbac = None
        if self.crds is not None:
            await self.crds.aclose()
            self.crds = None
        if self.allocation is not None:
            await self.allocation.aclose()
            self.allocation = None
        if self._node_proxy is not None:
            await self._node_proxy.aclose()
            self._node_proxy = None
        if self._proxy is not None:
            await self._proxy.aclose()
            self._proxy = None
        if self.store is not None:
            await self.store.close()
            self.store = None
