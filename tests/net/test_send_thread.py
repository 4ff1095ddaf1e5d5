"""SendThread on the real clock: each batch leaves at its time, a stop is prompt."""

from __future__ import annotations

import time

import trio

from rocd.net.roc import Interface
from rocd.net.roc._send_thread import MAX_SLEEP_NS, SendThread
from rocd.net.roc._sender import Datagram
from rocd.net.roc._ticker import now_ns

MS = 1_000_000


async def test_batches_leave_at_their_times_in_order() -> None:
    sent: list[tuple[int, bytes]] = []
    offset = now_ns() - time.perf_counter_ns()

    def send(datagrams: list[Datagram]) -> None:
        for d in datagrams:
            sent.append((time.perf_counter_ns() + offset, d.payload))

    thread = SendThread(send)
    start = now_ns() + 20 * MS
    for k in range(10):
        thread.put(start + k * 10 * MS, [Datagram(Interface.SOURCE, bytes([k]))])
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(thread.run)
            await trio.sleep(0.2)  # the last batch is due 110 ms after `start`
            nursery.cancel_scope.cancel()
    assert thread.queued == 0
    assert [p for _, p in sent] == [bytes([k]) for k in range(10)]
    for k, (at, _) in enumerate(sent):
        due = start + k * 10 * MS
        assert due - 200_000 <= at < due + 20 * MS  # never early (but the slack), rarely late


async def test_a_cancelled_thread_stops_within_a_sleep_and_keeps_the_rest() -> None:
    thread: SendThread[list[Datagram]] = SendThread(lambda datagrams: None)
    thread.put(now_ns() + 60_000 * MS, [Datagram(Interface.SOURCE, b"later")])
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(thread.run)
            await trio.sleep(0.05)
            t0 = time.perf_counter_ns()
            nursery.cancel_scope.cancel()
        stopped_in = time.perf_counter_ns() - t0
    assert stopped_in < 2 * MAX_SLEEP_NS + 50 * MS
    assert [d for _, batch in thread.take_queued() for d in batch] == [
        Datagram(Interface.SOURCE, b"later")
    ]
