"""When a paced reader should read, given when the sender's bursts arrive (sans-IO).

A file-paced sender (roc-send, `rocd send`) sends every 10 ms the packets of the 10 ms
just due: the queue at the receiver grows in steps of 10 ms. A receiver that also reads
10 ms every 10 ms sees a steady queue as long as each burst lands between the same two
reads. Where its reads fall in the sender's period is chance (two processes, two timers):
if they fall just after the bursts, a burst that is a little late lands after the read
instead, that read finds 10 ms less (and the next one 10 ms more), and at a small target
latency (10 ms: bounds -1.8 .. 21.8 ms) such a step ends the session, or plays a gap.

`ReadPhase` puts the reads at a known place instead: `fraction` of a period after the
bursts' earliest arrival phase. Bursts are never early, only late (a sender's timer and
scheduler can only delay them), so the earliest arrival seen is the on-time phase, and a
burst may then be up to `fraction` x period late (7.5 ms of 10) and still reach the read it
belongs to. The phase is learned while no session plays (a shift then only moves where
silence is written) and kept while one does.
"""

from __future__ import annotations

__all__ = ["ReadPhase"]


class ReadPhase:
    """The earliest arrival phase of bursts repeating every `period_ns`, and where a
    reader's next read should move to follow it (all times in ns, one monotonic clock)."""

    __slots__ = ("_ref", "fraction", "period_ns")

    def __init__(self, period_ns: int, *, fraction: float = 0.75) -> None:
        if period_ns <= 0:
            raise ValueError(f"period must be > 0 ns, got {period_ns}")
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        self.period_ns = period_ns
        self.fraction = fraction
        self._ref: int | None = None  # an arrival at the earliest phase seen

    @property
    def known(self) -> bool:
        return self._ref is not None

    def reset(self) -> None:
        """Forget the phase (the bursts stopped: the next sender has its own)."""
        self._ref = None

    def arrival(self, arrival_ns: int) -> None:
        """A packet arrived at `arrival_ns`. One that arrives earlier in the period than
        the reference (by less than half a period: later packets of a burst, and late
        bursts, come after it) becomes the reference."""
        ref = self._ref
        if ref is None:
            self._ref = arrival_ns
            return
        if (arrival_ns - ref) % self.period_ns > self.period_ns // 2:
            self._ref = arrival_ns

    def shift_ns(self, next_read_ns: int) -> int:
        """How much later (negative: earlier) the read due at `next_read_ns` should be, for
        the reads to fall `fraction` of a period after the bursts' phase: the nearest such
        place, within half a period either way; 0 when the phase is unknown.

        Moving a read earlier is fine for a reader that reads at nominal times (a read
        now due in the past is simply done at once, on what had arrived by then)."""
        if self._ref is None:
            return 0
        period = self.period_ns
        target = self._ref + round(self.fraction * period)
        shift = (target - next_read_ns) % period
        return shift - period if shift > period // 2 else shift
