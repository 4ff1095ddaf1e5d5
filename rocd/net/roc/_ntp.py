"""NTP timestamps and durations as RTCP carries them (RFC 3550 §4, RFC 5905 §6).

* NTP64: 32.32 fixed-point seconds since 1900-01-01 (SR sender time, RRTR, and the
  64-bit XR metrics, which are durations in the same format).
* NTP32: the middle 32 bits of an NTP64, 16.16 fixed-point seconds (LSR, DLSR, LRR,
  DLRR and the 32-bit XR metrics).

The seconds field wraps in 2036. As RFC 4330 §3 proposes and Roc does, a timestamp whose
top bit is clear is read as era 1 (2036-02-07 .. 2104), one whose top bit is set as era 0
(1968-01-20 .. 2036-02-07).

XR metrics mark a missing value with all ones; a present value is clamped just below
(0xFFFFFFFE / 0xFFFFFFFF_FFFFFFFE) so it is never mistaken for the marker. The
`*_metric*` helpers map None <-> that marker.

All times here are integers: Unix time and durations in nanoseconds. Conversions round to
the nearest unit (1 NTP64 unit is 0.23 ns, so ns -> NTP64 -> ns is exact).
"""

from __future__ import annotations

NS_PER_SECOND = 1_000_000_000

#: Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
NTP_UNIX_OFFSET_S = 2_208_988_800

#: "Value unavailable" markers of Roc's XR metrics.
NTP32_UNAVAILABLE = 0xFFFF_FFFF
NTP64_UNAVAILABLE = 0xFFFF_FFFF_FFFF_FFFF

_NTP32_MAX = NTP32_UNAVAILABLE - 1
_NTP64_MAX = NTP64_UNAVAILABLE - 1
_MASK32 = 0xFFFF_FFFF
_MASK64 = 0xFFFF_FFFF_FFFF_FFFF
_ERA_SECONDS = 1 << 32


def _div_round(num: int, den: int) -> int:
    """num / den rounded to nearest, halves up (den > 0)."""
    return (2 * num + den) // (2 * den)


def unix_ns_to_ntp64(unix_ns: int) -> int:
    """NTP64 timestamp of a Unix time in ns (seconds taken modulo the 2**32-second era)."""
    ntp_ns = unix_ns + NTP_UNIX_OFFSET_S * NS_PER_SECOND
    return _div_round(ntp_ns << 32, NS_PER_SECOND) & _MASK64


def ntp64_to_unix_ns(ntp64: int) -> int:
    """Unix time in ns of an NTP64 timestamp, reading the era from the top bit.

    Covers 1968-01-20 .. 2104-02-26; earlier or later times alias into that range.
    """
    ntp64 &= _MASK64
    if not ntp64 >> 63:
        ntp64 += _ERA_SECONDS << 32  # era 1: 2036 and later
    return _div_round(ntp64 * NS_PER_SECOND, 1 << 32) - NTP_UNIX_OFFSET_S * NS_PER_SECOND


def ntp64_to_ntp32(ntp64: int) -> int:
    """The middle 32 bits of an NTP64 timestamp (how LSR and LRR quote an SR or RRTR)."""
    return (ntp64 >> 16) & _MASK32


def ntp32_diff(a: int, b: int) -> int:
    """`a - b` for two NTP32 values modulo 2**32 (an RTT: arrival - LSR - DLSR)."""
    return (a - b) & _MASK32


def ns_to_ntp64(duration_ns: int) -> int:
    """A non-negative duration in ns as 32.32 seconds; ValueError if it does not fit."""
    if duration_ns < 0:
        raise ValueError(f"duration must be >= 0, got {duration_ns} ns")
    value = _div_round(duration_ns << 32, NS_PER_SECOND)
    if value > _MASK64:
        raise ValueError(f"duration of {duration_ns} ns does not fit in NTP64")
    return value


def ntp64_to_ns(ntp64: int) -> int:
    """A 32.32-seconds duration in ns."""
    return _div_round((ntp64 & _MASK64) * NS_PER_SECOND, 1 << 32)


def ns_to_ntp32(duration_ns: int) -> int:
    """A non-negative duration in ns as 16.16 seconds; ValueError if it does not fit."""
    if duration_ns < 0:
        raise ValueError(f"duration must be >= 0, got {duration_ns} ns")
    value = _div_round(duration_ns << 16, NS_PER_SECOND)
    if value > _MASK32:
        raise ValueError(f"duration of {duration_ns} ns does not fit in NTP32")
    return value


def ntp32_to_ns(ntp32: int) -> int:
    """A 16.16-seconds duration in ns."""
    return _div_round((ntp32 & _MASK32) * NS_PER_SECOND, 1 << 16)


def metric_to_ntp32(duration_ns: int | None) -> int:
    """An XR/RR metric field: None -> 0xFFFFFFFF, else 16.16 s clamped to [0, 0xFFFFFFFE]."""
    if duration_ns is None:
        return NTP32_UNAVAILABLE
    if duration_ns <= 0:
        return 0
    return min(_div_round(duration_ns << 16, NS_PER_SECOND), _NTP32_MAX)


def ntp32_to_metric(ntp32: int) -> int | None:
    """The duration in ns of an NTP32 metric field, None for the unavailable marker."""
    if ntp32 == NTP32_UNAVAILABLE:
        return None
    return ntp32_to_ns(ntp32)


def metric_to_ntp64(duration_ns: int | None) -> int:
    """As `metric_to_ntp32` for 32.32 fields (marker 0xFFFFFFFF_FFFFFFFF)."""
    if duration_ns is None:
        return NTP64_UNAVAILABLE
    if duration_ns <= 0:
        return 0
    return min(_div_round(duration_ns << 32, NS_PER_SECOND), _NTP64_MAX)


def ntp64_to_metric(ntp64: int) -> int | None:
    """The duration in ns of an NTP64 metric field, None for the unavailable marker."""
    if ntp64 == NTP64_UNAVAILABLE:
        return None
    return ntp64_to_ns(ntp64)
