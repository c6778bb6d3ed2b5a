"""`corral` — the command line: processes (master, up, ...) and verbs (get, apply, ...)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

# Each module under corral/cli has `register(sub)`, which adds its sub-parsers and
# sets `set_defaults(run=<callable(args) -> exit code>)`; the callable runs its own
# asyncio loop. Keyed by the commands each registers, so a run imports only its own
# command's module: importing all of them costs ~1.7 s of CPU, an agent's own ~1.2
# s and `corral token` 0.1 s, paid by every process a cluster (or a test) starts.
# tests/unit/cli/test_main.py checks the table against what the modules register.
COMMANDS: dict[str, str] = {
    "master": "master", "up": "up", "front": "front", "status": "status",
    "kubeconfig-path": "kubeconfig_path", "apply": "apply", "get": "get",
    "describe": "describe", "delete": "delete", "logs": "logs", "scale": "scale",
    "rollout": "rollout", "cordon": "nodes", "uncordon": "nodes", "drain": "nodes",
    "top": "top", "events": "events", "agent": "agent", "scheduler": "scheduler",
    "controllers": "controllers", "dashboard": "dashboard", "token": "token",
    "secrets": "secrets",
}


def _module(name: str) -> ModuleType:
    # Imported directly: a missing or broken module fails loudly.
    return importlib.import_module(f"corral.cli.{name}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command`` alone (a known one)."""
    parser = argparse.ArgumentParser(
        prog="corral", description="corral: a cluster manager that speaks the Kubernetes API")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(
        COMMANDS.values()))
    for name in names:
        _module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The command is the first argument (corral has no options before it); anything
    # else (--help, a typo) gets the whole parser and its list of commands.
    parser = build_parser(argv[0] if argv else None)
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
