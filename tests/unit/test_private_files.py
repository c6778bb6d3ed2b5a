"""tighten(): group and other bits off a tree, except what its owner secures."""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.cli.up import VAR_LIB, agents_root
from corral.private_files import (
    SEARCH_ONLY,
    closed_ancestor,
    mark_self_secured,
    private_dir,
    tighten,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_tighten_strips_the_tree_but_leaves_a_self_secured_directory(tmp_path: Path) -> None:
    root = private_dir(tmp_path / "data", 0o755)
    (root / "state.db").write_text("x")
    os.chmod(root / "state.db", 0o644)
    agent = private_dir(root / "agents" / "node-1", SEARCH_ONLY)
    work = private_dir(agent / "pods" / "p" / "work", 0o2770)
    mark_self_secured(agent)
    mark_self_secured(agent)  # idempotent

    assert tighten(root) == 3  # root, state.db, agents/
    assert (mode(root), mode(root / "state.db"), mode(root / "agents")) == (0o700, 0o600, 0o700)
    assert (mode(agent), mode(work)) == (SEARCH_ONLY, 0o2770)
    assert mode(agent / ".secured-by-owner") == 0o600
    assert tighten(root) == 0



def test_tighten_leaves_the_root_as_root_mode_says_in_one_step(tmp_path: Path) -> None:
    root = private_dir(tmp_path / "state", 0o755)
    (root / "kubeconfig").write_text("x")
    os.chmod(root / "kubeconfig", 0o644)
    link = tmp_path / "named"
    link.symlink_to(root)  # a node's state dir may be a symlink to its home
    assert tighten(link, root_mode=SEARCH_ONLY) == 2
    assert (mode(root), mode(root / "kubeconfig")) == (SEARCH_ONLY, 0o600)
    # A root already as asked is no exposure: nothing changed, nothing logged.
    assert tighten(link, root_mode=SEARCH_ONLY) == 0
    os.chmod(root, 0o700)
    assert tighten(root, root_mode=SEARCH_ONLY) == 1 and mode(root) == SEARCH_ONLY



@pytest.fixture
def open_base() -> Iterator[Path]:
    """A directory every user may pass through to (pytest's own are 0700)."""
    base = Path(tempfile.mkdtemp())
    os.chmod(base, SEARCH_ONLY)
    assert closed_ancestor(base / "x") is None, "the temp dir's parents must be searchable"
    try:
        yield base
    finally:
        shutil.rmtree(base)


def test_closed_ancestor_is_the_first_directory_others_may_not_pass(open_base: Path) -> None:
    closed = private_dir(open_base / "closed", 0o700)
    inner = private_dir(closed / "a" / "b", SEARCH_ONLY)
    assert closed_ancestor(inner / "pods") == closed
    os.chmod(closed, 0o750)  # group may pass; others still not
    assert closed_ancestor(inner / "pods") == closed
    os.chmod(closed, SEARCH_ONLY)
    assert closed_ancestor(inner / "pods") is None
    os.chmod(closed / "a", 0o700)
    assert closed_ancestor(inner / "pods") == closed / "a"


def test_up_keeps_agents_beside_the_data_dir_only_when_pods_can_reach_them(
        open_base: Path) -> None:
    data = private_dir(open_base / "checkout" / ".corral", SEARCH_ONLY)
    os.chmod(data.parent, 0o755)
    assert agents_root(argparse.Namespace(data_dir=str(data))) == data / "agents"
    os.chmod(data.parent, 0o700)  # a checkout under /root
    elsewhere = agents_root(argparse.Namespace(data_dir=str(data)))
    assert elsewhere.parent == VAR_LIB and elsewhere.name.startswith("up-")
    assert agents_root(argparse.Namespace(data_dir=str(data))) == elsewhere  # stable
