"""A real daemon in the test's nursery: state on disk, the API on a free port."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import trio

from rocd.config import ApiConfig, AudioConfig, Config
from rocd.daemon import Daemon
from tests.client import LOOPBACK_CLUSTER, RunningDaemon

__all__ = ["RunningDaemon", "start_daemon"]


async def start_daemon(nursery: trio.Nursery, state_dir: Path, **config: object) -> Daemon:
    config.setdefault("cluster", LOOPBACK_CLUSTER)
    daemon = Daemon(Config(state_dir=str(state_dir), api=ApiConfig(port=0), **config))  # type: ignore[arg-type]
    await nursery.start(daemon.run)
    return daemon


@pytest.fixture
async def rocd(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[RunningDaemon]:
    """A daemon with the file and tone drivers only (no sound server: fast, no children)."""
    config = Config(
        state_dir=str(tmp_path),
        api=ApiConfig(port=0),
        audio=AudioConfig(pulse="off"),
        cluster=LOOPBACK_CLUSTER,
    )
    daemon = Daemon(config)
    with trio.fail_after(10):
        info = await nursery.start(daemon.run)
    async with httpx.AsyncClient(base_url=info.api_url, timeout=10) as http:
        yield RunningDaemon(daemon, info, http)
    daemon.request_stop()


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Sockets leaked by a test warn (as errors) in that test, not in a later one."""
    yield
    gc.collect()
