"""Fixtures for the audio tests (the session's PulseAudio server is in tests/conftest.py)."""

from collections.abc import AsyncIterator

import pytest

from rocd.audio import PulseDriver, open_pulse_driver
from tests.pulse_server import PulseServer


@pytest.fixture
async def pulse(pulse_server: PulseServer) -> AsyncIterator[PulseDriver]:
    """A PulseDriver following the session's server (up on entry)."""
    async with open_pulse_driver(pulse_server.env, latency_ms=20) as driver:
        assert driver.status.up, driver.status.reason
        yield driver
