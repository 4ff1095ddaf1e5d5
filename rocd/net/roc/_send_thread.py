"""Sending encoded datagrams at their times from a thread of their own (a paced sender).

Why: a sender fed by a file must send a burst every 10 ms, and a Trio process pays for
each wake-up: measured here, a Trio loop woken by a kernel timer to send three prepared
datagrams costs 2.0-2.5 % of a core, a plain thread sleeping until each burst 1.0-1.2 %,
and roc-send, all included, 1.1-1.4 %. So a `SendLink` may hand the *timing* of its
sends to a `SendThread`: the link still reads and encodes ahead in Trio (now and then, in
batches) and handles RTCP there; the thread only sleeps until the next batch is due and
sends it. It never touches the `Sender`: the link's send function, called from both
sides, takes a lock.

Times are Trio's clock in ns (`now_ns`); the thread reads `time.perf_counter_ns()`, which
Trio's system clock follows at a fixed offset, measured when the thread starts (so never
under a MockClock). Structured: `run` is a task; cancelling it stops the thread within a
sleep (at most `MAX_SLEEP_NS`) and waits for it, so no thread outlives its link.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

import outcome
import trio

from ._sender import Datagram
from ._ticker import now_ns

__all__ = ["SendThread"]

#: Longest sleep of the thread (ns): how soon it notices a stop.
MAX_SLEEP_NS: Final = 10_000_000
#: Sleep while nothing is queued (ns): the link queues well ahead, so this is rare.
IDLE_SLEEP_NS: Final = 2_000_000
#: A batch due within this (ns) leaves now: a sleep that short would cost a wake-up more
#: than it gains (the kernel's timer slack is 50 us anyway).
SLACK_NS: Final = 100_000


class SendThread:
    """Sends each queued batch of datagrams when it falls due (see the module docstring)."""

    def __init__(self, send: Callable[[list[Datagram]], object]) -> None:
        self._send = send
        self._queue: deque[tuple[int, list[Datagram]]] = deque()  # append/popleft: thread-safe
        self._stop = threading.Event()
        self.batches_sent = 0
        self.late_ns = 0  # the latest a batch left after its time

    def put(self, due_ns: int, datagrams: list[Datagram]) -> None:
        """Queue `datagrams` to leave at `due_ns` (after those queued before)."""
        self._queue.append((due_ns, datagrams))

    @property
    def queued(self) -> int:
        return len(self._queue)

    def take_queued(self) -> list[tuple[int, list[Datagram]]]:
        """What was queued and not sent (call once `run` has returned)."""
        left = list(self._queue)
        self._queue.clear()
        return left

    async def run(self) -> None:
        """Send in a thread until cancelled; on cancellation the thread stops within
        MAX_SLEEP_NS (what is queued stays queued: `take_queued`) and is waited for."""
        offset_ns = now_ns() - time.perf_counter_ns()
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        result: list[outcome.Outcome[None]] = []

        def deliver(out: outcome.Outcome[None]) -> None:
            result.append(out)
            token.run_sync_soon(done.set)

        self._stop.clear()
        trio.lowlevel.start_thread_soon(lambda: self._loop(offset_ns), deliver)
        try:
            await done.wait()
        finally:
            self._stop.set()
            with trio.CancelScope(shield=True):
                await done.wait()
        result[0].unwrap()

    def _loop(self, offset_ns: int) -> None:
        queue, stop, send = self._queue, self._stop, self._send
        clock = time.perf_counter_ns
        sleep = time.sleep
        while not stop.is_set():
            if not queue:
                sleep(IDLE_SLEEP_NS / 1e9)
                continue
            due, datagrams = queue[0]
            wait = due - (clock() + offset_ns)
            if wait > SLACK_NS:
                sleep(min(wait, MAX_SLEEP_NS) / 1e9)
                continue
            queue.popleft()
            send(datagrams)
            self.batches_sent += 1
            self.late_ns = max(self.late_ns, -wait)
