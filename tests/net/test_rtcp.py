import pytest
from hypothesis import given

from rocd.net.roc import (
    Bye,
    DelayMetrics,
    Dlrr,
    DlrrSubBlock,
    ExtendedReport,
    MalformedPacket,
    MeasurementInfo,
    MetricInterval,
    QueueMetrics,
    RawRtcpPacket,
    RawXrBlock,
    ReceiverReport,
    ReportBlock,
    Rrtr,
    RtcpPacket,
    Sdes,
    SdesChunk,
    SdesItem,
    SdesType,
    SenderReport,
    parse_rtcp,
    serialize_rtcp,
)
from tests.net.strategies import compounds, extended_reports, rtcp_packets

# ROC_PROTOCOL.md §6.2: RR + XR of a roc-recv report (its SDES is elided in the document;
# the full 176-byte datagrams of the captures are checked in test_captures.py).
ROC_RECV_RR_XR = bytes.fromhex(
    "81c900077b5cbb853b203664000000000000af1a000000009c3fd3ab000030a5"
    "80cf00177b5cbb85"
    "04000002eeb09c40058ea000"
    "0e0000073b2036640000aecc0000af1a0000af1a000000000000000000000000"
    "104000063b2036640000028f0000028f0000028f00000000334295af"
    "dc4000033b203664000030f90000013c"
)


@given(rtcp_packets)
def test_packet_round_trip(packet: RtcpPacket) -> None:
    data = packet.serialize()
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == [packet]


@given(compounds)
def test_compound_round_trip(packets: list[RtcpPacket]) -> None:
    data = serialize_rtcp(packets)
    assert parse_rtcp(data) == packets
    assert serialize_rtcp(parse_rtcp(data)) == data
    assert parse_rtcp(memoryview(data)) == packets


@given(extended_reports)
def test_xr_find(xr: ExtendedReport) -> None:
    assert xr.find(QueueMetrics) == [b for b in xr.blocks if isinstance(b, QueueMetrics)]


def test_roc_receiver_report_known_answer() -> None:
    packets = parse_rtcp(ROC_RECV_RR_XR)
    assert packets == [
        ReceiverReport(
            ssrc=0x7B5CBB85,
            reports=(
                ReportBlock(
                    ssrc=0x3B203664,
                    fraction_lost=0,
                    cumulative_lost=0,
                    highest_seq=0xAF1A,
                    jitter=0,
                    lsr=0x9C3FD3AB,
                    dlsr=0x30A5,
                ),
            ),
        ),
        ExtendedReport(
            ssrc=0x7B5CBB85,
            blocks=(
                Rrtr(ntp_timestamp=0xEEB09C40058EA000),
                MeasurementInfo(
                    ssrc=0x3B203664,
                    first_seq=0xAECC,
                    interval_first_seq=0xAF1A,
                    interval_last_seq=0xAF1A,
                    interval_duration=0,
                    cumulative_duration=0,
                ),
                DelayMetrics(
                    ssrc=0x3B203664,
                    mean_rtt=0x28F,
                    min_rtt=0x28F,
                    max_rtt=0x28F,
                    end_system_delay=0x334295AF,
                    interval=MetricInterval.SAMPLED,
                ),
                QueueMetrics(ssrc=0x3B203664, niq_latency=0x30F9, niq_stalling=0x13C),
            ),
        ),
    ]
    assert serialize_rtcp(packets) == ROC_RECV_RR_XR
    xr = packets[1]
    assert isinstance(xr, ExtendedReport)
    (qm,) = xr.find(QueueMetrics)
    assert qm.niq_latency_ns == 191_299_438  # ~191 ms
    assert qm.niq_stalling_ns == 4_821_777
    (dm,) = xr.find(DelayMetrics)
    assert dm.mean_rtt_ns == 9_994_507
    assert dm.end_system_delay_ns == 200_234_752  # e2e ~200 ms


def test_roc_sdes_layout() -> None:
    """`81 ca 00 0b SSRC 01 24 <36-char CNAME> 00 00` (48 bytes)."""
    cname = "a6396fb5-5555-4749-ae20-c31acc9a1690"
    data = Sdes((SdesChunk.with_cname(0x7B5CBB85, cname),)).serialize()
    assert data == bytes.fromhex("81ca000b 7b5cbb85 0124") + cname.encode() + b"\0\0"
    (sdes,) = parse_rtcp(data)
    assert isinstance(sdes, Sdes)
    assert sdes.chunks[0].cname == cname


def test_roc_sender_report_layout() -> None:
    """`80 c8 00 06 SSRC NTP-sec NTP-frac RTP-ts pkt-count octet-count` (28 bytes)."""
    sr = SenderReport(
        ssrc=0x80E5F0D8, ntp_timestamp=0xEEB09D3935B19CC5, rtp_timestamp=0xC28A072B,
        packet_count=1, octet_count=884,
    )  # fmt: skip
    assert sr.serialize() == bytes.fromhex(
        "80c80006 80e5f0d8 eeb09d39 35b19cc5 c28a072b 00000001 00000374"
    )


def test_dlrr_layout() -> None:
    dlrr = Dlrr((DlrrSubBlock(ssrc=0xDA55B4EF, last_rr=0x9D394FEF, delay=0x170A),))
    xr = ExtendedReport(ssrc=0x80E5F0D8, blocks=(dlrr,))
    assert xr.serialize() == bytes.fromhex("80cf0005 80e5f0d8 05000003 da55b4ef 9d394fef 0000170a")


def test_small_layouts() -> None:
    assert Bye((1, 2)).serialize() == bytes.fromhex("82cb0002 00000001 00000002")
    assert Bye((1,), b"done").serialize() == bytes.fromhex("81cb0003 00000001 04646f6e 65000000")
    assert Bye((), b"").serialize() == bytes.fromhex("80cb0001 00000000")
    assert Sdes((SdesChunk(5),)).serialize() == bytes.fromhex("81ca0002 00000005 00000000")
    assert ReceiverReport(9).serialize() == bytes.fromhex("80c90001 00000009")
    assert RawRtcpPacket(204, 3, b"abc").serialize() == bytes.fromhex("83cc0001 61626300")
    block = ReportBlock(ssrc=1, fraction_lost=0x80, cumulative_lost=-2, highest_seq=3)
    expected = "00000001 80fffffe 00000003 00000000 00000000 00000000"
    assert block.serialize() == bytes.fromhex(expected)
    assert QueueMetrics(7).serialize() == bytes.fromhex("dc400003 00000007 ffffffff ffffffff")
    assert DelayMetrics(7, interval=MetricInterval.CUMULATIVE).serialize()[:2] == b"\x10\xc0"


def test_sdes_items_and_cname() -> None:
    chunk = SdesChunk(1, (SdesItem(SdesType.TOOL, b"rocd"), SdesItem(SdesType.CNAME, b"\xffx")))
    assert chunk.cname == "\ufffdx"
    assert SdesChunk(1, (SdesItem(SdesType.NOTE, b"n"),)).cname is None
    (parsed,) = parse_rtcp(Sdes((chunk,)).serialize())
    assert parsed == Sdes((chunk,))


def test_padding_is_accepted_on_any_packet() -> None:
    rr = ReceiverReport(1, (ReportBlock(2, highest_seq=5),))
    sdes = Sdes((SdesChunk.with_cname(1, "x"),))

    def padded(packet: RtcpPacket, pad: int) -> bytes:
        data = bytearray(packet.serialize())
        data[0] |= 0x20
        data[2:4] = ((len(data) + pad) // 4 - 1).to_bytes(2, "big")
        return bytes(data) + bytes(pad - 1) + bytes((pad,))

    data = padded(rr, 4) + padded(sdes, 8)
    assert parse_rtcp(data) == [rr, sdes]
    # Not re-generated: the packets come back without padding.
    assert serialize_rtcp(parse_rtcp(data)) == rr.serialize() + sdes.serialize()


def test_unknown_types_and_blocks_are_kept_raw() -> None:
    app = bytes.fromhex("81cc0002 00000001 74657374")  # APP, subtype 1, name "test"
    (raw,) = parse_rtcp(app)
    assert raw == RawRtcpPacket(204, 1, bytes.fromhex("00000001 74657374"))
    xr = bytes.fromhex("80cf0006 00000001 2a010001 01020304 dc400002 00000001 00000002")
    (parsed,) = parse_rtcp(xr)
    assert parsed == ExtendedReport(
        1,
        (
            RawXrBlock(42, 1, bytes.fromhex("01020304")),
            RawXrBlock(220, 0x40, bytes.fromhex("00000001 00000002")),  # 12 bytes: not BT 220
        ),
    )
    assert serialize_rtcp([raw, parsed]) == app + xr


def test_xr_reserved_count_is_ignored() -> None:
    data = bytes.fromhex("85cf0004 00000001 04000002 00000000 00000007")
    assert parse_rtcp(data) == [ExtendedReport(1, (Rrtr(7),))]


@pytest.mark.parametrize(
    ("hex_data", "what"),
    [
        ("", "empty"),
        ("80c9", "2 bytes after the last"),
        ("80c90001 00000001 80", "1 bytes after the last"),
        ("40c90001 00000001", "version 1"),
        ("80c90002 00000001", "overruns"),
        ("a0c90001 00000000", "pad count 0"),
        ("a0c90001 00000005", "pad count 5"),
        ("a0c90000", "pad count 0 outside 1..0"),
        ("80c90000", "RR body of 0 bytes"),
        ("81c90001 00000001", "too short for 1 reports"),
        ("80c80001 00000001", "SR body of 4 bytes"),
        ("81ca0000", "too short for 1 chunks"),
        ("81ca0001 00000001", "no terminating null"),
        ("81ca0002 00000001 0105616263", "overruns"),
        ("81ca0002 00000001 01", "overruns"),
        ("81ca0003 00000001 00000000 01020300", "after the last SDES chunk"),
        ("81ca0002 00000001 01026162", "no terminating null"),
        ("82cb0001 00000001", "too short for 2 SSRCs"),
        ("81cb0002 00000001 05616263", "does not fill"),
        ("81cb0003 00000001 01610000 00000000", "does not fill"),
        ("80cf0000", "XR body of 0 bytes"),
        ("a0cf0002 00000001 04000002", "2 bytes after the last XR block"),
        ("80cf0002 00000001 04000002", "overruns"),
    ],
)
def test_malformed(hex_data: str, what: str) -> None:
    with pytest.raises(MalformedPacket, match=what):
        parse_rtcp(bytes.fromhex(hex_data))


def test_sdes_chunk_padding_must_fit() -> None:
    # Items end 1 byte before the end of the body: the null octet fits, the padding is
    # supplied by RTCP padding having been stripped.
    data = bytes.fromhex("a1ca0003 00000001 01036162 63000002")
    with pytest.raises(MalformedPacket, match="padding overruns"):
        parse_rtcp(data)


@pytest.mark.parametrize(
    ("packet", "what"),
    [
        (ReceiverReport(1, tuple(ReportBlock(i) for i in range(32))), "at most 31"),
        (SenderReport(1 << 32, 0, 0, 0, 0), "out of range"),
        (ReceiverReport(-1), "out of range"),
        (ReceiverReport(1, (ReportBlock(1, cumulative_lost=1 << 23),)), "24 bits"),
        (ReceiverReport(1, (ReportBlock(1, fraction_lost=256),)), "8 bits"),
        (ReceiverReport(1, (ReportBlock(1, jitter=-1),)), "out of range"),
        (Sdes((SdesChunk(1, (SdesItem(1, bytes(256)),)),)), "exceeds 255"),
        (Sdes((SdesChunk(1, (SdesItem(0, b""),)),)), "1..255"),
        (Sdes((SdesChunk(1 << 32),)), "out of range"),
        (Sdes(tuple(SdesChunk(i) for i in range(32))), "count"),
        (Bye(tuple(range(32))), "at most 31"),
        (Bye((1 << 32,)), "out of range"),
        (Bye((1,), bytes(256)), "exceeds 255"),
        (RawRtcpPacket(256, 0), "0..255"),
        (RawRtcpPacket(204, 32), "count"),
        (RawRtcpPacket(204, 0, bytes(4 * 65536)), "whole words"),
        (ExtendedReport(1, (Rrtr(1 << 64),)), "out of range"),
        (ExtendedReport(1, (RawXrBlock(256, 0),)), "8 bits"),
        (ExtendedReport(1, (RawXrBlock(1, 0, bytes(4 * 65536)),)), "whole words"),
        (ExtendedReport(1, (QueueMetrics(1, niq_latency=-1),)), "out of range"),
    ],
)
def test_serialize_rejects_fields_that_do_not_fit(packet: RtcpPacket, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        packet.serialize()
