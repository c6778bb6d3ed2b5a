"""`corral` — the command line: processes (master, up, ...) and verbs (get, apply, ...)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# Each module has `register(sub)`, which adds its sub-parsers and sets
# `set_defaults(run=<callable(args) -> exit code>)`; the callable runs its own
# asyncio loop (asyncio.run). A module that is missing (a part not built yet)
# simply contributes none.
_COMMAND_MODULES = (
    "corral.cli.master",
    "corral.cli.up",
    "corral.cli.front",
    "corral.cli.kubeconfig_path",
    "corral.cli.apply",
    "corral.cli.get",
    "corral.cli.describe",
    "corral.cli.delete",
    "corral.cli.logs",
    "corral.cli.scale",
    "corral.cli.rollout",
    "corral.cli.nodes",
    "corral.cli.top",
    "corral.cli.events",
    "corral.cli.agent",
    "corral.cli.scheduler",
    "corral.cli.controllers",
    "corral.cli.dashboard",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corral", description="corral: a cluster manager that speaks the Kubernetes API")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
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
