"""Sending encoded datagrams at their times from a thread of their own (a paced sender).

Why: a sender fed by a file must send a burst every 10 ms, and a Trio process pays for
each wake-up: measured here, a Trio loop woken by a kernel timer to send three prepared
datagrams costs 2.0-2.5 % of a core, a plain thread sleeping until each burst 1.0-1.2 %,
and roc-send, all included, 1.1-1.4 %. So a `SendLink` may hand the *timing* of its
sends to a `SendThread`: the link still reads and encodes ahead in Trio (now and then, in
batches) and handles RTCP there; the thread only sleeps until the next batch is due and
sends it. It never touches the `Sender`: the link queues datagrams with the index of
their address (a `retarget` reaches what is queued), and its send function, called from
both sides, takes a lock. Where the C loop is built, the link uses `NativeSendThread`
instead (see `_send_native`: the same work in C, 0.7-1.0 % of a core in `rocd send`
against 1.2-1.7 % for this one); this one is the fallback.

Times are Trio's clock in ns (`now_ns`); the thread reads `time.perf_counter_ns()`, which
Trio's system clock follows at a fixed offset, measured when the thread starts (so never
under a MockClock). Structured: `run` is a task; cancelling it stops the thread within a
sleep (at most `MAX_SLEEP_NS`) and waits for it, so no thread outlives its link.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Final, Generic, TypeVar

import outcome
import trio

from ._ticker import now_ns

__all__ = ["SendThread", "run_in_thread"]

#: Longest sleep of the thread (ns): how soon it notices a stop.
MAX_SLEEP_NS: Final = 10_000_000
#: Sleep while nothing is queued (ns): the link queues well ahead, so this is rare.
IDLE_SLEEP_NS: Final = 2_000_000
#: A batch due within this (ns) leaves now: a sleep that short would cost a wake-up more
#: than it gains (the kernel's timer slack is 50 us anyway).
SLACK_NS: Final = 100_000

IDLE_SLEEP_S: Final = IDLE_SLEEP_NS / 1e9
MAX_SLEEP_S: Final = MAX_SLEEP_NS / 1e9

Batch = TypeVar("Batch")


class SendThread(Generic[Batch]):
    """Sends each queued batch when it falls due (see the module docstring): `send(batch)`
    is called from the thread, with the batches in the order they were queued."""

    def __init__(self, send: Callable[[Batch], object]) -> None:
        self._send = send
        self._queue: deque[tuple[int, Batch]] = deque()  # append/popleft: thread-safe
        self._stopping = False  # a plain flag: the thread reads it at every turn
        self.batches_sent = 0
        self.late_ns = 0  # the latest a batch left after its time

    def put(self, due_ns: int, batch: Batch) -> None:
        """Queue `batch` to leave at `due_ns` (after those queued before)."""
        self._queue.append((due_ns, batch))

    @property
    def queued(self) -> int:
        return len(self._queue)

    def take_queued(self) -> list[tuple[int, Batch]]:
        """What was queued and not sent (call once `run` has returned)."""
        left = list(self._queue)
        self._queue.clear()
        return left

    async def run(self) -> None:
        """Send in a thread until cancelled; on cancellation the thread stops within
        MAX_SLEEP_NS (what is queued stays queued: `take_queued`) and is waited for."""
        offset_ns = now_ns() - time.perf_counter_ns()
        self._stopping = False
        await run_in_thread(lambda: self._loop(offset_ns), self._stop)

    def _stop(self) -> None:
        self._stopping = True

    def _loop(self, offset_ns: int) -> None:
        # The thread wakes up for every batch (100 times a second), and what a Python
        # thread does per wake-up is most of what it costs: one turn is a check, a sleep
        # to the batch's time (which never returns early: PEP 475), the send.
        queue, send = self._queue, self._send
        clock = time.perf_counter_ns
        sleep = time.sleep
        popleft = queue.popleft
        while not self._stopping:
            if not queue:
                sleep(IDLE_SLEEP_S)
                continue
            due = queue[0][0] - offset_ns
            wait = due - clock()
            if wait > SLACK_NS:
                if wait > MAX_SLEEP_NS:
                    sleep(MAX_SLEEP_S)
                    continue
                sleep(wait * 1e-9)
                if self._stopping:
                    break
                wait = due - clock()
            send(popleft()[1])
            self.batches_sent += 1
            if -wait > self.late_ns:
                self.late_ns = -wait


async def run_in_thread(loop: Callable[[], object], stop: Callable[[], object]) -> None:
    """Run `loop` in a worker thread until it returns (re-raising what it raises); on
    cancellation call `stop` (which makes `loop` return soon) and wait for it, so no
    thread outlives its task."""
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()
    result: list[outcome.Outcome[object]] = []

    def deliver(out: outcome.Outcome[object]) -> None:
        result.append(out)
        token.run_sync_soon(done.set)

    trio.lowlevel.start_thread_soon(loop, deliver)
    try:
        await done.wait()
    finally:
        stop()
        with trio.CancelScope(shield=True):
            await done.wait()
    result[0].unwrap()
