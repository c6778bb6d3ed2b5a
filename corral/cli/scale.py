"""`corral scale KIND/NAME --replicas N` (or `KIND NAME`): as `kubectl scale`,
a merge patch of the scale subresource.

    deployment.apps/web scaled
"""

from __future__ import annotations

import argparse

from corral.api.resources import Resource
from corral.cli.verb import (
    UsageError,
    add_client_flags,
    namespace_of,
    qualified_kind,
    resource_arg,
    run_verb,
)
from corral.client.http import Client
from corral.objects import spec


def target_args(words: list[str]) -> tuple[Resource, str]:
    """KIND/NAME or KIND NAME, as kubectl takes them."""
    if len(words) == 1 and "/" in words[0]:
        kind, _, name = words[0].partition("/")
    elif len(words) == 2:
        kind, name = words
    else:
        raise UsageError("give the object as KIND/NAME or KIND NAME")
    return resource_arg(kind), name


async def _scale(client: Client, args: argparse.Namespace) -> int:
    res, name = target_args(args.target)
    if "scale" not in res.subresources:
        raise UsageError(f"cannot scale {res.plural}: they have no scale subresource")
    ns = namespace_of(args)
    if args.current_replicas is not None:
        current = await client.get_scale(res, name, ns)
        if int(spec(current).get("replicas", 0)) != args.current_replicas:
            raise UsageError(f"Expected replicas to be {args.current_replicas}, was "
                             f"{spec(current).get('replicas', 0)}")
    await client.set_scale(res, name, ns, args.replicas)
    print(f"{qualified_kind(res)}/{name} scaled")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("scale", help="set the replicas of a Deployment or ReplicaSet")
    p.add_argument("target", nargs="+", help="KIND/NAME or KIND NAME")
    p.add_argument("--replicas", type=int, required=True, help="the new number of replicas")
    p.add_argument("--current-replicas", type=int, default=None,
                   help="only scale if the current replicas are this many")
    add_client_flags(p)
    p.set_defaults(run=lambda args: run_verb(args, _scale))
