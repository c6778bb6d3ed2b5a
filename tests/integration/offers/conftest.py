"""A master serving the Mesos scheduler API (`--mesos-listen`), and the
frameworks a test subscribes (closed after it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster import Master, free_port
from tests.mesos_client import Framework, leading
from tests.poll import wait_for


@pytest.fixture(scope="module")
def mesos_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    port = free_port()
    m = Master(tmp_path_factory.mktemp("mesos"),
               extra_args=["--mesos-listen", f"127.0.0.1:{port}"]).start()
    m.mesos_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    try:
        wait_for(lambda: leading(m.mesos_url), 30, "the mesos master leading")  # type: ignore[attr-defined]
        yield m
    finally:
        m.stop()


@pytest.fixture
def url(mesos_master: Master) -> str:
    return str(mesos_master.mesos_url)  # type: ignore[attr-defined]


@pytest.fixture
def frameworks() -> Iterator[list[Framework]]:
    made: list[Framework] = []
    yield made
    for fw in made:
        fw.close()


