"""The backend the Service tests run as pods, and a client that opens one TCP
connection per request (so every request is a new proxied connection).

The server answers GET / with its pod name, /env with its environment as JSON,
/readyz (the readiness probe) with 200 or 503, and /unready, /reready flip that.
On SIGTERM it turns not-ready and keeps serving DRAIN seconds before exiting,
as a well-behaved Kubernetes backend does (a preStop sleep), so a rolling update
loses no request that was already on its way.
"""

from __future__ import annotations

import http.client
import json
import time

from corral.objects import Obj
from tests import manifests

DRAIN_SECONDS = 2.0

SERVER = f"""
import http.server, json, os, signal, threading
READY = threading.Event()
READY.set()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/readyz":
            ok = READY.is_set()
            self.send(200 if ok else 503, b"ok" if ok else b"not ready")
        elif self.path == "/env":
            self.send(200, json.dumps(dict(os.environ)).encode())
        elif self.path == "/unready":
            READY.clear()
            self.send(200, b"unready")
        elif self.path == "/reready":
            READY.set()
            self.send(200, b"ready")
        else:
            self.send(200, os.environ["HOSTNAME"].encode())

    def send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer((os.environ["HOST_IP"], int(os.environ["PORT"])),
                                         Handler)

def drain(*_):
    READY.clear()
    threading.Timer({DRAIN_SECONDS}, server.shutdown).start()

signal.signal(signal.SIGTERM, drain)
server.serve_forever()
"""


def pod_template(app: str, version: str = "1") -> Obj:
    """The pod spec part shared by bare pods and Deployments."""
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [{
                "name": "web",
                # The node's python3 (stdlib only): the pod's user cannot run the
                # test's interpreter under /root.
                "command": ["python3", "-c", SERVER],
                "env": [{"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath":
                                                                        "status.hostIP"}}},
                        {"name": "VERSION", "value": version}],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                                   "periodSeconds": 1, "failureThreshold": 1},
            }],
        },
    }


def pod(name: str, app: str, node: str) -> Obj:
    template = pod_template(app)
    return manifests.pod(name, labels=template["metadata"]["labels"],
                         **{**template["spec"], "nodeName": node})


def deployment(name: str, replicas: int, version: str = "1") -> Obj:
    return manifests.deployment(name, replicas, template=pod_template(name, version), strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})


def service(name: str, app: str, kind: str = "NodePort", cluster_ip: str | None = None) -> Obj:
    extra = {"clusterIP": cluster_ip} if cluster_ip is not None else {}
    return manifests.service(name, {"app": app}, type=kind,
                             ports=[{"port": 80, "targetPort": "http"}], **extra)


class RequestFailed(Exception):
    pass


def fetch(host: str, port: int, path: str = "/", timeout: float = 5.0) -> str:
    """One GET on a fresh connection; RequestFailed on anything but a 200."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
    except (OSError, http.client.HTTPException) as err:
        raise RequestFailed(f"{host}:{port}{path}: {err!r}") from err
    finally:
        conn.close()
    if response.status != 200:
        raise RequestFailed(f"{host}:{port}{path}: HTTP {response.status} {body}")
    return body


def names_seen(host: str, port: int, count: int) -> list[str]:
    return [fetch(host, port) for _ in range(count)]


def reach_all(host: str, port: int, wanted: set[str], timeout: float = 30.0) -> set[str]:
    """Send requests until every name in ``wanted`` has answered (or time runs out);
    returns every name seen. Failed requests are retried: use this to wait."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while not wanted <= seen and time.monotonic() < deadline:
        try:
            seen.add(fetch(host, port, timeout=2.0))
        except RequestFailed:
            time.sleep(0.05)
    return seen


def env_of(host: str, port: int) -> dict[str, str]:
    return json.loads(fetch(host, port, "/env"))  # type: ignore[no-any-return]
