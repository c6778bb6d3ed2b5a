"""Shared fixtures: a real `corral master` process on a free loopback port.

    master        one master per test module (fast); tests use unique names
    fresh_master  a master of the test's own (for restarts, crashes, state checks)
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.cluster import Master


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    m = Master(tmp_path_factory.mktemp("master")).start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def fresh_master(tmp_path: Path) -> Iterator[Master]:
    m = Master(tmp_path / "master").start()
    try:
        yield m
    finally:
        m.stop()
