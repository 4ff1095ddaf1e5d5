"""When a paced reader should read, given when the sender's bursts arrive (sans-IO).

A file-paced sender (roc-send, `rocd send`) sends every 10 ms the packets of the 10 ms
just due: the queue at the receiver grows in steps of 10 ms. A receiver that also reads
10 ms every 10 ms sees a steady queue as long as each burst lands between the same two
reads. Where its reads fall in the sender's period is chance (two processes, two timers):
if they fall just after the bursts, a burst that is a little late lands after the read
instead, that read finds 10 ms less (and the next one 10 ms more), and at a small target
latency (10 ms: bounds -1.8 .. 21.8 ms) such a step ends the session, or plays a gap.

`ReadPhase` puts the reads at a known place instead: `fraction` of a period after the
bursts' on-time phase. Bursts are never early, only late (a sender's timer and scheduler
can only delay them), and most are on time to a fraction of a millisecond: the on-time
phase is where the densest cluster of recent bursts (`WINDOW` of them) begins, which a
few late ones (a sender warming up) do not move. A burst may then be up to `fraction` x
period late (7.5 ms of 10) and still reach the read it belongs to.

Moving the reads: while no session plays, anywhere (only silence is written yet); while
one plays, only later (`later_only`): a reader on nominal time that reads later does not
skip a sample, while reading earlier could miss a burst that had arrived in time.
"""

from __future__ import annotations

from collections import deque

__all__ = ["ReadPhase"]

#: Bursts whose phases are kept.
WINDOW = 16
#: Width of the cluster of on-time arrivals (ns), and the gap that starts a new burst.
CLUSTER_NS = 1_000_000


class ReadPhase:
    """The on-time arrival phase of bursts repeating every `period_ns`, and where a
    reader's next read should move to follow it (all times in ns, one monotonic clock)."""

    __slots__ = ("_last", "_on_time", "_phases", "fraction", "period_ns")

    def __init__(self, period_ns: int, *, fraction: float = 0.75) -> None:
        if period_ns <= 0:
            raise ValueError(f"period must be > 0 ns, got {period_ns}")
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        self.period_ns = period_ns
        self.fraction = fraction
        self._phases: deque[int] = deque(maxlen=WINDOW)  # arrival mod period, per burst
        self._last: int | None = None  # the latest arrival seen
        self._on_time: int | None = None  # cached `on_time_ns`

    @property
    def known(self) -> bool:
        return bool(self._phases)

    def reset(self) -> None:
        """Forget the phase (the bursts stopped: the next sender has its own)."""
        self._phases.clear()
        self._last = None
        self._on_time = None

    def arrival(self, arrival_ns: int) -> None:
        """A source packet arrived at `arrival_ns`; the first of a burst counts."""
        last = self._last
        self._last = arrival_ns if last is None else max(last, arrival_ns)
        if last is None or arrival_ns - last > CLUSTER_NS:
            self._phases.append(arrival_ns % self.period_ns)
            self._on_time = None

    def on_time_ns(self) -> int | None:
        """The on-time phase (0 .. period): where the most bursts fall within CLUSTER_NS
        after it, the earliest such place on ties; None before any burst."""
        phases = self._phases
        if not phases:
            return None
        if self._on_time is not None:
            return self._on_time
        period = self.period_ns
        best, best_count = phases[0], -1
        for start in sorted(phases):
            count = sum(1 for p in phases if (p - start) % period < CLUSTER_NS)
            if count > best_count:
                best, best_count = start, count
        self._on_time = best
        return best

    def shift_ns(self, next_read_ns: int, *, later_only: bool = False) -> int:
        """How much later (negative: earlier) the read due at `next_read_ns` should be, for
        the reads to fall `fraction` of a period after the bursts' on-time phase: the
        nearest such place, within half a period either way (with `later_only`, only a
        move later by at most half a period); 0 when the phase is unknown.

        Moving a read earlier is fine for a reader that reads at nominal times when no
        session plays (a read now due in the past is simply done at once)."""
        phase = self.on_time_ns()
        if phase is None:
            return 0
        period = self.period_ns
        target = phase + round(self.fraction * period)
        shift = (target - next_read_ns) % period
        if shift > period // 2:
            return 0 if later_only else shift - period
        return shift
