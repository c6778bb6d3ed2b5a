"""`corral delete KIND NAME... | -f FILE [-l SEL] [--wait=false]`.

As kubectl: DELETE with propagationPolicy Background, print
`deployment.apps "web" deleted`, then (unless --wait=false) wait until the
object is really gone — finalizers and grace periods can keep it a while —
by watching it from the version the delete returned.
"""

from __future__ import annotations

import argparse
import asyncio

from corral.api.errors import NotFound
from corral.api.resources import Resource
from corral.cli.apply import read_manifests
from corral.cli.verb import (
    UsageError,
    add_client_flags,
    bool_flag,
    namespace_of,
    qualified_kind,
    resource_arg,
    run_verb,
)
from corral.client.http import Client
from corral.objects import Obj, meta


async def wait_gone(client: Client, res: Resource, name: str, namespace: str | None,
                    last: Obj) -> None:
    """Return once the object (the one ``last`` is, by uid) no longer exists."""
    uid = meta(last).get("uid")
    rv = meta(last).get("resourceVersion")
    while True:
        try:
            current = await client.get(res, name, namespace)
        except NotFound:
            return
        if uid and current["metadata"].get("uid") != uid:
            return  # gone, and already recreated by someone
        rv = current["metadata"].get("resourceVersion", rv)
        async for event in client.watch(res, namespace, resource_version=rv,
                                        field_selector=f"metadata.name={name}",
                                        timeout_seconds=30):
            if event.type == "DELETED":
                return


async def delete_one(client: Client, res: Resource, name: str, namespace: str | None, *,
                     wait: bool, grace_period: int | None) -> str:
    ns = namespace if res.namespaced else None
    result = await client.delete(res, name, ns, grace_period_seconds=grace_period,
                                 propagation_policy="Background")
    if wait and result.get("kind") != "Status":
        await wait_gone(client, res, name, ns, result)
    return f'{qualified_kind(res)} "{name}" deleted'


def _targets(args: argparse.Namespace) -> list[tuple[Resource, str, str | None]]:
    if args.filename:
        if args.kind:
            raise UsageError("give either -f or KIND NAME..., not both")
        return [_target_of(obj, args.namespace) for obj in read_manifests(args.filename)]
    if not args.kind:
        raise UsageError("you must specify the type of resource to delete, or -f FILE")
    res = resource_arg(args.kind)
    if not args.names and not args.selector:
        raise UsageError("resource(s) were provided, but no name was specified "
                         "(give NAME... or -l SELECTOR)")
    return [(res, n, namespace_of(args)) for n in args.names]


def _target_of(obj: Obj, namespace: str | None) -> tuple[Resource, str, str | None]:
    meta = obj.get("metadata") or {}
    return resource_arg(str(obj["kind"])), str(meta.get("name", "")), \
        meta.get("namespace") or namespace or "default"


async def _run(client: Client, args: argparse.Namespace) -> int:
    targets = _targets(args)
    if args.selector:
        res = resource_arg(args.kind)
        ns = namespace_of(args) if res.namespaced else None
        page = await client.list_all(res, ns, label_selector=args.selector)
        targets += [(res, o["metadata"]["name"], ns) for o in page.items]
        if not page.items:
            print("No resources found")
    code = 0
    for res, name, ns in targets:
        try:
            print(await delete_one(client, res, name, ns, wait=args.wait,
                                   grace_period=args.grace_period), flush=True)
        except NotFound as err:
            print(f"Error from server (NotFound): {err.message}", flush=True)
            code = 1
    return code


async def _with_timeout(client: Client, args: argparse.Namespace) -> int:
    try:
        return await asyncio.wait_for(_run(client, args), args.timeout or None)
    except TimeoutError:
        raise UsageError(f"timed out after {args.timeout}s waiting for deletion") from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("delete", help="delete objects by name, selector or manifest")
    p.add_argument("kind", nargs="?", help="resource type: pod, deploy, svc, ...")
    p.add_argument("names", nargs="*")
    p.add_argument("-f", "--filename", action="append", default=None,
                   help="delete what these manifests name")
    p.add_argument("-l", "--selector", default=None, help="label selector")
    p.add_argument("--wait", type=bool_flag, nargs="?", const=True, default=True,
                   help="wait until the objects are gone (default true)")
    p.add_argument("--grace-period", type=int, default=None,
                   help="seconds a pod gets to stop (0: at once)")
    p.add_argument("--timeout", type=float, default=0,
                   help="give up waiting after this many seconds (0: never)")
    add_client_flags(p)
    p.set_defaults(run=lambda args: run_verb(args, _with_timeout))
