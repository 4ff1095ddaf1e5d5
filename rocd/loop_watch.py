"""How late the daemon's Trio loop runs: `LoopWatch`.

Why: every real-time task of the daemon (the playback pumps, the packet readers, the
senders' ticks) runs on one Trio thread. When something holds that thread (a long
synchronous call, the interpreter lock held by another thread, a machine out of CPU), all
of them are late together, and what a listener hears is a gap with no error anywhere.
A task that sleeps `PERIOD_S` and measures how late it wakes tells such a stall apart
from a network or device fault: it is counted, the worst is kept (GET /health `loop`),
and a stall of `STALL_S` or more is logged (at most once per `LOG_EVERY_S`, with how many
there were since).
"""

from __future__ import annotations

import logging
import math

import msgspec
import trio

__all__ = ["LOG_EVERY_S", "PERIOD_S", "STALL_S", "LoopStats", "LoopWatch"]

log = logging.getLogger("rocd")

PERIOD_S = 0.02
"""How often the watch wakes (a stall shorter than this may go unseen)."""
STALL_S = 0.05
"""Lateness counted as a stall: more than a playback buffer's worth is at risk."""
LOG_EVERY_S = 10.0
"""At most one warning per this many seconds; the others are counted in it."""


class LoopStats(msgspec.Struct, frozen=True):
    """The loop's lateness since the daemon started (GET /health `loop`)."""

    #: Wakes later than `STALL_S` (50 ms).
    stalls: int
    #: The worst lateness seen, in milliseconds.
    worst_ms: float
    #: Seconds since the last stall (null: none yet).
    last_stall_s_ago: float | None


class LoopWatch:
    """Measures the Trio loop's lateness until cancelled (`run`); see the module."""

    def __init__(self) -> None:
        self.stalls = 0
        self.worst_s = 0.0
        self._last_stall = -math.inf
        self._last_log = -math.inf
        self._unlogged = 0
        self._unlogged_worst = 0.0

    def stats(self) -> LoopStats:
        now = trio.current_time()
        return LoopStats(
            stalls=self.stalls,
            worst_ms=round(self.worst_s * 1000, 1),
            last_stall_s_ago=(
                round(now - self._last_stall, 1) if self._last_stall > -math.inf else None
            ),
        )

    async def run(self) -> None:
        while True:
            asleep = trio.current_time()
            await trio.sleep(PERIOD_S)
            now = trio.current_time()
            self._woke(now, now - asleep - PERIOD_S)

    def _woke(self, now: float, late: float) -> None:
        self.worst_s = max(self.worst_s, late)
        if late < STALL_S:
            return
        self.stalls += 1
        self._last_stall = now
        self._unlogged += 1
        self._unlogged_worst = max(self._unlogged_worst, late)
        if now - self._last_log < LOG_EVERY_S:
            return
        many = self._unlogged
        log.warning(
            "the daemon's event loop stalled %.0f ms%s: audio may have had gaps "
            "(a loaded machine, or a slow call in the daemon)",
            self._unlogged_worst * 1000,
            f" (the worst of {many} since the last warning)" if many > 1 else "",
        )
        self._last_log = now
        self._unlogged = 0
        self._unlogged_worst = 0.0
