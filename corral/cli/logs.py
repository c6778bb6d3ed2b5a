"""`corral logs POD [-c C] [-f] [--previous] [--tail N] [-n NS]`: a container's log,
through the master (which proxies the node agent's log server), as kubectl logs."""

from __future__ import annotations

import argparse
import sys

from corral.cli.verb import add_client_flags, namespace_of, run_verb
from corral.client.http import Client


async def _logs(client: Client, args: argparse.Namespace) -> int:
    ns = namespace_of(args)
    options = {"container": args.container, "tail_lines": args.tail if args.tail >= 0 else None,
               "previous": args.previous, "timestamps": args.timestamps}
    if not args.follow:
        sys.stdout.write(await client.logs(args.pod, ns, **options))
        return 0
    async for line in await client.logs(args.pod, ns, follow=True, **options):
        print(line, flush=True)
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        return run_verb(args, _logs)
    except KeyboardInterrupt:  # Ctrl-C ends a follow, as in kubectl
        return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("logs", help="print a container's log")
    p.add_argument("pod", help="pod name")
    p.add_argument("-c", "--container", default=None, help="container (needed if several)")
    p.add_argument("-f", "--follow", action="store_true", help="stream new lines")
    p.add_argument("-p", "--previous", action="store_true",
                   help="the previous (terminated) instance of the container")
    p.add_argument("--tail", type=int, default=-1, help="only the last N lines")
    p.add_argument("--timestamps", action="store_true", help="prefix each line with its time")
    add_client_flags(p)
    p.set_defaults(run=_run)
