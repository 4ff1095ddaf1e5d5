"""zeroconf's own asyncio loop (a thread of its own) logs its errors in one line."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import trio

from rocd.net.signalling._mdns import CLOSE_GRACE, MdnsDiscovery, open_zeroconf


def test_an_error_in_zeroconfs_loop_is_one_line_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Made and closed in a thread of its own, as the daemon does (a worker thread): the
    # test process's main thread may carry an asyncio loop that an earlier test left
    # marked running, which zeroconf would attach to instead of starting its own.
    worker = ThreadPoolExecutor(1)
    zc = worker.submit(open_zeroconf, ["127.0.0.1"]).result()
    loop = zc.loop
    assert loop is not None
    try:
        done = threading.Event()

        def fail() -> None:  # what asyncio does when a send meets a closed socket
            loop.call_exception_handler(
                {"message": "Fatal write error on datagram transport",
                 "exception": AttributeError("'NoneType' object has no attribute 'sendto'")}
            )  # fmt: skip
            done.set()

        with caplog.at_level(logging.DEBUG, logger="rocd.cluster"):
            loop.call_soon_threadsafe(fail)
            assert done.wait(5)
    finally:
        worker.submit(zc.close).result()
        worker.shutdown()
    records = [r for r in caplog.records if "Fatal write error" in r.getMessage()]
    assert len(records) == 1
    assert records[0].name == "rocd.cluster"
    assert records[0].exc_info is None
    assert "NoneType" in records[0].getMessage()
    assert "Traceback" not in caplog.text


async def test_a_stop_during_the_announcement_does_not_log_it_as_done(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Registering blocks a worker thread for about 1.6 s (probes, then announcements): a
    # stop in the middle used to wait for it, then log "announced on the LAN" on the way
    # out. It is abandoned now (zeroconf's close ends it), and the stop takes at most
    # CLOSE_GRACE.
    discovery = MdnsDiscovery(
        uid="stopping",
        port=1,
        addresses=["127.0.0.1"],
        properties=dict,
        found=lambda announcement: None,
        lost=lambda uid: None,
        interfaces=["127.0.0.1"],
    )
    with caplog.at_level(logging.INFO, logger="rocd.cluster"):
        async with trio.open_nursery() as nursery:
            await nursery.start(discovery.run)
            await trio.sleep(0.3)
            stop = trio.current_time()
            nursery.cancel_scope.cancel()
    assert trio.current_time() - stop < CLOSE_GRACE + 1.0  # (the thread may take it all)
    assert not discovery.registered.is_set()
    assert "announced on the LAN" not in caplog.text
