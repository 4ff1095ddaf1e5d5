"""The sender's RTCP: SR contents and schedule, receiver feedback, against roc-recv's reports."""

import random

import numpy as np
import pytest

from rocd.net.roc import (
    Bye,
    DelayMetrics,
    Dlrr,
    DlrrSubBlock,
    ExtendedReport,
    QueueMetrics,
    ReceiverReport,
    ReportBlock,
    ReportTimer,
    Rrtr,
    RtcpPacket,
    RtpPacket,
    Sdes,
    SdesChunk,
    Sender,
    SenderConfig,
    SenderIdentity,
    SenderReport,
    SenderReporter,
    hold_ntp32,
    metric_to_ntp32,
    metric_to_ntp64,
    ns_to_ntp32,
    ntp64_to_ntp32,
    parse_rtcp,
    random_cname,
    round_trip_ns,
    serialize_rtcp,
    unix_ns_to_ntp64,
    wall_ntp32,
)
from tests.pcap import CONTROL_PORT, SOURCE_PORT, VECTORS, read_udp

NS = 1_000_000_000
MS = 1_000_000
WALL0 = 1_700_000_000 * NS
RECEIVER = 0x7B5C_BB85


def _sender(input_rate: int = 44100) -> Sender:
    identity = SenderIdentity(
        ssrc=0x1234_5678, first_seq=100, first_timestamp=0xFFFF_0000, first_sbn=9, cname="me"
    )
    return Sender(
        SenderConfig(), input_rate=input_rate, input_channels=2, rng=random.Random(0),
        identity=identity,
    )  # fmt: skip


def _write_seconds(sender: Sender, seconds: int, rate: int) -> None:
    """Write `seconds` of audio in 10 ms chunks stamped with exact capture times."""
    chunk = rate // 100
    for i in range(seconds * 100):
        sender.write(np.zeros((chunk, 2), np.float32), WALL0 + i * 10 * MS)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_sr_maps_rtp_time_to_capture_time(rate: int) -> None:
    sender = _sender(rate)
    assert sender.poll_rtcp(0, WALL0) == []  # nothing before the first packet
    _write_seconds(sender, 2, rate)
    wall = WALL0 + 2 * NS
    (report,) = sender.poll_rtcp(0, wall)
    sr, sdes = parse_rtcp(report.payload)
    assert isinstance(sr, SenderReport)
    assert sr.ssrc == 0x1234_5678
    assert sr.ntp_timestamp == unix_ns_to_ntp64(wall)
    # Sample 88200 of the stream was captured 2 s after sample 0.
    expected = (0xFFFF_0000 + 2 * 44100) & 0xFFFF_FFFF
    if rate == 44100:
        assert sr.rtp_timestamp == expected
    else:  # through the resampler: aligned to the nearest sample
        assert abs(sr.rtp_timestamp - expected) <= 1
    packets = sender.metrics().source_packets
    assert packets == (2 * 44100 - (20 if rate == 48000 else 0)) // 221
    assert (sr.packet_count, sr.octet_count) == (packets, packets * 884)
    assert sdes == Sdes((SdesChunk.with_cname(0x1234_5678, "me"),))
    assert len(report.payload) == 28 + 16  # SDES: 4 + 4 + 2 + 2 (CNAME) + 4 (end, pad)
    # Mid-stream too: 0.5 s after the start is RTP time +22050.
    assert sender.reporter.rtp_timestamp_at(WALL0 + NS // 2) in {
        (0xFFFF_0000 + 22050 + d) & 0xFFFF_FFFF for d in (-1, 0, 1)
    }


def test_reports_every_200_ms_on_a_fixed_schedule() -> None:
    sender = _sender()
    sender.write(np.zeros((221, 2), np.float32), WALL0)
    t0 = 7 * NS
    assert len(sender.poll_rtcp(t0, WALL0)) == 1  # at once after the first packet
    assert sender.rtcp_deadline_ns == t0 + 200 * MS
    assert sender.poll_rtcp(t0 + 199 * MS, WALL0) == []
    assert len(sender.poll_rtcp(t0 + 201 * MS, WALL0)) == 1  # woke 1 ms late...
    assert sender.rtcp_deadline_ns == t0 + 400 * MS  # ...the schedule does not slip
    assert len(sender.poll_rtcp(t0 + 1_000 * MS, WALL0)) == 1  # after a stall: one report
    assert sender.rtcp_deadline_ns == t0 + 1_200 * MS


def _receiver_report(
    reporter: SenderReporter,
    *,
    lsr: int,
    dlsr: int,
    rrtr_wall: int,
    ssrc: int = RECEIVER,
    bye: bool = False,
) -> bytes:
    packets: list[RtcpPacket] = [
        ReceiverReport(ssrc, (ReportBlock(reporter.ssrc, 64, 12, 70000, 441, lsr, dlsr),)),
        ExtendedReport(
            ssrc,
            (
                Rrtr(unix_ns_to_ntp64(rrtr_wall)),
                DelayMetrics(reporter.ssrc, end_system_delay=metric_to_ntp64(250 * MS)),
                QueueMetrics(reporter.ssrc, metric_to_ntp32(191 * MS), metric_to_ntp32(3 * MS)),
            ),
        ),
        Sdes((SdesChunk.with_cname(ssrc, "receiver"),)),
    ]
    if bye:
        packets.append(Bye((ssrc,)))
    return serialize_rtcp(packets)


def test_round_trip_and_dlrr_on_virtual_time() -> None:
    """Sender and receiver clocks differ; RTT comes out as the two network delays."""
    reporter = SenderReporter(rng=random.Random(0), ssrc=5, cname="s", rate=44100)
    reporter.on_sent(1, 884, 1000, WALL0)
    offset = 123 * NS  # wall - monotonic, at the sender
    now = 10 * NS
    sr_packets = parse_rtcp(reporter.poll(now, now + offset) or b"")
    sr = sr_packets[0]
    assert isinstance(sr, SenderReport)
    assert len(sr_packets) == 2  # no receiver yet: no XR
    lsr = ntp64_to_ntp32(sr.ntp_timestamp)
    assert lsr == wall_ntp32(now + offset)
    # 7 ms to the receiver, held 45 ms there, 11 ms back.
    hold = 45 * MS
    arrival = now + 7 * MS + hold + 11 * MS
    receiver_wall = 999 * NS  # the receiver's own (unrelated) clock
    report = _receiver_report(reporter, lsr=lsr, dlsr=ns_to_ntp32(hold), rrtr_wall=receiver_wall)
    assert reporter.handle(report, arrival, arrival + offset) == []
    (fb,) = reporter.feedback()
    assert fb.ssrc == RECEIVER
    assert fb.cname == "receiver"
    assert fb.rtt_ms is not None
    assert abs(fb.rtt_ms - 18.0) < 0.05  # NTP32 resolution is 15 us per stamp
    assert fb.fraction_lost == 0.25
    assert fb.cumulative_lost == 12
    assert fb.highest_seq == 70000
    assert fb.jitter_ms == 10.0  # 441 samples at 44.1 kHz
    assert fb.niq_latency_ms is not None
    assert abs(fb.niq_latency_ms - 191) < 0.02
    assert fb.niq_stalling_ms is not None
    assert abs(fb.niq_stalling_ms - 3) < 0.02
    assert fb.e2e_latency_ms is not None
    assert abs(fb.e2e_latency_ms - 250) < 1e-3
    # The next report echoes the receiver's RRTR with the exact hold time here.
    packets = parse_rtcp(reporter.poll(now + 200 * MS, now + 200 * MS + offset) or b"")
    xr = packets[1]
    assert isinstance(xr, ExtendedReport)
    assert xr.ssrc == 5
    held = now + 200 * MS - arrival  # 137 ms on the monotonic clock
    assert xr.blocks == (
        Dlrr((DlrrSubBlock(RECEIVER, wall_ntp32(receiver_wall), ns_to_ntp32(held)),)),
    )
    assert len(serialize_rtcp(packets)) == 28 + 24 + 12


def test_dlrr_needs_both_rr_and_rrtr() -> None:
    reporter = SenderReporter(rng=random.Random(0), ssrc=5, cname="s", rate=44100)
    reporter.on_sent(1, 884, 0, WALL0)
    rrtr_only = serialize_rtcp([ExtendedReport(RECEIVER, (Rrtr(unix_ns_to_ntp64(WALL0)),))])
    reporter.handle(rrtr_only, 0, WALL0)
    assert len(parse_rtcp(reporter.poll(0, WALL0) or b"")) == 2  # SR + SDES
    rr = serialize_rtcp([ReceiverReport(RECEIVER, (ReportBlock(5),))])
    reporter.handle(rr, 1, WALL0)
    packets = parse_rtcp(reporter.poll(200 * MS, WALL0) or b"")
    assert [type(p) for p in packets] == [SenderReport, ExtendedReport, Sdes]


def test_silent_or_departing_receivers_are_forgotten() -> None:
    reporter = SenderReporter(rng=random.Random(0), ssrc=5, cname="s", rate=44100)
    reporter.on_sent(1, 884, 0, WALL0)
    report = _receiver_report(reporter, lsr=0, dlsr=0, rrtr_wall=WALL0)
    reporter.handle(report, 0, WALL0)
    reporter.handle(_receiver_report(reporter, lsr=0, dlsr=0, rrtr_wall=WALL0, ssrc=77), 0, WALL0)
    assert [f.ssrc for f in reporter.feedback()] == [RECEIVER, 77]
    assert reporter.feedback()[0].rtt_ms is None  # LSR 0: no SR echoed yet
    reporter.handle(report, 4 * NS, WALL0)
    reporter.poll(5 * NS, WALL0)
    assert len(reporter.feedback()) == 2  # 77 silent for 5 s exactly: not yet
    reporter.poll(5 * NS + 1, WALL0)
    assert [f.ssrc for f in reporter.feedback()] == [RECEIVER]  # 77 silent for 5 s
    bye = _receiver_report(reporter, lsr=0, dlsr=0, rrtr_wall=WALL0, bye=True)
    reporter.handle(bye, 5 * NS, WALL0)
    assert reporter.feedback() == []


def test_roc_recv_reports_give_sensible_feedback() -> None:
    """Replay the capture's RTCP exchange into our reporter, at the captured times."""
    for name in ["rs8m_default.pcap", "ldpc_default.pcap"]:
        datagrams = read_udp(VECTORS / name)
        first = RtpPacket.parse(next(d for d in datagrams if d.dst[1] == SOURCE_PORT).payload[:-6])
        reporter = SenderReporter(
            rng=random.Random(0), ssrc=first.ssrc, cname=random_cname(random.Random(1)), rate=44100
        )
        t0 = datagrams[0].time
        reports = 0
        offsets: set[int] = set()
        niq: list[float] = []
        e2e: list[float] = []
        for d in datagrams:
            wall = round(d.time * NS)
            now = round((d.time - t0) * NS)
            if d.dst[1] == SOURCE_PORT:
                rtp = RtpPacket.parse(d.payload[:-6])
                reporter.on_sent(1, len(rtp.payload), rtp.timestamp, wall)
            elif d.src[1] == CONTROL_PORT:  # roc-recv -> roc-send
                assert reporter.handle(d.payload, now, wall) == []
                (fb,) = reporter.feedback()
                niq += [] if fb.niq_latency_ms is None else [fb.niq_latency_ms]
                e2e += [] if fb.e2e_latency_ms is None else [fb.e2e_latency_ms]
            elif d.dst[1] == CONTROL_PORT:  # roc-send's report: we report at that moment
                theirs = parse_rtcp(d.payload)
                ours = parse_rtcp(reporter.report(now, wall))
                # Same layout as roc-send's (SR + SDES, then SR + XR(DLRR) + SDES) ...
                assert [type(p) for p in ours] == [type(p) for p in theirs]
                assert len(serialize_rtcp(ours)) == len(d.payload)
                sr_ours, sr_theirs = ours[0], theirs[0]
                assert isinstance(sr_ours, SenderReport)
                assert isinstance(sr_theirs, SenderReport)
                # ... and the same counts at the same moment.
                assert sr_ours.packet_count == sr_theirs.packet_count
                assert sr_ours.octet_count == sr_theirs.octet_count
                if len(theirs) == 3:
                    xr_ours, xr_theirs = ours[1], theirs[1]
                    assert isinstance(xr_ours, ExtendedReport)
                    assert isinstance(xr_theirs, ExtendedReport)
                    (dlrr_ours,) = xr_ours.find(Dlrr)
                    (dlrr_theirs,) = xr_theirs.find(Dlrr)
                    (sub_ours,) = dlrr_ours.subblocks
                    (sub_theirs,) = dlrr_theirs.subblocks
                    assert sub_ours.ssrc == sub_theirs.ssrc
                    assert sub_ours.last_rr == sub_theirs.last_rr
                    # Our hold time runs from the captured arrival; roc-send's is shorter
                    # by one constant offset (7.4 ms here), as if it took RTCP in at its
                    # 10 ms frame ticks rather than on arrival.
                    offsets.add(sub_ours.delay - sub_theirs.delay)
                reports += 1
        assert reports >= 10
        assert max(offsets) - min(offsets) < 10  # 0.15 ms
        assert 0 < min(offsets) < 656  # 10 ms
        (fb,) = reporter.feedback()
        assert fb.cname is not None
        assert len(fb.cname) == 36
        # roc-recv's LSR/DLSR refer to roc-send's SRs, sent at the captured times. The
        # loopback takes no time, but roc-recv too stamps arrivals at its next frame.
        assert fb.rtt_ms is not None
        assert 0 <= fb.rtt_ms < 11
        assert (fb.fraction_lost, fb.cumulative_lost, fb.jitter_ms) == (0, 0, 0)  # Roc 0.4
        # roc-recv ran with a 100 ms target latency.
        assert len(niq) >= 5
        assert all(50 < x < 150 for x in niq)
        assert len(e2e) >= 5
        assert all(50 < x < 150 for x in e2e)


def test_clock_helpers() -> None:
    assert hold_ntp32(-5) == hold_ntp32(0) == 0
    assert hold_ntp32(NS) == 0x1_0000
    assert hold_ntp32(70_000 * NS) == 0xFFFF_FFFF  # saturates
    arrival = WALL0 + 50 * MS
    lsr = wall_ntp32(WALL0)
    rtt = round_trip_ns(arrival, lsr, hold_ntp32(20 * MS))
    assert rtt is not None
    assert abs(rtt - 30 * MS) < 40_000
    assert round_trip_ns(arrival, 0, 0) is None  # no SR echoed
    assert round_trip_ns(arrival, lsr, hold_ntp32(60 * MS)) is None  # held longer than elapsed
    assert round_trip_ns(WALL0 + 100 * NS, lsr, 0) is None  # implausible: a stale echo


def test_report_timer() -> None:
    timer = ReportTimer(200 * MS)
    assert timer.deadline_ns is None
    assert timer.due(-7)  # any clock origin, even negative
    assert timer.deadline_ns == -7 + 200 * MS
    assert not timer.due(100 * MS)
    timer.reset()
    assert timer.due(100 * MS)
    with pytest.raises(ValueError, match="interval"):
        ReportTimer(0)
