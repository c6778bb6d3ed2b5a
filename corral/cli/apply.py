"""`corral apply -f FILE|DIR|-`: create or update objects from manifests, as
client-side `kubectl apply` does.

    manifest ──GET──► 404 → POST with the last-applied annotation   "created"
                 └──► found → three-way patch:
                        last-applied (what we applied before)
                        manifest     (what we apply now)
                        live object  (what the server has)
                      empty → no request                            "unchanged"
                      else  → PATCH merge-patch                     "configured"

The patch sets what the manifest says where the live object differs, and
nulls fields that the previous apply set but this manifest dropped; fields
others set (and server defaults) are left alone. Lists are replaced whole
(merge-patch semantics) when they differ in a field the manifest sets.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from corral.api.errors import APIError, NotFound
from corral.cli.verb import (
    UsageError,
    add_client_flags,
    error_line,
    qualified_kind,
    resource_arg,
    run_verb,
)
from corral.client.http import Client
from corral.objects import Obj

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


# -- reading manifests ---------------------------------------------------------

def manifest_files(path: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.suffix in MANIFEST_SUFFIXES and f.is_file())
    if not p.exists():
        raise UsageError(f'the path "{path}" does not exist')
    return [p]


def parse_manifests(text: str, source: str) -> list[Obj]:
    """Every object in a multi-document YAML (or JSON) text; List kinds are unpacked."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise UsageError(f"error parsing {source}: {e}") from None
    return [obj for doc in docs if doc is not None for obj in _unpack(doc, source)]


def _unpack(doc: Any, source: str) -> Iterator[Obj]:
    if not isinstance(doc, dict) or not doc.get("kind"):
        raise UsageError(f"error validating {source}: every document needs a kind")
    if str(doc["kind"]).endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from _unpack(item, source)
    else:
        yield doc


def read_manifests(paths: list[str]) -> list[Obj]:
    objs: list[Obj] = []
    for path in paths:
        if path == "-":
            objs += parse_manifests(sys.stdin.read(), "stdin")
            continue
        for file in manifest_files(path):
            objs += parse_manifests(file.read_text(), str(file))
    return objs


# -- the three-way patch -------------------------------------------------------

def _covers(live: Any, wanted: Any) -> bool:
    """Whether ``live`` already says everything ``wanted`` says (it may say more:
    server defaults, fields others manage)."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(_covers(live.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(live, list) and len(live) == len(wanted)
                and all(_covers(a, b) for a, b in zip(live, wanted, strict=True)))
    return bool(live == wanted)


def three_way_patch(original: Obj | None, modified: Obj, live: Obj) -> Obj:
    """A merge patch taking ``live`` to what ``modified`` asks, deleting what
    ``original`` (the previous apply) set and ``modified`` no longer does."""
    patch: Obj = {}
    for key, want in modified.items():
        have = live.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            before = (original or {}).get(key)
            sub = three_way_patch(before if isinstance(before, dict) else None, want, have)
            if sub:
                patch[key] = sub
        elif not _covers(have, want):
            patch[key] = want
    for key in (original or {}):
        if key not in modified and key in live:
            patch[key] = None
    return patch


def _with_last_applied(obj: Obj) -> tuple[Obj, str]:
    manifest = json.loads(json.dumps(obj))  # a deep copy
    annotations = manifest.setdefault("metadata", {}).get("annotations") or {}
    annotations.pop(LAST_APPLIED, None)
    if not annotations:
        manifest["metadata"].pop("annotations", None)
    recorded = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    out = json.loads(recorded)
    out["metadata"].setdefault("annotations", {})[LAST_APPLIED] = recorded + "\n"
    return out, recorded


async def apply_one(client: Client, obj: Obj, namespace: str | None = None) -> str:
    """Apply one manifest; returns kubectl's line ("deployment.apps/web created")."""
    res = resource_arg(str(obj["kind"]))
    desired, _ = _with_last_applied(obj)
    meta = desired["metadata"]
    name = meta.get("name")
    if not name:
        raise UsageError(f"a {res.kind} in the manifests has no metadata.name")
    ns = (meta.get("namespace") or namespace or "default") if res.namespaced else None
    if ns:
        meta["namespace"] = ns
    label = f"{qualified_kind(res)}/{name}"
    try:
        live = await client.get(res, name, ns)
    except NotFound:
        await client.create(desired, ns)
        return f"{label} created"
    previous = (live.get("metadata", {}).get("annotations") or {}).get(LAST_APPLIED)
    original = json.loads(previous) if previous else None
    patch = three_way_patch(original, desired, live)
    if not patch:
        return f"{label} unchanged"
    await client.patch(res, name, patch, ns, patch_type="merge")
    return f"{label} configured"


async def apply_paths(paths: list[str], *, kubeconfig: str | None = None,
                      namespace: str | None = None, client: Client | None = None) -> int:
    """Apply every manifest under ``paths`` in order, printing a line each."""
    objs = read_manifests(paths)
    if client is None:
        async with Client.from_kubeconfig(kubeconfig) as own:
            return await _apply_all(own, objs, namespace)
    return await _apply_all(client, objs, namespace)


async def _apply_all(client: Client, objs: list[Obj], namespace: str | None) -> int:
    """Namespaces go first so a directory's manifests may come in any file order;
    an object that fails is reported and the rest still applied, as kubectl does."""
    if not objs:
        raise UsageError("no objects passed to apply")
    failed = 0
    for obj in sorted(objs, key=lambda o: o.get("kind") != "Namespace"):
        try:
            print(await apply_one(client, obj, namespace), flush=True)
        except APIError as err:
            failed += 1
            print(error_line(err), file=sys.stderr, flush=True)
    return 1 if failed else 0


async def _run(client: Client, args: argparse.Namespace) -> int:
    return await apply_paths(args.filename, namespace=args.namespace, client=client)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("apply", help="create or update objects from manifests")
    p.add_argument("-f", "--filename", action="append", required=True,
                   help="manifest file, directory of manifests, or - for stdin (repeatable)")
    add_client_flags(p)
    p.set_defaults(run=lambda args: run_verb(args, _run))
