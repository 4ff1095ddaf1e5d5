"""Roc's per-session RTP filter: drop packets that cannot belong to the stream being played.

A session follows one sender. Roc's receiver (`roc_rtp/filter.cpp`, ROC_PROTOCOL.md §2.4)
drops a packet whose SSRC or payload type differs from the stream's, whose sequence number
jumps by more than 100 or whose timestamp jumps by more than one second away from the
stream. A restarted sender (same address, new numbering) is thus ignored until the
watchdog ends the old session and a new one starts.

The jumps are measured against the newest accepted packet (not the previous one, as Roc
does), so that reordering cannot make a late packet the reference. The filter also extends
the 16-bit sequence number and the 32-bit timestamp of accepted packets into unbounded
integers (`_wrap.py`): the jitter buffer places packets by extended timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._wrap import SeqExtender, TimestampExtender

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
    second of it.
    """

    __slots__ = ("_max_ts_jump", "_seq", "_ts", "payload_type", "ssrc", "stats")

    def __init__(self, ssrc: int, payload_type: int, rate: int) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self._max_ts_jump = rate
        self._seq = SeqExtender()
        self._ts = TimestampExtender()
        self.stats = RtpFilterStats()

    @property
    def highest_seq(self) -> int | None:
        """Extended sequence number of the newest accepted packet."""
        return self._seq.highest

    def check(self, ssrc: int, payload_type: int, seq: int, ts: int) -> tuple[int, int] | None:
        """(extended seq, extended timestamp) of an accepted packet; None if it is dropped."""
        if ssrc != self.ssrc:
            self.stats.ssrc += 1
            return None
        if payload_type != self.payload_type:
            self.stats.payload_type += 1
            return None
        seq_ext = self._seq
        ts_ext = self._ts
        highest = seq_ext.highest
        ext_seq = seq_ext.unwrap(seq)
        ext_ts = ts_ext.unwrap(ts)
        if highest is not None:
            if abs(ext_seq - highest) > MAX_SEQ_JUMP:
                self.stats.seq_jump += 1
                return None
            newest_ts = ts_ext.highest
            assert newest_ts is not None
            if abs(ext_ts - newest_ts) > self._max_ts_jump:
                self.stats.ts_jump += 1
                return None
        seq_ext.extend(seq)
        ts_ext.extend(ts)
        return ext_seq, ext_ts
