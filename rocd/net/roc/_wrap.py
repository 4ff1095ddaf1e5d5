"""Wrap-around arithmetic for RTP sequence numbers (16 bits) and timestamps (32 bits).

RTP counters start at random values and wrap, so "newer" means "ahead by less than half
the counter range" (RFC 1982 serial-number arithmetic). The extenders turn the wrapped
counters of one stream into unbounded integers that keep their order, which is what the
jitter buffer, loss accounting and RTCP reports need.
"""

from __future__ import annotations

SEQ_BITS = 16
SEQ_MOD = 1 << SEQ_BITS
TS_BITS = 32
TS_MOD = 1 << TS_BITS


def seq_diff(a: int, b: int) -> int:
    """Signed distance `a - b` between two 16-bit sequence numbers, in [-32768, 32767].

    Positive when `a` is newer than `b`. Exactly half the range apart counts as older.
    """
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_add(seq: int, n: int) -> int:
    """`seq + n` modulo 2**16 (`n` may be negative)."""
    return (seq + n) & 0xFFFF


def seq_lt(a: int, b: int) -> bool:
    """True when sequence number `a` is older than `b`."""
    return seq_diff(a, b) < 0


def seq_le(a: int, b: int) -> bool:
    """True when sequence number `a` is older than or equal to `b`."""
    return seq_diff(a, b) <= 0


def ts_diff(a: int, b: int) -> int:
    """Signed distance `a - b` between two 32-bit RTP timestamps, in samples.

    The result is in [-2**31, 2**31 - 1]; positive when `a` is later than `b`.
    """
    return ((a - b + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000


def ts_add(ts: int, n: int) -> int:
    """`ts + n` samples modulo 2**32 (`n` may be negative)."""
    return (ts + n) & 0xFFFF_FFFF


def ts_lt(a: int, b: int) -> bool:
    """True when timestamp `a` is earlier than `b`."""
    return ts_diff(a, b) < 0


def ts_le(a: int, b: int) -> bool:
    """True when timestamp `a` is earlier than or equal to `b`."""
    return ts_diff(a, b) <= 0


class WrapExtender:
    """Turns wrapped `bits`-bit counters of one stream into monotonic unbounded integers.

    The first value extends to itself. Every later value is placed at the extended
    position nearest to the newest value seen so far (less than half the range away), so
    reordered and duplicated packets get the same extended value as they would have had in
    order. A value older than the very first one may extend to a negative number; callers
    that need a non-negative count (an RTCP extended highest sequence number) use the
    newest value, which never goes below the first one.
    """

    __slots__ = ("_half", "_highest", "_mask")

    def __init__(self, bits: int) -> None:
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        self._mask = (1 << bits) - 1
        self._half = 1 << (bits - 1)
        self._highest: int | None = None

    @property
    def highest(self) -> int | None:
        """The newest extended value seen so far; None before the first `extend`."""
        return self._highest

    def unwrap(self, value: int) -> int:
        """The extended value of `value`, without recording it."""
        value &= self._mask
        highest = self._highest
        if highest is None:
            return value
        delta = ((value - highest + self._half) & self._mask) - self._half
        return highest + delta

    def extend(self, value: int) -> int:
        """The extended value of `value`; remembers it when it is the newest so far."""
        ext = self.unwrap(value)
        if self._highest is None or ext > self._highest:
            self._highest = ext
        return ext

    def reset(self) -> None:
        """Forget the stream (a new SSRC starts a new numbering)."""
        self._highest = None


class SeqExtender(WrapExtender):
    """`WrapExtender` for 16-bit RTP sequence numbers."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(SEQ_BITS)


class TimestampExtender(WrapExtender):
    """`WrapExtender` for 32-bit RTP timestamps (units: samples per channel)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(TS_BITS)
