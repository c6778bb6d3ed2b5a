"""`corral kubeconfig-path`: where the local master wrote its kubeconfig."""

from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    print((args.data_dir / "kubeconfig").resolve())
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("kubeconfig-path", help="print the path of the local kubeconfig")
    p.add_argument("--data-dir", type=Path, default=Path(".corral"))
    p.set_defaults(run=_run)
