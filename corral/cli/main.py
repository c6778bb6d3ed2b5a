"""`corral` — the command line: processes (master, up, ...) and verbs (get, apply, ...)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from corral.cli import (
    agent,
    apply,
    controllers,
    dashboard,
    delete,
    describe,
    events,
    front,
    get,
    kubeconfig_path,
    logs,
    master,
    nodes,
    rollout,
    scale,
    scheduler,
    secrets,
    status,
    token,
    top,
    up,
)

# Each module has `register(sub)`, which adds its sub-parsers and sets
# `set_defaults(run=<callable(args) -> exit code>)`; the callable runs its own
# asyncio loop. Imported directly: a missing or broken module fails loudly.
_COMMAND_MODULES = (master, up, front, status, kubeconfig_path, apply, get, describe, delete,
                    logs, scale, rollout, nodes, top, events, agent, scheduler, controllers,
                    dashboard, token, secrets)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corral", description="corral: a cluster manager that speaks the Kubernetes API")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        sys.exit(2)
    try:
        code = run(args)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
