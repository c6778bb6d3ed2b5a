"""`corral secrets rotate-key|rewrite`: a new key for Secrets at rest, on the
master's machine (the encryption provider config is a file there, like the
token file; corral/api/encryption/files.py edits it).

    $ corral secrets rotate-key
    staged key2 (reads, does not write)          every master runs the file
    promoted key2 (writes every Secret from now) every master runs the file
    re-wrote 14 Secrets with key2
    retired key1                                 every master runs the file

Kubernetes' procedure, with each step waited for: a master only writes with a
key once every master can read it, and the old key goes only after every Secret
was re-written (an unchanged PUT: the API seals it with the writing key). A
master "runs the file" when its /metrics reports the file's hash
(apiserver_encryption_config_controller_last_config_info); the masters are the
live ones `corral status` lists, or the kubeconfig's server alone. Interrupted,
the file is left at the step reached, every Secret readable; run it again (it
stages another key and goes through all steps).

`corral secrets rewrite` re-writes every Secret with the writing key, as
`kubectl get secrets -A -o json | kubectl replace -f -` does: after turning
encryption on, or editing the file by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from corral.api.encryption.config import ConfigError, parse_config
from corral.api.encryption.files import (
    DEFAULT_FILE,
    Doc,
    promote_key,
    read_document,
    retire_keys,
    stage_key,
    write_document,
)
from corral.api.errors import APIError, Conflict, NotFound
from corral.client.http import Client, ServerUnreachable
from corral.client.kubeconfig import ClusterConfig, load_kubeconfig
from corral.client.presence import DURATION_SECONDS, NAMESPACE, ROLE_LABEL, URL_ANNOTATION
from corral.objects import meta, parse_time, spec

_LOADED = re.compile(
    r'^apiserver_encryption_config_controller_last_config_info\{[^}]*hash="([^"]+)"')


class RotationError(Exception):
    """A step could not complete; the file stays at the step before it."""


async def masters(client: Client, cluster: ClusterConfig) -> list[str]:
    """Every live master's own URL (their presence Leases), else the kubeconfig's."""
    leases = (await client.list("Lease", NAMESPACE, label_selector=f"{ROLE_LABEL}=master")).items
    now = datetime.now(UTC)
    urls = []
    for lease in leases:
        renewed = parse_time(str(spec(lease).get("renewTime") or ""))
        url = (meta(lease).get("annotations") or {}).get(URL_ANNOTATION)
        if url and renewed and (now - renewed).total_seconds() < DURATION_SECONDS:
            urls.append(str(url))
    return sorted(urls) or [cluster.server]


async def loaded_digest(cluster: ClusterConfig, url: str) -> str:
    async with Client(url, cluster.token, cluster.ca_pem, cluster.insecure) as client:
        text = (await client.raw("GET", "/metrics")).text
    for line in text.splitlines():
        if found := _LOADED.match(line):
            return found.group(1)
    return ""


async def wait_loaded(cluster: ClusterConfig, urls: list[str], digest: str,
                      timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(urls)
    while waiting:
        seen: dict[str, str] = {}
        for url in waiting:
            try:
                seen[url] = await loaded_digest(cluster, url)
            except (APIError, ServerUnreachable) as err:
                seen[url] = f"unreachable: {err}"
        waiting = [u for u in waiting if seen[u] != digest]
        if waiting and time.monotonic() > deadline:
            raise RotationError(
                "these masters did not load the new file within "
                f"{timeout:.0f}s: " + ", ".join(f"{u} ({seen[u] or 'no report'})"
                                                for u in waiting))
        if waiting:
            await asyncio.sleep(0.2)


async def rewrite_all(client: Client) -> int:
    """PUT every Secret unchanged, so the API seals it with the writing key."""
    count = 0
    for secret in (await client.list_all("Secret")).items:
        m = meta(secret)
        for _ in range(5):
            try:
                await client.update(secret)
                count += 1
                break
            except NotFound:
                break  # deleted meanwhile: nothing left to seal
            except Conflict:  # written meanwhile (with the writing key): re-read, re-write
                try:
                    secret = await client.get("Secret", m["name"], m.get("namespace"))
                except NotFound:
                    break
        else:
            raise RotationError(f"Secret {m.get('namespace')}/{m['name']} keeps changing; "
                                "run `corral secrets rewrite` again")
    return count


class Rotation:
    def __init__(self, path: Path, cluster: ClusterConfig, timeout: float) -> None:
        self.path = path
        self.cluster = cluster
        self.timeout = timeout

    async def step(self, client: Client, doc: Doc, said: str) -> None:
        write_document(self.path, doc)
        digest = parse_config(self.path.read_bytes()).digest
        await wait_loaded(self.cluster, await masters(client, self.cluster), digest,
                          self.timeout)
        print(f"{said}; every master runs {self.path} ({digest[:19]})", flush=True)

    async def run(self) -> None:
        doc = read_document(self.path)
        async with Client.from_config(self.cluster, user_agent="corral-secrets") as client:
            staged, name = stage_key(doc)
            await self.step(client, staged, f"staged {name} (reads, does not write)")
            promoted = promote_key(staged, name)
            await self.step(client, promoted, f"promoted {name} (writes every Secret from now)")
            print(f"re-wrote {await rewrite_all(client)} Secrets with {name}", flush=True)
            retired, old = retire_keys(promoted, name)
            await self.step(client, retired, f"retired {', '.join(old) or 'nothing'}")


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.encryption_provider_config or args.data_dir / DEFAULT_FILE)


def _cluster(args: argparse.Namespace) -> ClusterConfig:
    return load_kubeconfig(args.kubeconfig or args.data_dir / "kubeconfig")


def _rotate(args: argparse.Namespace) -> int:
    try:
        asyncio.run(Rotation(_config_path(args), _cluster(args), args.timeout).run())
    except (RotationError, ConfigError, APIError, ServerUnreachable, OSError) as err:
        print(f"corral secrets rotate-key: {err}", file=sys.stderr)
        return 1
    return 0


def _rewrite(args: argparse.Namespace) -> int:
    async def run() -> int:
        async with Client.from_config(_cluster(args), user_agent="corral-secrets") as client:
            return await rewrite_all(client)

    try:
        print(f"re-wrote {asyncio.run(run())} Secrets")
    except (RotationError, APIError, ServerUnreachable, OSError) as err:
        print(f"corral secrets rewrite: {err}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("secrets", help="Secrets at rest: rotate the key, re-write them all")
    verbs = p.add_subparsers(dest="secrets_command", metavar="VERB", required=True)
    for name, run, text in (
            ("rotate-key", _rotate, "a new key: stage, promote, re-write, retire the old"),
            ("rewrite", _rewrite, "re-write every Secret with the key that writes now")):
        v = verbs.add_parser(name, help=text)
        v.add_argument("--data-dir", type=Path, default=Path(".corral"),
                       help="the master's data dir (default ./.corral)")
        v.add_argument("--kubeconfig", type=Path, default=None,
                       help="an admin kubeconfig (default DATA_DIR/kubeconfig)")
        v.set_defaults(run=run)
        if name == "rotate-key":
            v.add_argument("--encryption-provider-config", default="", metavar="PATH",
                           help="the file the masters run (default "
                                "DATA_DIR/encryption-config.yaml)")
            v.add_argument("--timeout", type=float, default=60.0,
                           help="seconds each master has to load each step (default 60)")
