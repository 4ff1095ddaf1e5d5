"""Real-time pacing of an unclocked source (a file, a tone generator), sans I/O.

A sound card paces itself: the sender sends each block when the device delivers it, and
needs no pacer. A file or a generator can produce audio as fast as asked, so something
must hold it to real time, as roc-send's `enable_timing` does for files.

The schedule is absolute: sample n is due at `start + n / rate`, computed from the start
time and the count of samples sent, never by adding up sleep durations, so a late wake-up
does not push later packets back and nothing drifts, however long the stream. `trio`'s
`sleep_until` wakes 0.6-2.3 ms late here (PLATFORM.md): after a wake-up `due` says how
many chunks are already due, and the caller sends them all at once (a catch-up burst).

A stall far beyond any jitter buffer (a suspended laptop) would turn into a burst of
seconds of audio that the receiver drops as late anyway; with `max_lag_ns` the schedule
instead restarts from now (`resyncs` counts these), keeping the stream contiguous.
"""

from __future__ import annotations

from ._encoding import NS_PER_SECOND

__all__ = ["Pacer"]


class Pacer:
    """When each chunk of an unclocked stream is due, on a monotonic clock (ns).

    `chunk_samples` is how many samples (per channel, at `rate` Hz) the caller sends per
    step; a chunk is due when its first sample is (so the first one is due at `start_ns`).
    `wall_start_ns` is the wall-clock time of `start_ns`, to stamp capture times.
    """

    __slots__ = (
        "_sent",
        "_start_ns",
        "_wall_start_ns",
        "chunk_samples",
        "max_lag_ns",
        "rate",
        "resyncs",
    )

    def __init__(
        self,
        rate: int,
        start_ns: int,
        *,
        chunk_samples: int,
        wall_start_ns: int = 0,
        max_lag_ns: int | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if chunk_samples < 1:
            raise ValueError(f"chunk must be >= 1 sample, got {chunk_samples}")
        if max_lag_ns is not None and max_lag_ns < 0:
            raise ValueError(f"max lag must be >= 0 ns, got {max_lag_ns}")
        self.rate = rate
        self.chunk_samples = chunk_samples
        self.max_lag_ns = max_lag_ns
        self._start_ns = start_ns
        self._wall_start_ns = wall_start_ns
        self._sent = 0
        self.resyncs = 0

    @property
    def sent_samples(self) -> int:
        """Samples per channel sent so far (as reported through `sent`)."""
        return self._sent

    def sample_time_ns(self, index: int) -> int:
        """Monotonic time at which sample `index` is due (rounded up to whole ns)."""
        return self._start_ns + -(-index * NS_PER_SECOND // self.rate)

    def capture_ns(self, index: int) -> int:
        """Wall-clock capture time to stamp on sample `index` (its nominal time)."""
        return self.sample_time_ns(index) - self._start_ns + self._wall_start_ns

    @property
    def deadline_ns(self) -> int:
        """When the next chunk is due: sleep until then, then call `due`."""
        return self.sample_time_ns(self._sent)

    def due(self, now_ns: int) -> int:
        """How many chunks are due at `now_ns` and not sent yet (0 if the next is early).

        Late wake-ups give more than one: send them all now.
        """
        if now_ns < self.deadline_ns:
            return 0
        if self.max_lag_ns is not None and now_ns - self.deadline_ns > self.max_lag_ns:
            self._restart(now_ns)
        # Highest sample index whose due time is <= now (sample_time_ns is a ceiling).
        newest = (now_ns - self._start_ns) * self.rate // NS_PER_SECOND
        return -(-(newest + 1 - self._sent) // self.chunk_samples)

    def sent(self, samples: int) -> None:
        """Record that `samples` more samples per channel were sent (a chunk, or less)."""
        if samples < 0:
            raise ValueError(f"cannot unsend {samples} samples")
        self._sent += samples

    def shift(self, delta_ns: int) -> None:
        """Move the rest of the schedule `delta_ns` later (a reader changing its phase)."""
        self._start_ns += delta_ns
        self._wall_start_ns += delta_ns

    def _restart(self, now_ns: int) -> None:
        """Shift the schedule so the next chunk is due exactly now."""
        shift = now_ns - self.deadline_ns
        self._start_ns += shift
        self._wall_start_ns += shift
        self.resyncs += 1
