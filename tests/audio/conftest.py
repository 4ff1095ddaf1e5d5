"""Fixtures for the audio tests: one private PulseAudio server per test session."""

from collections.abc import AsyncIterator, Iterator

import pytest

from rocd.audio import PulseDriver, open_pulse_driver
from tests.audio.pulse_server import PulseServer, PulseServerError


@pytest.fixture(scope="session")
def pulse_server() -> Iterator[PulseServer]:
    """A running headless PulseAudio; fails (never skips) when it cannot run here."""
    server = PulseServer()
    try:
        server.start()
    except PulseServerError as exc:
        server.cleanup()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
        if not server.running:
            pytest.fail(f"pulseaudio died during the tests; its log ends:\n{server.log_tail()}")
    finally:
        server.cleanup()


@pytest.fixture
async def pulse(pulse_server: PulseServer) -> AsyncIterator[PulseDriver]:
    """A PulseDriver following the session's server (up on entry)."""
    async with open_pulse_driver(pulse_server.env, latency_ms=20) as driver:
        assert driver.status.up, driver.status.reason
        yield driver
