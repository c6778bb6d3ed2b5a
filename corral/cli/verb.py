"""What every client verb shares: the --kubeconfig/-n/-A flags, one Client for
the command, and errors printed as kubectl prints them (never a traceback):

    Error from server (NotFound): pods "x" not found
    Unable to connect to the server: ...
    error: the server doesn't have a resource type "gizmos"
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

from corral.api.errors import APIError
from corral.api.resources import BY_KIND, Resource, lookup
from corral.client.http import Client, ServerUnreachable
from corral.client.kubeconfig import KubeconfigError

VerbBody = Callable[[Client, argparse.Namespace], Awaitable[int]]


class UsageError(Exception):
    """The command line asks for something impossible; printed as "error: ..."."""


def add_client_flags(p: argparse.ArgumentParser, *, all_namespaces: bool = False) -> None:
    p.add_argument("--kubeconfig", default=None,
                   help="kubeconfig file (default $KUBECONFIG, ./.corral/kubeconfig, "
                        "~/.kube/config)")
    p.add_argument("-n", "--namespace", default=None, help="namespace (default: default)")
    if all_namespaces:
        p.add_argument("-A", "--all-namespaces", action="store_true",
                       help="across all namespaces")


def namespace_of(args: argparse.Namespace) -> str:
    return str(args.namespace or "default")


def resource_arg(name: str) -> Resource:
    """A kind as typed on the command line: pods, po, deployment, deployments.apps, Pod."""
    res = BY_KIND.get(name) or lookup(name)
    if res is None:
        raise UsageError(f'the server doesn\'t have a resource type "{name}"')
    return res


def qualified_kind(res: Resource) -> str:
    """"deployment.apps" or "pod", as kubectl names objects in its messages."""
    return f"{res.singular}.{res.group}" if res.group else res.singular


def bool_flag(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return lowered in ("true", "1")


def error_line(err: BaseException) -> str:
    if isinstance(err, APIError):
        return f"Error from server ({err.reason}): {err.message}"
    if isinstance(err, ServerUnreachable):
        return f"Unable to connect to the server: {err}"
    return f"error: {err}"


def run_verb(args: argparse.Namespace, body: VerbBody) -> int:
    """Run one verb on its own event loop; every expected failure is one line on
    stderr and exit code 1."""
    try:
        return asyncio.run(_with_client(args, body))
    except (APIError, ServerUnreachable, KubeconfigError, UsageError, OSError) as err:
        print(error_line(err), file=sys.stderr)
        return 1


async def _with_client(args: argparse.Namespace, body: VerbBody) -> int:
    async with Client.from_kubeconfig(getattr(args, "kubeconfig", None)) as client:
        return await body(client, args)
