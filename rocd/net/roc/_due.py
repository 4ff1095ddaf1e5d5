"""Items held until a time on Trio's clock: `DueQueue`.

Why: the impairment relay (`_relay.py`) holds datagrams and the netfilter queue
(`_queue_impairment.py`) holds verdicts until the impairment model says they come out
of the link. Both need the same loop: sleep until the earliest item falls due, wake at
once when an earlier one is pushed, and never sleep for the last few microseconds.
"""

from __future__ import annotations

import heapq
import math
from typing import Final, Generic, TypeVar

import trio

__all__ = ["EARLY_NS", "DueQueue", "clock_ns"]

T = TypeVar("T")

EARLY_NS: Final = 10_000
"""An item is due up to 10 us before its time, rather than sleep again for nothing."""


def clock_ns(clock: trio.abc.Clock | None = None) -> int:
    """Trio's clock, in integer nanoseconds."""
    return round((clock or trio.lowlevel.current_clock()).current_time() * 1e9)


class DueQueue(Generic[T]):
    """A heap of (time in ns, item), in time order and, at the same time, in push order.

    One task waits (`wait_due`) and takes what is due (`peek_due`, `pop`); others `push`.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, T]] = []
        self._seq = 0
        self._wake = trio.Event()
        self._wake_at = -math.inf  # the waiter's deadline; -inf while it is not waiting

    def __len__(self) -> int:
        return len(self._heap)

    def first_at(self) -> int | None:
        """When the earliest item falls due (None when empty)."""
        return self._heap[0][0] if self._heap else None

    def push(self, at_ns: int, item: T) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at_ns, self._seq, item))
        if at_ns < self._wake_at:
            self._wake.set()

    def peek_due(self, now: int) -> T | None:
        """The earliest item if it is due at `now` (ns), left in place (see `pop`)."""
        heap = self._heap
        if heap and heap[0][0] <= now + EARLY_NS:
            return heap[0][2]
        return None

    def pop(self) -> T:
        """Remove and return the earliest item."""
        return heapq.heappop(self._heap)[2]

    def clear(self) -> None:
        self._heap.clear()

    async def wait_due(self) -> None:
        """Return once the earliest item is due (at once if it is; a checkpoint either
        way)."""
        heap = self._heap
        while True:
            if not heap:
                self._wake_at = math.inf
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            at = heap[0][0]
            if at > clock_ns() + EARLY_NS:
                self._wake_at = at
                with trio.move_on_at(at / 1e9):
                    await self._wake.wait()
                if self._wake.is_set():
                    self._wake = trio.Event()
                continue
            self._wake_at = -math.inf
            await trio.lowlevel.checkpoint()
            if heap and heap[0][0] <= clock_ns() + EARLY_NS:
                return
