"""`corral rollout status|history|undo|pause|resume deployment/NAME`, as kubectl's.

    status   watch the Deployment; print each new stage of the rollout the way
             kubectl does; exit 0 when rolled out, 1 on ProgressDeadlineExceeded
    history  REVISION / CHANGE-CAUSE of its ReplicaSets (--revision N: that template)
    undo     copy an old ReplicaSet's template back (--to-revision N, default the
             previous one); the controller reuses that ReplicaSet with a new revision
    pause / resume   spec.paused
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import yaml

from corral.api.errors import APIError
from corral.api.selectors import from_label_selector_object
from corral.cli.scale import target_args
from corral.cli.verb import UsageError, add_client_flags, namespace_of, run_verb
from corral.client.http import Client
from corral.controllers.deployment.progress import TIMED_OUT, condition
from corral.controllers.deployment.rollback import (
    change_cause,
    history,
    revision_of,
    rollback_target,
    templates_equal,
    undo_patch,
)
from corral.controllers.owners import controller_ref
from corral.objects import Obj, spec, uid_of


class RolloutFailed(Exception):
    """The rollout cannot finish (its progress deadline passed)."""


def status_message(d: Obj) -> tuple[str, bool]:
    """(what kubectl prints, done) for a Deployment; RolloutFailed on a timeout."""
    name = d["metadata"]["name"]
    spec, status = d.get("spec") or {}, d.get("status") or {}
    if int(d["metadata"].get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return "Waiting for deployment spec update to be observed...", False
    cond = condition(status.get("conditions") or [], "Progressing")
    if cond is not None and cond.get("reason") == TIMED_OUT:
        raise RolloutFailed(f'deployment "{name}" exceeded its progress deadline')
    want = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    prefix = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < want:
        return f"{prefix}{updated} out of {want} new replicas have been updated...", False
    if replicas > updated:
        return f"{prefix}{replicas - updated} old replicas are pending termination...", False
    if available < updated:
        return f"{prefix}{available} of {updated} updated replicas are available...", False
    return f'deployment "{name}" successfully rolled out', True


async def _status(client: Client, args: argparse.Namespace, name: str) -> int:
    ns = namespace_of(args)

    async def follow() -> int:
        last = ""
        while True:
            d = await client.get("Deployment", name, ns)
            rv = d["metadata"]["resourceVersion"]
            stream = client.watch("Deployment", ns, resource_version=rv,
                                  field_selector=f"metadata.name={name}", timeout_seconds=30)
            current: Obj | None = d
            while current is not None:
                message, done = status_message(current)
                if message != last:
                    print(message, flush=True)
                    last = message
                if done or not args.watch:
                    return 0
                current = await _next_object(stream)

    try:
        timeout = args.timeout if args.timeout > 0 else None
        return await asyncio.wait_for(follow(), timeout)
    except RolloutFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except TimeoutError:
        print("error: timed out waiting for the condition", file=sys.stderr)
        return 1


async def _next_object(stream: object) -> Obj | None:
    async for event in stream:  # type: ignore[attr-defined]
        if event.type in ("ADDED", "MODIFIED"):
            return dict(event.object)
    return None


async def owned_replica_sets(client: Client, d: Obj) -> list[Obj]:
    selector = from_label_selector_object(spec(d).get("selector"))
    page = await client.list_all("ReplicaSet", d["metadata"]["namespace"],
                                 label_selector=selector.to_string())
    return [rs for rs in page.items if (controller_ref(rs) or {}).get("uid") == uid_of(d)]


async def _history(client: Client, args: argparse.Namespace, name: str) -> int:
    d = await client.get("Deployment", name, namespace_of(args))
    revisions = history(await owned_replica_sets(client, d))
    if args.revision:
        match = [rs for rev, rs in revisions if rev == args.revision]
        if not match:
            raise UsageError(f"unable to find the specified revision {args.revision}")
        print(f"deployment.apps/{name} with revision #{args.revision}")
        print(yaml.safe_dump({"Pod Template": match[0]["spec"]["template"]}, sort_keys=False))
        return 0
    print(f"deployment.apps/{name} ")
    print(f"{'REVISION':<10}CHANGE-CAUSE")
    for revision, rs in revisions:
        print(f"{revision:<10}{change_cause(rs)}")
    print()
    return 0


async def _undo(client: Client, args: argparse.Namespace, name: str) -> int:
    ns = namespace_of(args)
    d = await client.get("Deployment", name, ns)
    if spec(d).get("paused"):
        raise UsageError(f"you cannot rollback a paused deployment; resume it first with "
                         f"'corral rollout resume deployment/{name}' and try again")
    try:
        target = rollback_target(await owned_replica_sets(client, d), args.to_revision)
    except APIError as err:
        raise UsageError(err.message) from None
    if templates_equal(target["spec"]["template"], d["spec"]["template"]):
        print(f"deployment.apps/{name} skipped rollback (current template already matches "
              f"revision {revision_of(target)})")
        return 0
    patch = [{"op": "test", "path": "/metadata/resourceVersion",
              "value": d["metadata"]["resourceVersion"]}, *undo_patch(d, target)]
    await client.patch("Deployment", name, patch, ns, patch_type="json")
    print(f"deployment.apps/{name} rolled back")
    return 0


async def _set_paused(client: Client, args: argparse.Namespace, name: str, paused: bool) -> int:
    ns = namespace_of(args)
    d = await client.get("Deployment", name, ns)
    if bool(spec(d).get("paused")) == paused:
        state = "already paused" if paused else "not paused"
        raise UsageError(f'deployments.apps "{name}" is {state}')
    await client.patch("Deployment", name, {"spec": {"paused": paused or None}}, ns)
    print(f"deployment.apps/{name} {'paused' if paused else 'resumed'}")
    return 0


async def _rollout(client: Client, args: argparse.Namespace) -> int:
    res, name = target_args(args.target)
    if res.kind != "Deployment":
        raise UsageError(f"no rollout support for {res.plural}: only deployments")
    if args.action == "status":
        return await _status(client, args, name)
    if args.action == "history":
        return await _history(client, args, name)
    if args.action == "undo":
        return await _undo(client, args, name)
    return await _set_paused(client, args, name, args.action == "pause")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("rollout", help="manage the rollout of a Deployment")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("status", "watch the rollout until it is done"),
                         ("history", "list the revisions"),
                         ("undo", "roll back to a previous revision"),
                         ("pause", "stop rolling out template changes"),
                         ("resume", "resume a paused rollout")):
        a = actions.add_parser(action, help=text)
        a.add_argument("target", nargs="+", help="deployment/NAME or deployment NAME")
        add_client_flags(a)
        if action == "status":
            a.add_argument("-w", "--watch", type=lambda v: v.lower() != "false", default=True,
                           help="keep watching until done (default true)")
            a.add_argument("--timeout", type=float, default=0,
                           help="give up after this many seconds (0: never)")
        if action == "history":
            a.add_argument("--revision", type=int, default=0, help="show this revision's template")
        if action == "undo":
            a.add_argument("--to-revision", type=int, default=0,
                           help="the revision to go back to (default: the previous one)")
        a.set_defaults(run=lambda args: run_verb(args, _rollout))
