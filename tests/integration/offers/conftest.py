"""A master serving the Mesos scheduler API (`--mesos-listen`), and the
frameworks a test subscribes (closed after it).

The master's data dir lives under a directory every user may search (as
/var/lib is), not under pytest's 0700 temp root: a task's failure to read the
master's keys must come from the data dir's own mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Master, free_port
from tests.mesos_client import Framework, credentialed, leading
from tests.poll import wait_for


@pytest.fixture(scope="module")
def mesos_master(searchable_base: Path) -> Iterator[Master]:
    port = free_port()
    m = Master(searchable_base / "master",
               extra_args=["--mesos-listen", f"127.0.0.1:{port}"]).start()
    m.mesos_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    try:
        wait_for(lambda: leading(m.mesos_url), 30, "the mesos master leading")  # type: ignore[attr-defined]
        yield m
    finally:
        m.stop()


@pytest.fixture
def url(mesos_master: Master) -> str:
    """The endpoint, with the credentials of the principal the master made."""
    return credentialed(str(mesos_master.mesos_url), mesos_master.data_dir)  # type: ignore[attr-defined]


@pytest.fixture
def frameworks() -> Iterator[list[Framework]]:
    made: list[Framework] = []
    yield made
    for fw in made:
        fw.close()
