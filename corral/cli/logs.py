"""`corral logs POD [-c C] [-f] [--previous] [--tail N] [-n NS]`: a container's log,
through the master (which proxies the node agent's log server), as kubectl logs.

`corral logs job/NAME --index I [-f]`: one task of a task array (a Job run as
tasks): its lines from the log of each Alloc that ran (or runs) index I."""

from __future__ import annotations

import argparse
import sys

from corral.api.errors import APIError
from corral.cli.verb import add_client_flags, namespace_of, run_verb
from corral.client.http import Client, ServerUnreachable
from corral.indexset import IndexSet


async def _logs(client: Client, args: argparse.Namespace) -> int:
    ns = namespace_of(args)
    if "/" in args.pod or args.index is not None:
        return await _task_logs(client, args, ns)
    options = {"container": args.container, "tail_lines": args.tail if args.tail >= 0 else None,
               "previous": args.previous, "timestamps": args.timestamps}
    if not args.follow:
        sys.stdout.write(await client.logs(args.pod, ns, **options))
        return 0
    async for line in await client.logs(args.pod, ns, follow=True, **options):
        print(line, flush=True)
    return 0


async def _task_logs(client: Client, args: argparse.Namespace, ns: str) -> int:
    kind, _, name = args.pod.rpartition("/")
    if kind.lower() not in ("job", "jobs", "job.batch", "jobs.batch") or args.index is None:
        print("error: --index goes with job/NAME (a Job run as tasks)", file=sys.stderr)
        return 1
    allocs = await task_allocs(client, ns, name, args.index)
    printed = await _removed_allocs_logs(client, ns, name, args, set(allocs))
    if not allocs and not printed:
        print(f"error: no log of index {args.index} of job/{name} (it has not run, or "
              "the allocs that ran it are gone)", file=sys.stderr)
        return 1
    options = {"tail_lines": args.tail if args.tail >= 0 else None,
               "timestamps": args.timestamps, "kind": "Alloc", "task": str(args.index)}
    for alloc in allocs[:-1] if args.follow else allocs:
        sys.stdout.write(await client.logs(alloc, ns, **options))
    if args.follow and allocs:
        async for line in await client.logs(allocs[-1], ns, follow=True, **options):
            print(line, flush=True)
    return 0


async def _removed_allocs_logs(client: Client, ns: str, job: str,
                               args: argparse.Namespace, skip: set[str]) -> bool:
    """Print the index's lines kept by the nodes of the Job's removed Allocs (the
    Job's status lists where each ran); True if any alloc had some."""
    status = (await client.get("Job", job, ns)).get("status") or {}
    removed = (status.get("taskArray") or {}).get("removed") or {}
    found = False
    for alloc, node in removed.items():
        if alloc in skip:
            continue  # still listed: read through the Alloc
        path = f"/api/v1/nodes/{node}/proxy/allocLogs/{ns}/{alloc}/{args.index}"
        try:
            text = (await client.raw("GET", path)).text
        except (APIError, ServerUnreachable):
            continue  # the node is gone, and its logs with it
        if text:
            sys.stdout.write(text)
            found = True
    return found


async def task_allocs(client: Client, ns: str, job: str, index: int) -> list[str]:
    """The Job's Allocs that ran or run ``index``, oldest first."""
    items = (await client.list("Alloc", ns,
                               label_selector=f"batch.kubernetes.io/job-name={job}")).items
    found = []
    for alloc in sorted(items, key=lambda a: a["metadata"].get("creationTimestamp") or ""):
        status = alloc.get("status") or {}
        ran = IndexSet.parse(status.get("claimed")) | IndexSet.parse(status.get("completed"))
        if index in ran:
            found.append(alloc["metadata"]["name"])
    return found


def _run(args: argparse.Namespace) -> int:
    try:
        return run_verb(args, _logs)
    except KeyboardInterrupt:  # Ctrl-C ends a follow, as in kubectl
        return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("logs", help="print a container's log")
    p.add_argument("pod", help="pod name, or job/NAME with --index")
    p.add_argument("--index", type=int, default=None,
                   help="a task array's index (with job/NAME)")
    p.add_argument("-c", "--container", default=None, help="container (needed if several)")
    p.add_argument("-f", "--follow", action="store_true", help="stream new lines")
    p.add_argument("-p", "--previous", action="store_true",
                   help="the previous (terminated) instance of the container")
    p.add_argument("--tail", type=int, default=-1, help="only the last N lines")
    p.add_argument("--timestamps", action="store_true", help="prefix each line with its time")
    add_client_flags(p)
    p.set_defaults(run=_run)
