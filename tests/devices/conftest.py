"""Daemons whose pulse driver follows the session's private PulseAudio server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rocd.config import AudioConfig
from tests.client import RunningDaemon, running_daemon
from tests.pulse_server import PulseServer


def pulse_config(server: PulseServer) -> AudioConfig:
    """The daemon's [audio] section for `server` ("system": never a private server)."""
    return AudioConfig(pulse="system", pulse_server=server.env["PULSE_SERVER"])


@pytest.fixture
async def rocd(pulse_server: PulseServer, tmp_path: Path) -> AsyncIterator[RunningDaemon]:
    async with running_daemon(tmp_path, pulse_config(pulse_server)) as daemon:
        yield daemon
