"""What both RTCP roles share: Roc's timing, identities, and clock arithmetic.

Roc 0.4 sends a compound report every 200 ms on a fixed schedule (not RFC 3550's
randomised interval) and forgets a peer after 5 s without RTCP from it (§6.1). Times
come in two kinds, both passed in by the caller, never read here:

* `now_ns`: a monotonic clock (trio.current_time() in ns): schedules, timeouts and the
  delays quoted in DLSR / DLRR, so a wall-clock step cannot distort them;
* `wall_ns`: Unix time in ns: NTP timestamps on the wire (SR, RRTR) and round-trip times,
  which compare our own NTP stamps echoed back (LSR, LRR) with the arrival wall time.
"""

from __future__ import annotations

import random
import uuid

from ._ntp import ns_to_ntp32, ntp32_diff, ntp32_to_ns, ntp64_to_ntp32, unix_ns_to_ntp64

__all__ = [
    "INACTIVITY_TIMEOUT_NS",
    "REPORT_INTERVAL_NS",
    "ReportTimer",
    "hold_ntp32",
    "random_cname",
    "random_ssrc",
    "round_trip_ns",
    "wall_ntp32",
]

REPORT_INTERVAL_NS = 200_000_000
"""Roc's `report_interval`: one compound report every 200 ms."""

INACTIVITY_TIMEOUT_NS = 5_000_000_000
"""Roc's `inactivity_timeout`: a peer silent for 5 s is gone."""

_MAX_RTT_NS = 60_000_000_000  # an "RTT" above a minute is a stale or bogus echo
_MAX_HOLD_NS = 65_535 * 1_000_000_000  # NTP32 durations end near 65536 s
_NTP32_MAX = 0xFFFF_FFFF


def random_ssrc(rng: random.Random, *, avoid: int | None = None) -> int:
    """A random SSRC in 1..2**32-1 (Roc never uses 0), different from `avoid`."""
    while True:
        ssrc = rng.randint(1, 0xFFFF_FFFF)
        if ssrc != avoid:
            return ssrc


def random_cname(rng: random.Random) -> str:
    """A random UUID v4 string (36 lowercase characters), Roc's CNAME format."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def wall_ntp32(wall_ns: int) -> int:
    """The NTP32 (middle 32 bits of NTP64) of a Unix time in ns."""
    return ntp64_to_ntp32(unix_ns_to_ntp64(wall_ns))


def hold_ntp32(held_ns: int) -> int:
    """A DLSR / DLRR field: how long we held the peer's stamp (ns, monotonic), as NTP32.

    Negative holds (a clock that went back) read as 0; holds beyond the field saturate.
    """
    if held_ns <= 0:
        return 0
    return ns_to_ntp32(held_ns) if held_ns < _MAX_HOLD_NS else _NTP32_MAX


def round_trip_ns(arrival_wall_ns: int, echoed_ntp32: int, delay_ntp32: int) -> int | None:
    """RTT from an echoed NTP32 stamp of ours (LSR / LRR) and the peer's hold time.

    RFC 3550 §6.4.1: RTT = arrival - LSR - DLSR, all NTP32. None when the peer echoes
    nothing (0) or the result is not a plausible duration (a stale or corrupt echo).
    """
    if not echoed_ntp32:
        return None
    rtt = ntp32_diff(ntp32_diff(wall_ntp32(arrival_wall_ns), echoed_ntp32), delay_ntp32)
    if rtt >= 0x8000_0000:  # negative: the peer's delay exceeds what elapsed here
        return None
    rtt_ns = ntp32_to_ns(rtt)
    return rtt_ns if rtt_ns <= _MAX_RTT_NS else None


class ReportTimer:
    """A fixed-period schedule, as Roc's: one deadline advanced by the interval.

    The first `due` call fires at once (and starts the schedule). Missed periods are not
    made up in a burst: after a stall the schedule restarts from now.
    """

    __slots__ = ("_deadline", "interval_ns")

    def __init__(self, interval_ns: int = REPORT_INTERVAL_NS) -> None:
        if interval_ns <= 0:
            raise ValueError(f"interval must be positive, got {interval_ns} ns")
        self.interval_ns = interval_ns
        self._deadline: int | None = None

    @property
    def deadline_ns(self) -> int | None:
        """When the next report is due; None before the schedule started."""
        return self._deadline

    def due(self, now_ns: int) -> bool:
        """True when a report is due at `now_ns`; the schedule then moves on one period."""
        deadline = self._deadline
        if deadline is None:
            self._deadline = now_ns + self.interval_ns
            return True
        if now_ns < deadline:
            return False
        deadline += self.interval_ns
        self._deadline = deadline if deadline > now_ns else now_ns + self.interval_ns
        return True

    def reset(self) -> None:
        """Stop the schedule; the next `due` fires at once."""
        self._deadline = None
