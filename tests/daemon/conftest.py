"""Daemons as separate processes, killed at the end of each test whatever happened."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .process import DaemonProcess


@pytest.fixture
def spawn() -> Iterator[list[DaemonProcess]]:
    procs: list[DaemonProcess] = []
    yield procs
    for p in procs:
        p.kill()
