"""The codecs against traffic captured from real roc-send / roc-recv 0.4.0 (tests/vectors)."""

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from rocd.net.roc import (
    L16_STEREO,
    DelayMetrics,
    Dlrr,
    ExtendedReport,
    MeasurementInfo,
    QueueMetrics,
    ReceiverReport,
    Rrtr,
    RtpPacket,
    Sdes,
    SenderReport,
    SeqExtender,
    decode_l16,
    decode_l16_s16,
    ntp64_to_ntp32,
    ntp64_to_unix_ns,
    parse_rtcp,
    seq_add,
    serialize_rtcp,
    ts_add,
)
from tests.pcap import CONTROL_PORT, SOURCE_PORT, VECTORS, Datagram, by_port, read_udp

CAPTURES = ["rs8m_default.pcap", "ldpc_default.pcap"]
FOOTER = 6  # FECFRAME source payload ID appended to every source datagram (both schemes)
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _rtcp(path: Path) -> tuple[list[Datagram], list[Datagram]]:
    """(sender -> receiver, receiver -> sender) RTCP datagrams in capture order."""
    datagrams = read_udp(path)
    to_receiver = [d for d in datagrams if d.dst[1] == CONTROL_PORT]
    to_sender = [d for d in datagrams if d.src[1] == CONTROL_PORT]
    return to_receiver, to_sender


def _rtp(path: Path) -> list[RtpPacket]:
    return [RtpPacket.parse(d[:-FOOTER]) for d in by_port(path, SOURCE_PORT)]


@pytest.mark.parametrize("name", CAPTURES)
def test_every_rtcp_datagram_round_trips_byte_identically(name: str) -> None:
    to_receiver, to_sender = _rtcp(VECTORS / name)
    assert len(to_receiver) >= 10
    assert len(to_sender) >= 10
    for d in to_receiver + to_sender:
        assert serialize_rtcp(parse_rtcp(d.payload)) == d.payload


@pytest.mark.parametrize("name", CAPTURES)
def test_sender_reports_make_sense(name: str) -> None:
    to_receiver, to_sender = _rtcp(VECTORS / name)
    rtp_ssrc = _rtp(VECTORS / name)[0].ssrc
    receiver_ssrc = parse_rtcp(to_sender[0].payload)[0]
    assert isinstance(receiver_ssrc, ReceiverReport)
    rrtr_ntp32: set[int] = set()
    for d in to_sender:
        for xr in parse_rtcp(d.payload):
            if isinstance(xr, ExtendedReport):
                rrtr_ntp32.update(ntp64_to_ntp32(b.ntp_timestamp) for b in xr.find(Rrtr))
    previous_count = 0
    for i, d in enumerate(to_receiver):
        packets = parse_rtcp(d.payload)
        sr = packets[0]
        sdes = packets[-1]
        assert isinstance(sr, SenderReport)
        assert isinstance(sdes, Sdes)
        assert sr.ssrc == rtp_ssrc
        assert sr.reports == ()
        (chunk,) = sdes.chunks
        assert chunk.ssrc == rtp_ssrc
        assert chunk.cname is not None
        assert UUID4.fullmatch(chunk.cname)
        # SR time is the sender's wall clock when it sent the report.
        assert abs(ntp64_to_unix_ns(sr.ntp_timestamp) - d.time * 1e9) < 10e6
        assert sr.octet_count == sr.packet_count * 884  # payload bytes only
        assert sr.packet_count > previous_count
        previous_count = sr.packet_count
        if i == 0:
            assert len(d.payload) == 76  # no receiver heard yet: SR + SDES
            assert len(packets) == 2
        else:
            assert len(d.payload) == 100  # SR + XR(DLRR) + SDES
            xr = packets[1]
            assert isinstance(xr, ExtendedReport)
            assert xr.ssrc == rtp_ssrc
            (dlrr,) = xr.blocks
            assert isinstance(dlrr, Dlrr)
            (sub,) = dlrr.subblocks
            assert sub.ssrc == receiver_ssrc.ssrc
            assert sub.last_rr in rrtr_ntp32
            assert 0 < sub.delay < 0x10000  # under one second, in 1/65536 s


@pytest.mark.parametrize("name", CAPTURES)
def test_receiver_reports_make_sense(name: str) -> None:
    to_receiver, to_sender = _rtcp(VECTORS / name)
    rtp = _rtp(VECTORS / name)
    sender_ssrc = rtp[0].ssrc
    ext = SeqExtender()
    highest = {ext.extend(p.seq) for p in rtp}
    sr_ntp32 = {0}
    for d in to_receiver:
        sr = parse_rtcp(d.payload)[0]
        assert isinstance(sr, SenderReport)
        sr_ntp32.add(ntp64_to_ntp32(sr.ntp_timestamp))
    queue_metrics_seen = 0
    for d in to_sender:
        assert len(d.payload) == 176
        rr, xr, sdes = parse_rtcp(d.payload)
        assert isinstance(rr, ReceiverReport)
        assert isinstance(xr, ExtendedReport)
        assert isinstance(sdes, Sdes)
        assert rr.ssrc == xr.ssrc == sdes.chunks[0].ssrc != sender_ssrc
        assert sdes.chunks[0].cname is not None
        assert UUID4.fullmatch(sdes.chunks[0].cname)
        (block,) = rr.reports
        assert block.ssrc == sender_ssrc
        assert (block.fraction_lost, block.cumulative_lost, block.jitter) == (0, 0, 0)  # Roc 0.4
        assert block.highest_seq in highest
        assert block.lsr in sr_ntp32
        assert [type(b) for b in xr.blocks] == [Rrtr, MeasurementInfo, DelayMetrics, QueueMetrics]
        rrtr, mi, dm, qm = xr.blocks
        assert isinstance(rrtr, Rrtr)
        assert abs(ntp64_to_unix_ns(rrtr.ntp_timestamp) - d.time * 1e9) < 10e6
        assert isinstance(mi, MeasurementInfo)
        assert isinstance(dm, DelayMetrics)
        assert isinstance(qm, QueueMetrics)
        assert mi.ssrc == dm.ssrc == qm.ssrc == sender_ssrc
        assert mi.first_seq == rtp[0].seq
        assert mi.interval_first_seq == mi.interval_last_seq == block.highest_seq
        assert qm.serialize()[:4] == bytes.fromhex("dc400003")  # BT 220, sampled, 16 bytes
        if qm.niq_latency_ns is not None:
            queue_metrics_seen += 1
            # The receiver ran with a 100 ms target latency.
            assert 50e6 < qm.niq_latency_ns < 150e6
            assert qm.niq_stalling_ns is not None
            assert qm.niq_stalling_ns < 50e6
            assert dm.end_system_delay_ns is not None
            assert 50e6 < dm.end_system_delay_ns < 150e6
    assert queue_metrics_seen >= 5


@pytest.mark.parametrize("name", CAPTURES)
def test_source_packets_are_roc_rtp(name: str) -> None:
    packets = _rtp(VECTORS / name)
    assert len(packets) == 399
    first = packets[0]
    for i, p in enumerate(packets):
        assert p.payload_type == 10
        assert len(p.payload) == 884
        assert p.size == 896
        assert (p.marker, p.padding, p.csrcs, p.extension) == (False, 0, (), None)
        assert p.ssrc == first.ssrc
        assert p.seq == seq_add(first.seq, i)
        assert p.timestamp == ts_add(first.timestamp, 221 * i)
        assert L16_STEREO.payload_samples(len(p.payload)) == 221


def test_source_datagrams_reserialize_byte_identically() -> None:
    for d in by_port(VECTORS / "rs8m_default.pcap", SOURCE_PORT):
        assert RtpPacket.parse(d[:-FOOTER]).serialize() == d[:-FOOTER]


def test_decoded_audio_is_the_input_file() -> None:
    wav, rate = soundfile.read(VECTORS / "sig2s_stereo.wav", dtype="int16")
    assert rate == 44100
    packets = _rtp(VECTORS / "rs8m_default.pcap")
    decoded = np.concatenate([decode_l16_s16(p.payload, 2) for p in packets])
    offsets = [
        off
        for off in range(len(wav) - len(decoded) + 1)
        if np.array_equal(wav[off : off + len(decoded)], decoded)
    ]
    # roc-send sends whole 221-sample packets from the start; the last 21 samples stay behind.
    assert offsets == [0]
    as_float = np.concatenate([decode_l16(p.payload, 2) for p in packets])
    assert np.array_equal(as_float * 32768, decoded)
