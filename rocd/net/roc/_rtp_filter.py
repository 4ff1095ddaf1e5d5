"""Roc's per-session RTP filter: drop packets that cannot belong to the stream being played.

A session follows one sender. Roc's receiver (`roc_rtp/filter.cpp`, ROC_PROTOCOL.md §2.4)
drops a packet whose SSRC or payload type differs from the stream's, whose sequence number
jumps by more than 100 or whose timestamp jumps by more than one second away from the
stream. A restarted sender (same address, new numbering) is thus ignored until the
watchdog ends the old session and a new one starts.

The jumps are measured against the newest accepted packet (not the previous one, as Roc
does), so that reordering cannot make a late packet the reference. The filter also extends
the 16-bit sequence number and the 32-bit timestamp of accepted packets into unbounded
integers (as `_wrap.py`'s extenders do): the jitter buffer places packets by extended
timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._wrap import seq_diff, ts_diff

__all__ = ["MAX_SEQ_JUMP", "RtpFilter", "RtpFilterStats"]

MAX_SEQ_JUMP = 100
"""Largest accepted sequence number distance from the newest packet (Roc's default)."""


@dataclass(slots=True)
class RtpFilterStats:
    """Packets dropped by the filter, by reason."""

    ssrc: int = 0
    payload_type: int = 0
    seq_jump: int = 0
    ts_jump: int = 0

    @property
    def total(self) -> int:
        return self.ssrc + self.payload_type + self.seq_jump + self.ts_jump


class RtpFilter:
    """Accepts the packets of one stream (SSRC, payload type) and extends their counters.

    `rate` is the payload encoding's sample rate (Hz): the timestamp jump limit is one
    second of it. Extension is `WrapExtender`'s rule (nearest to the newest value), written
    out inline: this runs for every packet.
    """

    __slots__ = ("_highest_seq", "_highest_ts", "_max_ts_jump", "payload_type", "ssrc", "stats")

    def __init__(self, ssrc: int, payload_type: int, rate: int) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self._max_ts_jump = rate
        self._highest_seq: int | None = None
        self._highest_ts = 0
        self.stats = RtpFilterStats()

    @property
    def highest_seq(self) -> int | None:
        """Extended sequence number of the newest accepted packet."""
        return self._highest_seq

    def check(self, ssrc: int, payload_type: int, seq: int, ts: int) -> tuple[int, int] | None:
        """(extended seq, extended timestamp) of an accepted packet; None if it is dropped."""
        if ssrc != self.ssrc:
            self.stats.ssrc += 1
            return None
        if payload_type != self.payload_type:
            self.stats.payload_type += 1
            return None
        high_seq = self._highest_seq
        if high_seq is None:
            self._highest_seq = seq
            self._highest_ts = ts
            return seq, ts
        high_ts = self._highest_ts
        ext_seq = high_seq + seq_diff(seq, high_seq)
        ext_ts = high_ts + ts_diff(ts, high_ts)
        if abs(ext_seq - high_seq) > MAX_SEQ_JUMP:
            self.stats.seq_jump += 1
            return None
        if abs(ext_ts - high_ts) > self._max_ts_jump:
            self.stats.ts_jump += 1
            return None
        if ext_seq > high_seq:
            self._highest_seq = ext_seq
        if ext_ts > high_ts:
            self._highest_ts = ext_ts
        return ext_seq, ext_ts
