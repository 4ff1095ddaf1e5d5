"""The session watchdog: end sessions whose sender is gone or whose playback is broken.

After Roc's `roc_audio/watchdog.cpp` (ROC_PROTOCOL.md §7.6), on stream time (output
samples read), frame by frame:

* no playback: every frame was blank (no sample from a packet) for `no_playback_timeout`.
  Blank frames during the warm-up (the first target latency of the session, while the
  jitter buffer fills) do not count, so the timer starts at the end of the warm-up at the
  earliest. Default timeout 4/3 of the target latency.
* choppy playback: time is cut in windows of min(300 ms, timeout / 4); a window is bad
  when it saw both a frame with concealed samples and packets dropped as late. The session
  ends when every window for `choppy_playback_timeout` (default 2 s) was bad: a sender
  whose packets keep arriving just too late.

A timeout of 0 disables its check.
"""

from __future__ import annotations

import enum

__all__ = ["Watchdog", "WatchdogVerdict"]

_MAX_WINDOW_NS = 300_000_000


class WatchdogVerdict(enum.Enum):
    NO_PLAYBACK = "no_playback"
    CHOPPY_PLAYBACK = "choppy_playback"


class Watchdog:
    """Frame-by-frame checks of one session; times in ns, positions in output samples."""

    __slots__ = (
        "_bad_window",
        "_blank_limit",
        "_choppy_limit",
        "_last_good",
        "_last_nonblank",
        "_pos",
        "_warmup",
        "_window",
        "_window_end",
    )

    def __init__(
        self, rate: int, *, no_playback_timeout_ns: int, choppy_timeout_ns: int, warmup_ns: int
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if min(no_playback_timeout_ns, choppy_timeout_ns, warmup_ns) < 0:
            raise ValueError("watchdog timeouts must be >= 0 ns")

        def samples(ns: int) -> int:
            return ns * rate // 1_000_000_000

        self._blank_limit = samples(no_playback_timeout_ns)
        self._choppy_limit = samples(choppy_timeout_ns)
        self._warmup = samples(warmup_ns)
        self._window = max(1, samples(min(_MAX_WINDOW_NS, choppy_timeout_ns // 4)))
        self._window_end = self._window
        self._pos = 0
        self._last_nonblank = 0
        self._last_good = 0
        self._bad_window = (False, False)  # (concealed seen, drops seen) in this window

    def update(
        self, n: int, *, blank: bool, incomplete: bool, drops: bool
    ) -> WatchdogVerdict | None:
        """Account a frame of `n` samples; the verdict when the session must end."""
        pos = self._pos + n
        self._pos = pos
        if not blank:
            self._last_nonblank = pos
        if self._blank_limit and pos - max(self._last_nonblank, self._warmup) >= self._blank_limit:
            return WatchdogVerdict.NO_PLAYBACK
        if self._choppy_limit:
            seen_incomplete, seen_drops = self._bad_window
            seen_incomplete |= incomplete
            seen_drops |= drops
            if pos >= self._window_end:
                if not (seen_incomplete and seen_drops):
                    self._last_good = pos
                self._window_end = (pos // self._window + 1) * self._window
                seen_incomplete = seen_drops = False
            self._bad_window = (seen_incomplete, seen_drops)
            if pos - self._last_good >= self._choppy_limit:
                return WatchdogVerdict.CHOPPY_PLAYBACK
        return None
