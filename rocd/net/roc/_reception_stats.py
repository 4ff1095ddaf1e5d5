"""What a receiving session tells its RTCP reporter about one sender's stream.

The receiver pipeline fills one `ReceptionStats` per session (sender SSRC) whenever the
reporter asks; the reporter turns it into the RR report block and the XR metric blocks
roc-recv sends (ROC_PROTOCOL.md §6.2, §6.4). Counts follow RFC 3550 §6.4.1 and A.3;
fraction lost over the report interval is derived by the reporter from two successive
snapshots, so the pipeline only keeps running totals.
"""

from __future__ import annotations

import msgspec

__all__ = ["ReceptionStats"]


class ReceptionStats(msgspec.Struct, frozen=True):
    """A snapshot of one received stream (sender `ssrc`), taken at report time."""

    ssrc: int  # the sender's SSRC
    first_seq: int  # 16-bit sequence number of the first packet received
    ext_highest_seq: int  # extended highest sequence number received (cycles << 16 | seq)
    expected_packets: int  # ext_highest_seq - extended first seq + 1
    lost_packets: int  # expected - received (may go negative with duplicates)
    jitter: int  # interarrival jitter (RFC 3550 A.8), RTP timestamp units
    niq_latency_ns: int | None = None  # audio queued in the receiver (None before playback)
    niq_stalling_ns: int | None = None  # time since the newest packet arrived
    e2e_latency_ns: int | None = None  # playback wall time - capture wall time, if known
