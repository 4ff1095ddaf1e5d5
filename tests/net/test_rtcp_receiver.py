"""The receiver's RTCP: roc-recv's report layout, addressing, LSR/DLSR, BYE, timeouts."""

import random

import numpy as np

from rocd.net.roc import (
    Bye,
    DelayMetrics,
    Dlrr,
    DlrrSubBlock,
    ExtendedReport,
    MeasurementInfo,
    QueueMetrics,
    ReceiverReport,
    ReceiverReporter,
    ReceptionStats,
    ReportBlock,
    Rrtr,
    RtcpPacket,
    RtcpSessionEnded,
    RtpPacket,
    Sdes,
    SdesChunk,
    Sender,
    SenderClock,
    SenderReport,
    SenderReporter,
    metric_to_ntp32,
    metric_to_ntp64,
    ns_to_ntp32,
    ntp64_to_ntp32,
    ntp64_to_unix_ns,
    parse_rtcp,
    serialize_rtcp,
    unix_ns_to_ntp64,
    wall_ntp32,
)
from tests.pcap import CONTROL_PORT, SOURCE_PORT, VECTORS, read_udp

NS = 1_000_000_000
MS = 1_000_000
WALL0 = 1_700_000_000 * NS
SENDER = 0xA1B2_C3D4
ADDR_A = ("10.0.0.1", 40000)
ADDR_B = ("10.0.0.2", 40001)


def _stats(ssrc: int = SENDER, **kw: int | None) -> ReceptionStats:
    fields: dict[str, int | None] = {
        "first_seq": 1000,
        "ext_highest_seq": 1399,
        "expected_packets": 400,
        "lost_packets": 0,
        "jitter": 0,
        "niq_latency_ns": 191 * MS,
        "niq_stalling_ns": 4 * MS,
        "e2e_latency_ns": 200 * MS,
    }
    fields.update(kw)
    return ReceptionStats(ssrc, **fields)  # type: ignore[arg-type]


def _sr(ssrc: int = SENDER, wall: int = WALL0, rtp_ts: int = 5000, *extra: RtcpPacket) -> bytes:
    packets: list[RtcpPacket] = [
        SenderReport(ssrc, unix_ns_to_ntp64(wall), rtp_ts, 10, 8840),
        *extra,
        Sdes((SdesChunk.with_cname(ssrc, "a6396fb5-5555-4749-ae20-c31acc9a1690"),)),
    ]
    return serialize_rtcp(packets)


def _reporter() -> ReceiverReporter:
    return ReceiverReporter(
        rng=random.Random(0), ssrc=0x7B5C_BB85, cname="1deb4c37-7b8f-4a32-9d4e-6b1c0a1f6aa1"
    )


def _shape(data: bytes) -> list[tuple[str, int, bytes]]:
    """Packet types, sizes and headers of a compound, and the XR block headers."""
    out = []
    for p in parse_rtcp(data):
        raw = p.serialize()
        out.append((type(p).__name__, len(raw), raw[:4]))
        if isinstance(p, ExtendedReport):
            out += [(type(b).__name__, len(b.serialize()), b.serialize()[:4]) for b in p.blocks]
    return out


def test_report_has_roc_recvs_layout() -> None:
    """Feed roc-send's SR + SDES; our report is shaped exactly like roc-recv's answer."""
    for name in ["rs8m_default.pcap", "ldpc_default.pcap"]:
        datagrams = read_udp(VECTORS / name)
        sender_ssrc = RtpPacket.parse(
            next(d for d in datagrams if d.dst[1] == SOURCE_PORT).payload[:-6]
        ).ssrc
        theirs = [d for d in datagrams if d.src[1] == CONTROL_PORT]
        reporter = _reporter()
        t0 = datagrams[0].time
        made = 0
        for d in datagrams:
            if d.dst[1] != CONTROL_PORT:
                continue
            now = round((d.time - t0) * NS)
            assert reporter.handle(d.payload, d.src, now, round(d.time * NS)) == []
            assert reporter.sender_cname(sender_ssrc) is not None
            reports, ended = reporter.poll(now + MS, round(d.time * NS) + MS, {
                sender_ssrc: _stats(sender_ssrc)
            })  # fmt: skip
            assert ended == []
            for report in reports:
                assert report.address == d.src  # back to where the sender's RTCP came from
                assert len(report.data) == 176
                assert _shape(report.data) == _shape(theirs[made % len(theirs)].payload)
                made += 1
        assert made >= 9


def test_report_fields() -> None:
    reporter = _reporter()
    sr_wall = WALL0 + 3 * NS
    reporter.handle(_sr(wall=sr_wall, rtp_ts=7777), ADDR_A, 10 * NS, WALL0 + 999)
    stats = _stats(
        lost_packets=-2, jitter=441, ext_highest_seq=0x1_0005, niq_latency_ns=None,
        e2e_latency_ns=None,
    )  # fmt: skip
    now = 10 * NS + 37 * MS
    ((report,), _) = reporter.poll(now, WALL0 + 5 * NS, {SENDER: stats})
    rr, xr, sdes = parse_rtcp(report.data)
    assert rr == ReceiverReport(
        0x7B5C_BB85,
        (
            ReportBlock(
                SENDER,
                fraction_lost=0,
                cumulative_lost=-2,  # duplicates
                highest_seq=0x1_0005,
                jitter=441,
                lsr=ntp64_to_ntp32(unix_ns_to_ntp64(sr_wall)),
                dlsr=ns_to_ntp32(37 * MS),  # held 37 ms on our monotonic clock
            ),
        ),
    )
    assert xr == ExtendedReport(
        0x7B5C_BB85,
        (
            Rrtr(unix_ns_to_ntp64(WALL0 + 5 * NS)),
            MeasurementInfo(SENDER, 1000, 0x1_0005, 0x1_0005, 0, 0),
            DelayMetrics(SENDER, end_system_delay=metric_to_ntp64(None)),  # RTT, e2e unknown
            QueueMetrics(SENDER, metric_to_ntp32(None), metric_to_ntp32(4 * MS)),
        ),
    )
    assert sdes == Sdes((SdesChunk.with_cname(0x7B5C_BB85, reporter.cname),))


def test_fraction_lost_over_each_interval() -> None:
    reporter = _reporter()
    reporter.handle(_sr(), ADDR_A, 0, WALL0)
    fractions = []
    for t, (expected, lost) in enumerate([(100, 0), (200, 25), (300, 25), (400, 125), (500, 100)]):
        stats = _stats(expected_packets=expected, lost_packets=lost)
        ((report,), _) = reporter.poll(t * 200 * MS, WALL0, {SENDER: stats})
        rr = parse_rtcp(report.data)[0]
        assert isinstance(rr, ReceiverReport)
        assert rr.reports[0].cumulative_lost == lost
        fractions.append(rr.reports[0].fraction_lost)
    # 0/100, 25/100, 0/100, 100/100 (-> 255, the largest), then -25/100 (late arrivals) -> 0.
    assert fractions == [0, 64, 0, 255, 0]


def test_nothing_before_an_sr_and_only_for_sessions() -> None:
    reporter = _reporter()
    stats = {SENDER: _stats()}
    assert reporter.poll(0, WALL0, stats) == ([], [])  # RTP but no RTCP: no report
    sdes_only = serialize_rtcp([Sdes((SdesChunk.with_cname(SENDER, "x"),))])
    reporter.handle(sdes_only, ADDR_A, 1, WALL0)
    assert reporter.sender_cname(SENDER) == "x"
    assert reporter.poll(200 * MS, WALL0, stats) == ([], [])  # RTCP but no SR yet
    reporter.handle(_sr(), ADDR_A, 300 * MS, WALL0)
    assert reporter.poll(400 * MS, WALL0, {}) == ([], [])  # SR but no session: nothing
    reports, _ = reporter.poll(600 * MS, WALL0, stats)
    assert [r.address for r in reports] == [ADDR_A]


def test_reports_go_to_the_address_learned_first() -> None:
    reporter = _reporter()
    stats = {SENDER: _stats(), 99: _stats(99)}
    reporter.handle(_sr(), ADDR_A, 0, WALL0)
    reporter.handle(_sr(99), ADDR_A, 0, WALL0)
    reports, _ = reporter.poll(0, WALL0, stats)
    # Two senders behind one address share a compound: RR with two blocks.
    assert [r.address for r in reports] == [ADDR_A]
    rr, xr, _sdes = parse_rtcp(reports[0].data)
    assert isinstance(rr, ReceiverReport)
    assert isinstance(xr, ExtendedReport)
    assert [b.ssrc for b in rr.reports] == [SENDER, 99]
    assert [type(b) for b in xr.blocks] == [Rrtr] + [
        MeasurementInfo,
        DelayMetrics,
        QueueMetrics,
    ] * 2
    # RTCP for the same sender from elsewhere (forged, or a sender that moved): counted
    # and ignored; reports stay with the address learned first.
    reporter.handle(_sr(), ADDR_B, 100 * MS, WALL0)
    reports, _ = reporter.poll(200 * MS, WALL0, stats)
    assert [r.address for r in reports] == [ADDR_A]
    assert reporter.stats.foreign == 1
    # Once the learned address has been silent for 5 s, the next RTCP binds again.
    reporter.handle(_sr(), ADDR_B, 5300 * MS, WALL0)
    reports, ended = reporter.poll(5400 * MS, WALL0, stats)
    assert ended == [RtcpSessionEnded(SENDER, "timeout"), RtcpSessionEnded(99, "timeout")]
    assert [r.address for r in reports] == [ADDR_B]
    assert len(reports[0].data) == 176


def test_bye_ends_the_session() -> None:
    reporter = _reporter()
    reporter.handle(_sr(), ADDR_A, 0, WALL0)
    ended = reporter.handle(_sr(SENDER, WALL0, 0, Bye((SENDER,))), ADDR_A, 100, WALL0)
    assert ended == [RtcpSessionEnded(SENDER, "bye")]
    assert reporter.sender_clock(SENDER) is None
    assert reporter.poll(0, WALL0, {SENDER: _stats()}) == ([], [])


def test_inactivity_ends_the_session() -> None:
    reporter = _reporter()
    stats = {SENDER: _stats()}
    reporter.handle(_sr(), ADDR_A, 0, WALL0)
    reports, ended = reporter.poll(5 * NS, WALL0, stats)
    assert (len(reports), ended) == (1, [])  # 5 s exactly: still there
    reports, ended = reporter.poll(5 * NS + 1, WALL0, stats)
    assert (reports, ended) == ([], [RtcpSessionEnded(SENDER, "timeout")])
    assert reporter.poll(6 * NS, WALL0, stats) == ([], [])  # reported once
    reporter.handle(_sr(), ADDR_A, 7 * NS, WALL0)  # RTCP again: a new session
    assert len(reporter.poll(7 * NS, WALL0, stats)[0]) == 1


def test_sender_clock_maps_rtp_to_capture_time() -> None:
    reporter = _reporter()
    reporter.handle(_sr(wall=WALL0, rtp_ts=0xFFFF_FF00), ADDR_A, 0, WALL0)
    clock = reporter.sender_clock(SENDER)
    assert clock is not None
    assert clock.wall_ns == ntp64_to_unix_ns(unix_ns_to_ntp64(WALL0)) == WALL0
    assert clock.capture_ns(0xFFFF_FF00 + 44100 - 2**32, 44100) == WALL0 + NS  # across wrap
    assert clock.capture_ns(0xFFFF_FF00 - 441, 44100) == WALL0 - 10 * MS
    assert SenderClock(WALL0, 0).capture_ns(1, 44100) == WALL0 + 22676


def test_rtt_from_the_senders_dlrr() -> None:
    reporter = _reporter()
    reporter.handle(_sr(), ADDR_A, 0, WALL0)
    ((report,), _) = reporter.poll(0, WALL0, {SENDER: _stats()})
    rrtr = parse_rtcp(report.data)[1]
    assert isinstance(rrtr, ExtendedReport)
    lrr = ntp64_to_ntp32(rrtr.find(Rrtr)[0].ntp_timestamp)
    assert lrr == wall_ntp32(WALL0)
    # The sender held our RRTR 120 ms; 5 + 9 ms on the wire.
    dlrr = ExtendedReport(SENDER, (Dlrr((DlrrSubBlock(0x7B5C_BB85, lrr, ns_to_ntp32(120 * MS)),)),))
    arrival = WALL0 + 134 * MS
    reporter.handle(_sr(SENDER, arrival, 0, dlrr), ADDR_A, 134 * MS, arrival)
    rtt = reporter.rtt_ns(SENDER)
    assert rtt is not None
    assert abs(rtt - 14 * MS) < 40_000  # two NTP32 roundings of 15 us
    ((report,), _) = reporter.poll(200 * MS, arrival + 66 * MS, {SENDER: _stats()})
    dm = parse_rtcp(report.data)[1]
    assert isinstance(dm, ExtendedReport)
    (delay,) = dm.find(DelayMetrics)
    assert delay.mean_rtt == delay.min_rtt == delay.max_rtt == metric_to_ntp32(rtt)


def test_a_sender_taking_our_ssrc_moves_us() -> None:
    reporter = _reporter()
    reporter.handle(_sr(0x7B5C_BB85), ADDR_A, 0, WALL0)
    assert reporter.ssrc != 0x7B5C_BB85
    reports, _ = reporter.poll(0, WALL0, {0x7B5C_BB85: _stats(0x7B5C_BB85)})
    rr = parse_rtcp(reports[0].data)[0]
    assert isinstance(rr, ReceiverReport)
    assert rr.ssrc == reporter.ssrc
    assert rr.reports[0].ssrc == 0x7B5C_BB85


def test_sender_and_receiver_talk_in_memory() -> None:
    """Our sender and our receiver reporter exchange RTCP over a virtual 3 ms link."""
    sender = Sender(input_rate=44100, input_channels=2, rng=random.Random(1))
    receiver = _reporter()
    link = 3 * MS
    now = 0
    stats = _stats(sender.ssrc, niq_latency_ns=150 * MS, e2e_latency_ns=180 * MS, jitter=441)
    sender_reporter: SenderReporter = sender.reporter
    for step in range(50):  # 50 x 20 ms = 1 s
        sender.write(np.zeros((882, 2), np.float32), WALL0 + now)
        for d in sender.poll_rtcp(now, WALL0 + now):
            receiver.handle(d.payload, ADDR_A, now + link, WALL0 + now + link)
        reports, ended = receiver.poll(now + link, WALL0 + now + link, {sender.ssrc: stats})
        assert ended == []
        for r in reports:
            sender.handle_rtcp(r.data, now + 2 * link, WALL0 + now + 2 * link)
        now += 20 * MS
        if step == 49:
            assert sender_reporter.reports_sent == 5
    (fb,) = sender.metrics().receivers
    assert fb.ssrc == receiver.ssrc
    assert fb.cname == receiver.cname
    assert fb.rtt_ms is not None
    assert abs(fb.rtt_ms - 6) < 0.05
    assert fb.jitter_ms == 10.0
    assert fb.niq_latency_ms is not None
    assert abs(fb.niq_latency_ms - 150) < 0.02
    assert fb.e2e_latency_ms is not None
    assert abs(fb.e2e_latency_ms - 180) < 1e-3
    rtt = receiver.rtt_ns(sender.ssrc)
    assert rtt is not None
    assert abs(rtt - 6 * MS) < 50_000
