"""The jitter buffer of one session: packets placed by timestamp into a ring of samples.

Packets are decoded (L16 -> float32, Roc's s / 32768) straight into a ring buffer at the
slot of their extended RTP timestamp, with a per-sample "valid" flag beside it. Reordered
packets thus land where they belong without any sorting; reading is one slice copy; a
hole is a run of invalid samples, which the depacketizer conceals. Positions are samples
per channel on the stream's RTP clock (extended timestamps).

Rules (after Roc's delayed reader, depacketizer and sorted queue, ROC_PROTOCOL.md §7.2):

* Initial buffering: nothing is read until the queued span (end of the newest packet minus
  start of the oldest) reaches the target latency. Then the oldest whole packets are
  dropped while the span left stays at or above the target plus `slack`: with slack = one
  read period, what arrived between two reads is kept (a sender that sends its packets in
  pairs, as roc-send does, is not cut), while a backlog (a reader that started late, a
  burst after a stall) is dropped. Playback thus starts with a latency between the target
  and the target plus slack plus one packet. `try_start_exact` (what a receiver session
  uses) starts at a given latency to the sample instead: a backlog is cut mid-packet, and
  a queue short of it is topped up with silence before the first packet.
* While playing, `pos` is the next position to read: a packet ending at or before it is
  late (dropped), one straddling it is trimmed, a packet whose samples are all present
  already is a duplicate (dropped), a packet ending more than `capacity` samples ahead of
  `pos` does not fit (overrun, dropped).
* Invariant: a valid flag is set only for positions in [floor, floor + capacity), where
  floor = pos while playing, and newest end - capacity while buffering; flags of positions
  that fall below the floor are cleared when it moves, and read positions are cleared as
  they are read. So a slot never holds a stale sample that looks valid.
* The `history` samples before the last read stay in the ring (packets may not reach their
  slots: a packet ending beyond that read's start + capacity - history is an overrun), so
  the depacketizer can look back at what it played (`played`) without copying it on every
  read; where what it played differs from what it read (concealment, fades) it writes it
  back (`replace`).

The valid flags are a bytearray: `find(0, i, j)` and slice assignment are C calls an order
of magnitude cheaper than numpy reductions on short slices.
"""

from __future__ import annotations

import bisect
import enum

import numpy as np
import numpy.typing as npt

from ._types import Buffer

__all__ = ["JitterBuffer", "WriteResult"]

_BE_S16 = np.dtype(">i2")
_INV_SCALE = np.float32(1.0 / 32768.0)


class WriteResult(enum.Enum):
    PLACED = "placed"
    TRIMMED = "trimmed"
    """Partly late: the samples not yet played were placed."""
    DUPLICATE = "duplicate"
    LATE = "late"
    OVERRUN = "overrun"
    """Too far ahead of the read position for the ring."""


class JitterBuffer:
    """Ring of `capacity` samples (rounded up to a power of two) of `channels` channels,
    keeping the `history` samples before the last read."""

    __slots__ = (
        "_cap",
        "_channels",
        "_data",
        "_flat",
        "_floor",
        "_history",
        "_mask",
        "_ones",
        "_read_start",
        "_starts",
        "_valid",
        "_zeros",
        "newest_arrival_ns",
        "newest_end",
        "pos",
    )

    def __init__(self, channels: int, capacity: int, *, history: int = 0) -> None:
        if channels < 1 or capacity < 1 or history < 0:
            raise ValueError("channels and capacity must be >= 1, history >= 0")
        cap = 1 << (capacity + history - 1).bit_length()
        self._cap = cap
        self._mask = cap - 1
        self._history = history
        self._channels = channels
        self._data = np.zeros((cap, channels), dtype=np.float32)
        self._flat = self._data.reshape(-1)  # a view
        self._valid = bytearray(cap)
        self._ones = b"\x01" * cap
        self._zeros = bytes(cap)
        self._floor: int | None = None
        self._starts: list[int] = []  # packet starts while buffering, ascending
        self._read_start = 0  # start of the last read
        self.pos: int | None = None
        """Next position to read; None until playback starts."""
        self.newest_end: int | None = None
        """End (exclusive) of the newest packet placed."""
        self.newest_arrival_ns = 0
        """Arrival time of the packet placed last."""

    @property
    def capacity(self) -> int:
        """Samples the ring holds (a power of two)."""
        return self._cap

    @property
    def started(self) -> bool:
        return self.pos is not None

    @property
    def span(self) -> int:
        """Samples from the read position (or oldest packet, while buffering) to the newest
        end; 0 when empty. While playing this is the NIQ latency at the read position."""
        end = self.newest_end
        if end is None:
            return 0
        if self.pos is not None:
            return end - self.pos
        floor = self._floor
        assert floor is not None
        oldest = max(self._starts[0], floor) if self._starts else end
        return end - oldest

    def write(self, start: int, payload: Buffer, arrival_ns: int) -> WriteResult:
        """Place an L16 payload (whole frames of `channels` samples) starting at `start`."""
        channels = self._channels
        n = len(payload) // (2 * channels)
        end = start + n
        pos = self.pos
        if pos is not None:
            floor = pos
            if end <= floor:
                return WriteResult.LATE
            if end - self._read_start > self._cap - self._history:
                return WriteResult.OVERRUN
        else:
            room = self._cap - self._history
            floor = self._floor if self._floor is not None else end - room
            if end - floor > room:
                self._clear(floor, end - room)
                floor = end - room
                del self._starts[: bisect.bisect_left(self._starts, floor)]
            self._floor = floor
            if end <= floor:
                return WriteResult.LATE
        first = start if start >= floor else floor
        mask = self._mask
        i = first & mask
        valid = self._valid
        if valid[i] and valid[(end - 1) & mask]:
            return WriteResult.DUPLICATE
        # Flat views (samples interleaved): fewer numpy calls than (n, channels) shapes.
        samples = np.frombuffer(payload, dtype=_BE_S16)
        if first != start:
            samples = samples[(first - start) * channels :]
        m = end - first
        j = i + m
        cap = self._cap
        flat = self._flat
        if j <= cap:
            # Copy-convert then scale in place: faster than one multiply from big-endian.
            dst = flat[i * channels : j * channels]
            dst[...] = samples
            dst *= _INV_SCALE
            valid[i:j] = self._ones[:m]
        else:
            k = (cap - i) * channels
            np.multiply(samples[:k], _INV_SCALE, out=flat[i * channels :])
            np.multiply(samples[k:], _INV_SCALE, out=flat[: (j - cap) * channels])
            valid[i:] = self._ones[: cap - i]
            valid[: j - cap] = self._ones[: j - cap]
        if self.newest_end is None or end > self.newest_end:
            self.newest_end = end
        self.newest_arrival_ns = arrival_ns
        if pos is None:
            bisect.insort(self._starts, first)
        return WriteResult.PLACED if first == start else WriteResult.TRIMMED

    def try_start(self, target: int, slack: int = 0) -> bool:
        """End initial buffering if the queued span reached `target` samples; True when
        playing. The oldest whole packets beyond target + `slack` are dropped."""
        if self.pos is not None:
            return True
        end = self.newest_end
        if end is None or self.span < target:
            return False
        floor = self._floor
        assert floor is not None
        # The latest packet start (or the floor) that leaves target + slack samples queued.
        starts = self._starts
        k = bisect.bisect_right(starts, end - target - slack)
        pos = max(starts[k - 1] if k else starts[0], floor)
        self._clear(floor, pos)
        self._fill(pos - self._history, np.zeros((self._history, self._channels), np.float32))
        self.pos = self._read_start = pos
        self._floor = None
        self._starts = []
        return True

    def try_start_exact(self, threshold: int, latency: int) -> bool:
        """End initial buffering once the queued span reaches `threshold` samples, reading
        from exactly `latency` samples before the newest end; True when playing.

        Samples older than that are dropped (mid-packet if need be); when `latency` exceeds
        the span, the positions before the oldest packet read as silence (valid zeros: a
        stream that starts, not a hole to conceal). A receiver thus starts its queue at its
        target to the sample, without waiting for a read period more and without cutting
        the first packets of a stream.
        """
        if self.pos is not None:
            return True
        end = self.newest_end
        if end is None or self.span < threshold:
            return False
        floor = self._floor
        assert floor is not None
        oldest = max(self._starts[0], floor) if self._starts else end
        pos = max(end - latency, end - (self._cap - self._history))
        if pos < oldest:
            lead = oldest - pos
            self._fill(pos, np.zeros((lead, self._channels), np.float32))
            self._set_valid(pos, oldest)
        else:
            self._clear(floor, pos)
        self._fill(pos - self._history, np.zeros((self._history, self._channels), np.float32))
        self.pos = self._read_start = pos
        self._floor = None
        self._starts = []
        return True

    def read(self, n: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_] | None]:
        """The next `n` samples (a copy, shape (n, channels)) and the mask of the missing
        ones (None when none is missing). Advances the read position."""
        pos = self.pos
        if pos is None:
            raise RuntimeError("the jitter buffer is still buffering")
        cap = self._cap
        if not 0 < n <= cap - self._history:
            raise ValueError(f"read size must be in 1..{cap - self._history}, got {n}")
        i = pos & self._mask
        j = i + n
        valid = self._valid
        self._read_start = pos
        self.pos = pos + n
        if j <= cap:
            data = self._data[i:j].copy()
            if valid.find(0, i, j) < 0:
                valid[i:j] = self._zeros[:n]
                return data, None
            missing = np.frombuffer(valid, dtype=np.uint8, count=n, offset=i) == 0
            valid[i:j] = self._zeros[:n]
            return data, missing
        k = j - cap
        data = np.concatenate((self._data[i:], self._data[:k]))
        if valid.find(0, i) < 0 and valid.find(0, 0, k) < 0:
            missing = None
        else:
            flags = np.frombuffer(valid, dtype=np.uint8)
            missing = np.concatenate((flags[i:], flags[:k])) == 0
        valid[i:] = self._zeros[: cap - i]
        valid[:k] = self._zeros[:k]
        return data, missing

    def played(self, start: int, n: int) -> npt.NDArray[np.float32]:
        """A copy of read positions [start, start + n): the last read and the `history`
        samples before it (as read, or as replaced)."""
        pos = self.pos
        if pos is None or start < self._read_start - self._history or start + n > pos:
            raise ValueError("played() reaches outside the kept history")
        i = start & self._mask
        j = i + n
        if j <= self._cap:
            return self._data[i:j].copy()
        return np.concatenate((self._data[i:], self._data[: j - self._cap]))

    def replace(self, start: int, samples: npt.NDArray[np.float32]) -> None:
        """Overwrite read positions from `start` with what was played instead (concealment),
        so that `played` returns it."""
        pos = self.pos
        if pos is None or start < self._read_start - self._history or start + len(samples) > pos:
            raise ValueError("replace() reaches outside the kept history")
        self._fill(start, samples)

    def _fill(self, start: int, samples: npt.NDArray[np.float32]) -> None:
        i = start & self._mask
        j = i + len(samples)
        if j <= self._cap:
            self._data[i:j] = samples
        else:
            k = self._cap - i
            self._data[i:] = samples[:k]
            self._data[: j - self._cap] = samples[k:]

    def _set_valid(self, a: int, b: int) -> None:
        """Set the valid flags of positions [a, b) (b - a < capacity)."""
        i = a & self._mask
        j = i + (b - a)
        valid = self._valid
        if j <= self._cap:
            valid[i:j] = self._ones[: j - i]
        else:
            valid[i:] = self._ones[: self._cap - i]
            valid[: j - self._cap] = self._ones[: j - self._cap]

    def _clear(self, a: int, b: int) -> None:
        """Clear the valid flags of positions [a, b)."""
        if b <= a:
            return
        valid = self._valid
        cap = self._cap
        if b - a >= cap:
            valid[:] = self._zeros
            return
        i = a & self._mask
        j = i + (b - a)
        if j <= cap:
            valid[i:j] = self._zeros[: j - i]
        else:
            valid[i:] = self._zeros[: cap - i]
            valid[: j - cap] = self._zeros[: j - cap]
