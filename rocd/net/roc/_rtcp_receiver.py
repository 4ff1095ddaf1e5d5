"""The receiver's side of RTCP, as roc-recv 0.4 behaves (ROC_PROTOCOL.md §6).

In, per sender SSRC: SR (kept for LSR/DLSR and as the NTP <-> RTP mapping that gives
each packet its capture time), SDES CNAME, XR DLRR (our RTT), BYE (the session ends at
once). A sender that has sent RTCP and then stays silent for 5 s is gone too.

Out: every 200 ms, for each sender we have an SR from and a session for, a report to the
UDP source address of that sender's newest RTCP (Roc's `Report_Back`); a sender that
never sends RTCP gets none. For one sender the compound is exactly roc-recv's 176 bytes:

    RR   (32 B)  one report block for the sender
    XR   (96 B)  RRTR | Measurement Info | Delay Metrics (e2e) | Queue Metrics (BT 220)
    SDES (48 B)  our CNAME

RTCP is bound to the session, since anyone can send a datagram naming its SSRC: with a
`sessions` lookup (the receiver's), RTCP about an SSRC counts only once a session with
that SSRC exists, and its peer address is learned from the first compound about it that
comes from the host its RTP comes from. BYE, SR timing, SDES and XR about that SSRC from
any other address are counted (`foreign`, and the session's `rtcp_foreign`) and ignored,
and reports go only to the learned address. The table of senders is capped
(`max_senders`) and entries expire after 5 s without RTCP from their address.

Unlike Roc 0.4, whose RR blocks carry zeros, the loss and jitter fields are real: the
session's `ReceptionStats` give running totals, and the fraction lost is taken over the
interval since the previous report (RFC 3550 A.3). Measurement Info is filled as Roc does
(interval first = last = extended highest seq, durations 0). Senders sharing one address
share one compound (up to 31 of them, Roc's per-packet limit; more get more compounds).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Literal, Protocol

import msgspec

from ._encoding import NS_PER_SECOND
from ._ntp import (
    metric_to_ntp32,
    metric_to_ntp64,
    ntp64_to_ntp32,
    ntp64_to_unix_ns,
    unix_ns_to_ntp64,
)
from ._reception_stats import ReceptionStats
from ._rtcp import MAX_COUNT, Bye, ReceiverReport, ReportBlock, Sdes, SdesChunk, SenderReport
from ._rtcp_compound import RtcpPacket, parse_rtcp, serialize_rtcp
from ._rtcp_session import (
    INACTIVITY_TIMEOUT_NS,
    REPORT_INTERVAL_NS,
    ReportTimer,
    hold_ntp32,
    random_cname,
    random_ssrc,
    round_trip_ns,
)
from ._rtcp_xr import (
    DelayMetrics,
    Dlrr,
    ExtendedReport,
    MeasurementInfo,
    QueueMetrics,
    Rrtr,
    XrBlock,
)
from ._types import Buffer
from ._wrap import ts_diff

__all__ = [
    "OutgoingReport",
    "ReceiverReporter",
    "RtcpReceiverStats",
    "RtcpSession",
    "RtcpSessionEnded",
    "SenderClock",
]

_CUMULATIVE_MIN, _CUMULATIVE_MAX = -0x80_0000, 0x7F_FFFF

DEFAULT_MAX_SENDERS = 64
"""Senders tracked at once (a receiver's default `max_sessions`)."""


class RtcpSession(Protocol):
    """What the reporter needs of a receiver session: where its RTP comes from, and a
    counter of the foreign RTCP about it."""

    @property
    def address(self) -> tuple[Any, ...]: ...

    rtcp_foreign: int


class RtcpReceiverStats(msgspec.Struct, kw_only=True):
    """What a receiver's RTCP took and refused. Counters map to Prometheus counters
    `rocd_receiver_rtcp_<name>_total`; `senders` and `max_senders` are gauges."""

    compounds: int = 0
    """Compound datagrams parsed."""
    foreign: int = 0
    """Compounds naming a session's SSRC from another address than its RTCP's (ignored)."""
    unknown_ssrc: int = 0
    """Compounds about SSRCs that have no session (ignored)."""
    table_full: int = 0
    """Senders not tracked because `max_senders` were."""
    expired: int = 0
    """Senders forgotten after 5 s without RTCP from their address."""
    byes: int = 0
    """BYEs honoured."""
    senders: int = 0
    """Senders tracked now."""
    max_senders: int = DEFAULT_MAX_SENDERS


class SenderClock(msgspec.Struct, frozen=True):
    """A sender's clock mapping from its newest SR: RTP `rtp_timestamp` was captured at
    wall time `wall_ns` (Unix ns, the sender's clock)."""

    wall_ns: int
    rtp_timestamp: int

    def capture_ns(self, timestamp: int, rate: int) -> int:
        """Capture wall time (ns) of the sample with RTP `timestamp` at `rate` Hz."""
        delta = ts_diff(timestamp, self.rtp_timestamp)
        return self.wall_ns + (2 * delta * NS_PER_SECOND + rate) // (2 * rate)


class RtcpSessionEnded(msgspec.Struct, frozen=True):
    """RTCP ended the sender `ssrc`'s session: it said BYE, or went silent for 5 s."""

    ssrc: int
    reason: Literal["bye", "timeout"]


class OutgoingReport(msgspec.Struct, frozen=True):
    """A compound report to send to `address` (the source of the sender's last RTCP)."""

    address: Hashable
    data: bytes


class _Sender:
    __slots__ = (
        "address",
        "clock",
        "cname",
        "last_rtcp_ns",
        "lsr",
        "prior_expected",
        "prior_lost",
        "rtt_ns",
        "sr_arrival_ns",
    )

    def __init__(self, address: Hashable, now_ns: int) -> None:
        self.address = address  # learned from its first RTCP, never changed
        self.last_rtcp_ns = now_ns
        self.cname: str | None = None
        self.lsr = 0  # NTP32 of the newest SR, 0 before any
        self.sr_arrival_ns = 0  # monotonic arrival time of that SR
        self.clock: SenderClock | None = None
        self.rtt_ns: int | None = None
        self.prior_expected = 0  # totals at the previous report, for the fraction lost
        self.prior_lost = 0


class ReceiverReporter:
    """RTCP for a receiver: sender reports in (`handle`), receiver reports out (`poll`).

    One reporter serves every session of a receiving endpoint; it has one SSRC and CNAME
    of its own (random from `rng` unless given).
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        ssrc: int | None = None,
        cname: str | None = None,
        interval_ns: int = REPORT_INTERVAL_NS,
        timeout_ns: int = INACTIVITY_TIMEOUT_NS,
        max_senders: int = DEFAULT_MAX_SENDERS,
    ) -> None:
        if max_senders < 1:
            raise ValueError(f"max_senders must be >= 1, got {max_senders}")
        self._rng = rng
        self.max_senders = max_senders
        self._stats = RtcpReceiverStats(max_senders=max_senders)
        self._timed_out: list[RtcpSessionEnded] = []  # expired outside `poll`
        self.ssrc = random_ssrc(rng) if ssrc is None else ssrc
        self.cname = random_cname(rng) if cname is None else cname
        self.timeout_ns = timeout_ns
        self._timer = ReportTimer(interval_ns)
        self._senders: dict[int, _Sender] = {}
        self.reports_sent = 0

    # -- queries for the receiver pipeline ---------------------------------------------

    def sender_clock(self, ssrc: int) -> SenderClock | None:
        """The NTP <-> RTP mapping of sender `ssrc` (None before its first SR)."""
        sender = self._senders.get(ssrc)
        return None if sender is None else sender.clock

    def sender_cname(self, ssrc: int) -> str | None:
        sender = self._senders.get(ssrc)
        return None if sender is None else sender.cname

    def rtt_ns(self, ssrc: int) -> int | None:
        """Round-trip time to sender `ssrc`, from its DLRR for our RRTR (None if unknown)."""
        sender = self._senders.get(ssrc)
        return None if sender is None else sender.rtt_ns

    @property
    def stats(self) -> RtcpReceiverStats:
        """A snapshot of the counters and the table's size."""
        return msgspec.structs.replace(self._stats, senders=len(self._senders))

    def forget(self, ssrc: int) -> None:
        """The pipeline dropped the session of `ssrc`; stop tracking it."""
        self._senders.pop(ssrc, None)

    # -- reports in -------------------------------------------------------------------

    def handle(
        self,
        data: Buffer,
        address: Hashable,
        now_ns: int,
        wall_ns: int,
        *,
        sessions: Callable[[int], RtcpSession | None] | None = None,
    ) -> list[RtcpSessionEnded]:
        """Take in an RTCP datagram from `address`; MalformedPacket if it is not RTCP.

        `sessions` (the receiver's session lookup by SSRC) binds RTCP to sessions: without
        it every SSRC counts and is bound to the first address it comes from. Returns the
        sessions a BYE ended.
        """
        packets = parse_rtcp(data)
        self._stats.compounds += 1
        for p in packets:
            if isinstance(p, SenderReport) and p.ssrc == self.ssrc:
                # A sender picked our SSRC: we send no RTP, so just move.
                self.ssrc = random_ssrc(self._rng, avoid=p.ssrc)
        # Which senders this compound may speak for: the SSRCs it names as their own.
        named: set[int] = set()
        for p in packets:
            if isinstance(p, SenderReport | ExtendedReport):
                named.add(p.ssrc)
            elif isinstance(p, Sdes):
                named.update(c.ssrc for c in p.chunks)
            elif isinstance(p, Bye):
                named.update(p.ssrcs)
        named.discard(self.ssrc)
        admitted = {ssrc for ssrc in named if self._admit(ssrc, address, now_ns, sessions)}
        if not admitted:
            return []
        # Roc's order: SDES first, then SR/RR/XR in packet order, then BYE.
        cnames = {c.ssrc: c.cname for p in packets if isinstance(p, Sdes) for c in p.chunks}
        for packet in packets:
            if isinstance(packet, SenderReport) and packet.ssrc in admitted:
                self._on_sender_report(packet, now_ns)
            elif isinstance(packet, ExtendedReport) and packet.ssrc in admitted:
                self._on_xr(packet, wall_ns)
        for ssrc, cname in cnames.items():
            sender = self._senders.get(ssrc)
            if ssrc in admitted and sender is not None and cname is not None:
                sender.cname = cname
        ended = []
        for packet in packets:
            if isinstance(packet, Bye):
                for ssrc in packet.ssrcs:
                    if ssrc in admitted and self._senders.pop(ssrc, None) is not None:
                        self._stats.byes += 1
                        ended.append(RtcpSessionEnded(ssrc, "bye"))
        return ended

    def _admit(
        self,
        ssrc: int,
        address: Hashable,
        now_ns: int,
        sessions: Callable[[int], RtcpSession | None] | None,
    ) -> bool:
        """Whether RTCP from `address` may speak for sender `ssrc` (counted if not)."""
        stats = self._stats
        session = None
        if sessions is not None:
            session = sessions(ssrc)
            if session is None:
                stats.unknown_ssrc += 1
                return False
        sender = self._senders.get(ssrc)
        if sender is not None and sender.last_rtcp_ns < now_ns - self.timeout_ns:
            # Its address has been silent for the timeout: gone (`poll` would say so).
            del self._senders[ssrc]
            stats.expired += 1
            self._timed_out.append(RtcpSessionEnded(ssrc, "timeout"))
            sender = None
        if sender is None:
            if session is not None and not _same_host(address, session.address):
                stats.foreign += 1
                session.rtcp_foreign += 1
                return False
            if len(self._senders) >= self.max_senders:
                self._timed_out += self._expire(now_ns)
                if len(self._senders) >= self.max_senders:
                    stats.table_full += 1
                    return False
            sender = self._senders[ssrc] = _Sender(address, now_ns)
        elif sender.address != address:
            stats.foreign += 1
            if session is not None:
                session.rtcp_foreign += 1
            return False
        sender.last_rtcp_ns = now_ns
        return True

    def _on_sender_report(self, sr: SenderReport, now_ns: int) -> None:
        sender = self._senders[sr.ssrc]
        sender.lsr = ntp64_to_ntp32(sr.ntp_timestamp)
        sender.sr_arrival_ns = now_ns
        sender.clock = SenderClock(ntp64_to_unix_ns(sr.ntp_timestamp), sr.rtp_timestamp)

    def _on_xr(self, xr: ExtendedReport, wall_ns: int) -> None:
        sender = self._senders[xr.ssrc]
        for dlrr in xr.find(Dlrr):
            for sub in dlrr.subblocks:
                if sub.ssrc == self.ssrc:
                    rtt = round_trip_ns(wall_ns, sub.last_rr, sub.delay)
                    if rtt is not None:
                        sender.rtt_ns = rtt

    # -- reports out ------------------------------------------------------------------

    @property
    def deadline_ns(self) -> int | None:
        """When `poll` next has work; None until its first call."""
        return self._timer.deadline_ns

    def poll(
        self, now_ns: int, wall_ns: int, stats: Mapping[int, ReceptionStats]
    ) -> tuple[list[OutgoingReport], list[RtcpSessionEnded]]:
        """Reports due at `now_ns`, and sessions ended by RTCP silence.

        `stats` holds the receiver pipeline's current snapshot per sender SSRC; a sender
        without one (no session: RTCP but no RTP yet) is not reported on.
        """
        ended = self._timed_out + self._expire(now_ns)
        self._timed_out = []
        if not self._timer.due(now_ns):
            return [], ended
        groups: dict[Hashable, list[tuple[_Sender, ReceptionStats]]] = {}
        for ssrc, sender in self._senders.items():
            st = stats.get(ssrc)
            if sender.lsr and st is not None:  # Roc reports only after an SR (§6.1)
                groups.setdefault(sender.address, []).append((sender, st))
        out = []
        for address, members in groups.items():
            for i in range(0, len(members), MAX_COUNT):
                data = self._compound(members[i : i + MAX_COUNT], now_ns, wall_ns)
                out.append(OutgoingReport(address, data))
        self.reports_sent += len(out)
        return out, ended

    def _expire(self, now_ns: int) -> list[RtcpSessionEnded]:
        limit = now_ns - self.timeout_ns
        gone = [ssrc for ssrc, s in self._senders.items() if s.last_rtcp_ns < limit]
        for ssrc in gone:
            del self._senders[ssrc]
        self._stats.expired += len(gone)
        return [RtcpSessionEnded(ssrc, "timeout") for ssrc in gone]

    def _compound(
        self, members: list[tuple[_Sender, ReceptionStats]], now_ns: int, wall_ns: int
    ) -> bytes:
        blocks: list[ReportBlock] = []
        xr_blocks: list[XrBlock] = [Rrtr(unix_ns_to_ntp64(wall_ns))]
        for sender, st in members:
            blocks.append(self._report_block(sender, st, now_ns))
            xr_blocks.append(
                MeasurementInfo(
                    st.ssrc,
                    st.first_seq & 0xFFFF,
                    st.ext_highest_seq & 0xFFFF_FFFF,
                    st.ext_highest_seq & 0xFFFF_FFFF,
                    0,
                    0,
                )
            )
            rtt = metric_to_ntp32(sender.rtt_ns)
            e2e = metric_to_ntp64(st.e2e_latency_ns)
            xr_blocks.append(DelayMetrics(st.ssrc, rtt, rtt, rtt, e2e))
            xr_blocks.append(
                QueueMetrics(
                    st.ssrc, metric_to_ntp32(st.niq_latency_ns), metric_to_ntp32(st.niq_stalling_ns)
                )
            )
        packets: list[RtcpPacket] = [
            ReceiverReport(self.ssrc, tuple(blocks)),
            ExtendedReport(self.ssrc, tuple(xr_blocks)),
            Sdes((SdesChunk.with_cname(self.ssrc, self.cname),)),
        ]
        return serialize_rtcp(packets)

    @staticmethod
    def _report_block(sender: _Sender, st: ReceptionStats, now_ns: int) -> ReportBlock:
        expected = st.expected_packets - sender.prior_expected
        lost = st.lost_packets - sender.prior_lost
        sender.prior_expected = st.expected_packets
        sender.prior_lost = st.lost_packets
        fraction = min((lost << 8) // expected, 255) if expected > 0 and lost > 0 else 0
        return ReportBlock(
            st.ssrc,
            fraction_lost=fraction,
            cumulative_lost=min(max(st.lost_packets, _CUMULATIVE_MIN), _CUMULATIVE_MAX),
            highest_seq=st.ext_highest_seq & 0xFFFF_FFFF,
            jitter=min(max(st.jitter, 0), 0xFFFF_FFFF),
            lsr=sender.lsr,
            dlsr=hold_ntp32(now_ns - sender.sr_arrival_ns),
        )


def _same_host(address: Hashable, rtp_address: tuple[Any, ...]) -> bool:
    """Whether an RTCP source address is on the host a session's RTP comes from."""
    return isinstance(address, tuple) and bool(address) and address[0] == rtp_address[0]
