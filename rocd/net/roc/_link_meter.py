"""What the network did to one RTP stream: packets received, lost, duplicated, and jitter.

Counts follow RFC 3550 (§6.4.1, appendix A.3 and A.8), over the packets that came off the
network (FEC-rebuilt packets are not network arrivals and are counted elsewhere):

* expected = extended highest sequence number - extended first sequence number + 1;
* received = distinct sequence numbers that arrived (a second copy counts as duplicated);
* lost = expected - received (cumulative, what an RTCP report block carries);
* interarrival jitter J, in timestamp units: for consecutive arrivals i, j,
  D = (R_j - R_i) - (S_j - S_i) with R the arrival time in timestamp units and S the RTP
  timestamp, and J += (|D| - J) / 16.

Peak jitter: the largest |D| over roughly the last `PEAK_BLOCKS` x `PEAK_BLOCK` packets
(maxima of fixed blocks of packets, so each arrival costs one comparison), what an
adaptive target latency must absorb.

Duplicates are recognised within the last `DUP_WINDOW` sequence numbers (a slot per
number, no set to prune): farther reordering is beyond the RTP filter's reach anyway.
"""

from __future__ import annotations

__all__ = ["LinkMeter"]

DUP_WINDOW = 1024
"""Sequence numbers remembered for duplicate detection (a power of two)."""

PEAK_BLOCK = 200
"""Packets per block of the peak jitter window (1 s of 5 ms packets)."""
PEAK_BLOCKS = 5
"""Blocks the peak jitter looks back over."""


class LinkMeter:
    """RFC 3550 reception statistics of one stream at `rate` Hz (its RTP clock)."""

    __slots__ = (
        "_block_count",
        "_block_max",
        "_last_transit",
        "_peaks",
        "_seen",
        "_ts_per_ns",
        "duplicated",
        "first_seq",
        "highest_seq",
        "jitter",
        "received",
    )

    def __init__(self, rate: int) -> None:
        self._ts_per_ns = rate / 1e9
        self._seen = [-1] * DUP_WINDOW
        self._last_transit: float | None = None
        self.first_seq: int | None = None
        """Extended sequence number of the first packet."""
        self.highest_seq: int | None = None
        """Extended highest sequence number received."""
        self.received = 0
        self.duplicated = 0
        self.jitter = 0.0
        """Interarrival jitter estimate, in timestamp units (samples)."""
        self._block_max = 0.0
        self._block_count = 0
        self._peaks: list[float] = []

    def on_packet(self, ext_seq: int, ext_ts: int, arrival_ns: int) -> bool:
        """Record an arrival (extended seq and timestamp); False if it is a duplicate."""
        slot = ext_seq & (DUP_WINDOW - 1)
        seen = self._seen
        if seen[slot] == ext_seq:
            self.duplicated += 1
            return False
        seen[slot] = ext_seq
        self.received += 1
        if self.first_seq is None:
            self.first_seq = self.highest_seq = ext_seq
        else:
            if ext_seq > self.highest_seq:  # type: ignore[operator]
                self.highest_seq = ext_seq
            if ext_seq < self.first_seq:
                # Reordered before the first one: the stream started earlier (RFC 3550
                # would count it as received but not expected; we widen the range).
                self.first_seq = ext_seq
        transit = arrival_ns * self._ts_per_ns - ext_ts
        last = self._last_transit
        if last is not None:
            d = transit - last
            if d < 0:
                d = -d
            self.jitter += (d - self.jitter) * 0.0625
            if d > self._block_max:
                self._block_max = d
            self._block_count += 1
            if self._block_count == PEAK_BLOCK:
                self._peaks.append(self._block_max)
                if len(self._peaks) > PEAK_BLOCKS:
                    del self._peaks[0]
                self._block_max = 0.0
                self._block_count = 0
        self._last_transit = transit
        return True

    @property
    def peak_jitter(self) -> float:
        """Largest transit-time variation |D| of the recent packets (timestamp units)."""
        return max(self._block_max, *self._peaks) if self._peaks else self._block_max

    @property
    def expected(self) -> int:
        """Packets expected from the sequence number range seen so far."""
        if self.first_seq is None or self.highest_seq is None:
            return 0
        return self.highest_seq - self.first_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost (expected - received; never negative here)."""
        return max(0, self.expected - self.received)
