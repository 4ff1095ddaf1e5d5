"""Fixtures shared by every test directory: the session's private PulseAudio server."""

from collections.abc import Iterator

import pytest

from tests.pulse_server import PulseServer, PulseServerError


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
