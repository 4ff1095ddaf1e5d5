"""The sender's side of RTCP, as roc-send 0.4 behaves (ROC_PROTOCOL.md §6).

Out: every 200 ms, once the first audio packet has left, a compound of

    SR (SSRC = RTP SSRC, no report blocks)    28 bytes
    XR with one DLRR sub-block per receiver   only once a receiver sent RR and RRTR
    SDES CNAME                                48 bytes for a 36-character CNAME

The SR pairs the wall clock now (NTP) with the RTP timestamp whose capture time is now,
extrapolated from the newest packet's capture time, so a receiver can tell when each
sample was captured (§6.4). Counts are of packets and payload bytes since the SSRC began.

In: receiver reports (RR blocks about our SSRC, XR RRTR, Delay Metrics, Queue Metrics
BT 220) become per-receiver feedback; a receiver silent for 5 s, or saying BYE, is
forgotten. SSRC collisions (§6.7): a report from another participant using our SSRC with
another CNAME makes us pick a new SSRC and say BYE for the old one in the next report;
with our own CNAME it is our traffic looped back, and that datagram is ignored.
"""

from __future__ import annotations

import random

import msgspec

from ._ntp import ntp64_to_ntp32, unix_ns_to_ntp64
from ._rtcp import Bye, ReceiverReport, ReportBlock, Sdes, SdesChunk, SenderReport
from ._rtcp_compound import RtcpPacket, parse_rtcp, serialize_rtcp
from ._rtcp_session import (
    INACTIVITY_TIMEOUT_NS,
    REPORT_INTERVAL_NS,
    ReportTimer,
    hold_ntp32,
    random_ssrc,
    round_trip_ns,
)
from ._rtcp_xr import DelayMetrics, Dlrr, DlrrSubBlock, ExtendedReport, QueueMetrics, Rrtr
from ._types import Buffer
from ._wrap import ts_add

__all__ = ["ReceiverFeedback", "SenderReporter", "SsrcChanged"]

_NS_PER_MS = 1_000_000

DEFAULT_MAX_RECEIVERS = 64
"""Receivers whose feedback a sending stream tracks at once (entries expire after 5 s)."""


class ReceiverFeedback(msgspec.Struct, frozen=True):
    """What one receiver reports about our stream (None: not reported yet).

    `rtt_ms` is measured here (RR LSR/DLSR); the rest is the receiver's word: loss over
    its last report interval and in total, interarrival jitter, its network incoming
    queue (NIQ latency, time since our newest packet arrived) and end-to-end latency
    (capture here -> playback there; meaningful with synchronised clocks only).
    """

    ssrc: int
    cname: str | None = None
    rtt_ms: float | None = None
    fraction_lost: float | None = None  # 0..1, over the receiver's last interval
    cumulative_lost: int | None = None  # packets
    highest_seq: int | None = None  # extended highest sequence number received
    jitter_ms: float | None = None
    niq_latency_ms: float | None = None
    niq_stalling_ms: float | None = None
    e2e_latency_ms: float | None = None


class SsrcChanged(msgspec.Struct, frozen=True):
    """We took a new SSRC after a collision; RTP from now on must carry `new`."""

    old: int
    new: int


class _Receiver:
    __slots__ = ("feedback", "last_heard_ns", "rr_seen", "rrtr_arrival_ns", "rrtr_ntp32")

    def __init__(self, ssrc: int, now_ns: int) -> None:
        self.feedback = ReceiverFeedback(ssrc)
        self.last_heard_ns = now_ns
        self.rr_seen = False
        self.rrtr_ntp32: int | None = None  # middle bits of the receiver's last RRTR
        self.rrtr_arrival_ns = 0  # monotonic arrival time of that RRTR

    def dlrr(self, now_ns: int) -> DlrrSubBlock | None:
        """Its DLRR sub-block; Roc lists a receiver once it sent both RR and RRTR."""
        if not self.rr_seen or self.rrtr_ntp32 is None:
            return None
        delay = hold_ntp32(now_ns - self.rrtr_arrival_ns)
        return DlrrSubBlock(self.feedback.ssrc, self.rrtr_ntp32, delay)


def _ms(ns: int | None) -> float | None:
    return None if ns is None else ns / _NS_PER_MS


class SenderReporter:
    """RTCP for one sending stream: reports out (`poll`), receiver reports in (`handle`).

    Feed it every packet sent (`on_sent`, once per batch). Call `poll` after sending
    packets and at `deadline_ns`: the first report leaves as soon as a packet has left.
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        ssrc: int,
        cname: str,
        rate: int,
        interval_ns: int = REPORT_INTERVAL_NS,
        timeout_ns: int = INACTIVITY_TIMEOUT_NS,
        max_receivers: int = DEFAULT_MAX_RECEIVERS,
    ) -> None:
        if max_receivers < 1:
            raise ValueError(f"max_receivers must be >= 1, got {max_receivers}")
        self._rng = rng
        self.max_receivers = max_receivers
        self.receivers_refused = 0
        """Receiver reports not tracked because `max_receivers` receivers were (a flood of
        reports from made-up SSRCs cannot grow the table)."""
        self.ssrc = ssrc
        self.cname = cname
        self.rate = rate  # Hz of the RTP clock
        self.timeout_ns = timeout_ns
        self._timer = ReportTimer(interval_ns)
        self._receivers: dict[int, _Receiver] = {}
        self._packets = 0
        self._octets = 0
        self._last_ts: int | None = None  # RTP timestamp of the newest packet
        self._last_capture_ns = 0  # its capture time (wall clock)
        self._bye: list[int] = []  # old SSRCs to say goodbye for in the next report
        self.collisions = 0
        self.reports_sent = 0

    # -- the stream -------------------------------------------------------------------

    def on_sent(self, packets: int, octets: int, last_timestamp: int, last_capture_ns: int) -> None:
        """`packets` RTP packets with `octets` payload bytes left; the newest one has RTP
        timestamp `last_timestamp`, captured at wall time `last_capture_ns`."""
        self._packets += packets
        self._octets += octets
        self._last_ts = last_timestamp
        self._last_capture_ns = last_capture_ns

    def rtp_timestamp_at(self, wall_ns: int) -> int | None:
        """The RTP timestamp whose capture time is `wall_ns` (None before any packet)."""
        if self._last_ts is None:
            return None
        delta_ns = wall_ns - self._last_capture_ns
        samples = (2 * delta_ns * self.rate + 1_000_000_000) // 2_000_000_000
        return ts_add(self._last_ts, samples)

    # -- reports out ------------------------------------------------------------------

    @property
    def deadline_ns(self) -> int | None:
        """When `poll` will next have a report; None until the first one went out."""
        return self._timer.deadline_ns

    def poll(self, now_ns: int, wall_ns: int) -> bytes | None:
        """The compound report due at `now_ns`, if any (none before the first packet)."""
        if self._last_ts is None:
            return None
        self._expire(now_ns)
        if not self._timer.due(now_ns):
            return None
        return self.report(now_ns, wall_ns)

    def report(self, now_ns: int, wall_ns: int, *, bye: bool = False) -> bytes:
        """A compound report now, off schedule; with `bye`, ending with BYE for our SSRC."""
        packets: list[RtcpPacket] = [self._head(wall_ns)]
        subblocks = [sub for r in self._receivers.values() if (sub := r.dlrr(now_ns)) is not None]
        if subblocks:
            packets.append(ExtendedReport(self.ssrc, (Dlrr(tuple(subblocks)),)))
        packets.append(Sdes((SdesChunk.with_cname(self.ssrc, self.cname),)))
        leaving = [*self._bye, self.ssrc] if bye else self._bye
        if leaving:
            packets.append(Bye(tuple(leaving)))
            self._bye = []
        self.reports_sent += 1
        return serialize_rtcp(packets)

    def goodbye(self, now_ns: int, wall_ns: int) -> bytes:
        """The last report of a stream that stops, with BYE (roc-send sends none; a
        receiver that gets it ends the session at once instead of after a timeout)."""
        return self.report(now_ns, wall_ns, bye=True)

    def _head(self, wall_ns: int) -> RtcpPacket:
        ts = self.rtp_timestamp_at(wall_ns)
        if ts is None:  # nothing sent yet: RFC 3550 wants RR first in a compound
            return ReceiverReport(self.ssrc)
        return SenderReport(
            self.ssrc,
            unix_ns_to_ntp64(wall_ns),
            ts,
            self._packets & 0xFFFF_FFFF,
            self._octets & 0xFFFF_FFFF,
        )

    # -- reports in -------------------------------------------------------------------

    def handle(self, data: Buffer, now_ns: int, wall_ns: int) -> list[SsrcChanged]:
        """Take in a datagram from a receiver; MalformedPacket if it is not RTCP.

        Returns the SSRC change a collision forced, if any.
        """
        packets = parse_rtcp(data)
        cnames = {
            chunk.ssrc: chunk.cname for p in packets if isinstance(p, Sdes) for chunk in p.chunks
        }
        events: list[SsrcChanged] = []
        if self._collides(packets):
            if cnames.get(self.ssrc) == self.cname:
                return events  # our own report looped back
            events.append(self._change_ssrc())
        for packet in packets:
            if isinstance(packet, ReceiverReport):
                self._on_receiver_report(packet.ssrc, packet.reports, now_ns, wall_ns)
            elif isinstance(packet, SenderReport):
                # A peer that also sends (a duplex peer): its blocks may report on us.
                if any(b.ssrc == self.ssrc for b in packet.reports):
                    self._on_receiver_report(packet.ssrc, packet.reports, now_ns, wall_ns)
            elif isinstance(packet, ExtendedReport):
                self._on_xr(packet, now_ns)
        for ssrc, cname in cnames.items():
            receiver = self._receivers.get(ssrc)
            if receiver is not None and cname is not None:
                receiver.feedback = msgspec.structs.replace(receiver.feedback, cname=cname)
        for packet in packets:
            if isinstance(packet, Bye):
                for ssrc in packet.ssrcs:
                    self._receivers.pop(ssrc, None)
        return events

    def _collides(self, packets: list[RtcpPacket]) -> bool:
        ours = self.ssrc
        for p in packets:
            if isinstance(p, SenderReport | ReceiverReport | ExtendedReport) and p.ssrc == ours:
                return True
            if isinstance(p, Sdes) and any(c.ssrc == ours for c in p.chunks):
                return True
        return False

    def _change_ssrc(self) -> SsrcChanged:
        old = self.ssrc
        self.ssrc = random_ssrc(self._rng, avoid=old)
        self._bye.append(old)
        self._packets = self._octets = 0  # RFC 3550 §6.4.1: counts restart with the SSRC
        self.collisions += 1
        return SsrcChanged(old, self.ssrc)

    def _receiver(self, ssrc: int, now_ns: int) -> _Receiver | None:
        receiver = self._receivers.get(ssrc)
        if receiver is None:
            if len(self._receivers) >= self.max_receivers:
                self._expire(now_ns)
                if len(self._receivers) >= self.max_receivers:
                    self.receivers_refused += 1
                    return None
            receiver = self._receivers[ssrc] = _Receiver(ssrc, now_ns)
        receiver.last_heard_ns = now_ns
        return receiver

    def _on_receiver_report(
        self, ssrc: int, blocks: tuple[ReportBlock, ...], now_ns: int, wall_ns: int
    ) -> None:
        for block in blocks:
            if block.ssrc != self.ssrc:
                continue
            receiver = self._receiver(ssrc, now_ns)
            if receiver is None:
                return
            receiver.rr_seen = True
            rtt = round_trip_ns(wall_ns, block.lsr, block.dlsr)
            fb = receiver.feedback
            receiver.feedback = msgspec.structs.replace(
                fb,
                rtt_ms=fb.rtt_ms if rtt is None else rtt / _NS_PER_MS,
                fraction_lost=block.fraction_lost / 256,
                cumulative_lost=block.cumulative_lost,
                highest_seq=block.highest_seq,
                jitter_ms=block.jitter * 1000 / self.rate,
            )

    def _on_xr(self, xr: ExtendedReport, now_ns: int) -> None:
        receiver: _Receiver | None = None
        for block in xr.blocks:
            if isinstance(block, Rrtr):
                receiver = self._receiver(xr.ssrc, now_ns)
                if receiver is None:
                    return
                receiver.rrtr_ntp32 = ntp64_to_ntp32(block.ntp_timestamp)
                receiver.rrtr_arrival_ns = now_ns
            elif isinstance(block, DelayMetrics) and block.ssrc == self.ssrc:
                receiver = self._receiver(xr.ssrc, now_ns)
                if receiver is None:
                    return
                receiver.feedback = msgspec.structs.replace(
                    receiver.feedback, e2e_latency_ms=_ms(block.end_system_delay_ns)
                )
            elif isinstance(block, QueueMetrics) and block.ssrc == self.ssrc:
                receiver = self._receiver(xr.ssrc, now_ns)
                if receiver is None:
                    return
                receiver.feedback = msgspec.structs.replace(
                    receiver.feedback,
                    niq_latency_ms=_ms(block.niq_latency_ns),
                    niq_stalling_ms=_ms(block.niq_stalling_ns),
                )

    def _expire(self, now_ns: int) -> None:
        limit = now_ns - self.timeout_ns
        for ssrc in [s for s, r in self._receivers.items() if r.last_heard_ns < limit]:
            del self._receivers[ssrc]

    # -- metrics ----------------------------------------------------------------------

    def feedback(self) -> list[ReceiverFeedback]:
        """Every receiver heard from in the last 5 s, in order of first contact."""
        return [r.feedback for r in self._receivers.values()]
