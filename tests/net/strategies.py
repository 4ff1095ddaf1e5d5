"""Hypothesis strategies for the wire-layer value types (every field within its bit width)."""

from __future__ import annotations

from hypothesis import strategies as st

from rocd.net.roc import (
    Bye,
    DelayMetrics,
    Dlrr,
    DlrrSubBlock,
    ExtendedReport,
    MeasurementInfo,
    MetricInterval,
    QueueMetrics,
    RawRtcpPacket,
    RawXrBlock,
    ReceiverReport,
    ReportBlock,
    Rrtr,
    RtcpPacket,
    RtpExtension,
    RtpPacket,
    Sdes,
    SdesChunk,
    SdesItem,
    SenderReport,
    XrBlock,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, 0xFFFF_FFFF_FFFF_FFFF)


def words(max_words: int = 8) -> st.SearchStrategy[bytes]:
    """Bytes of a whole number of 32-bit words."""
    return st.integers(0, max_words).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))


rtp_extensions = st.builds(RtpExtension, profile=u16, data=words())


def rtp_packet_strategy(max_payload: int = 1500) -> st.SearchStrategy[RtpPacket]:
    return st.builds(
        RtpPacket,
        payload_type=st.integers(0, 127),
        seq=u16,
        timestamp=u32,
        ssrc=u32,
        payload=st.binary(max_size=max_payload),
        marker=st.booleans(),
        padding=st.integers(0, 255),
        csrcs=st.lists(u32, max_size=15).map(tuple),
        extension=st.none() | rtp_extensions,
    )


report_blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=u8,
    cumulative_lost=st.integers(-0x80_0000, 0x7F_FFFF),
    highest_seq=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)

intervals = st.sampled_from(MetricInterval)

xr_blocks: st.SearchStrategy[XrBlock] = st.one_of(
    st.builds(Rrtr, ntp_timestamp=u64),
    st.builds(
        Dlrr,
        subblocks=st.lists(
            st.builds(DlrrSubBlock, ssrc=u32, last_rr=u32, delay=u32), max_size=5
        ).map(tuple),
    ),
    st.builds(
        MeasurementInfo,
        ssrc=u32,
        first_seq=u16,
        interval_first_seq=u32,
        interval_last_seq=u32,
        interval_duration=u32,
        cumulative_duration=u64,
    ),
    st.builds(
        DelayMetrics,
        ssrc=u32,
        mean_rtt=u32,
        min_rtt=u32,
        max_rtt=u32,
        end_system_delay=u64,
        interval=intervals,
    ),
    st.builds(QueueMetrics, ssrc=u32, niq_latency=u32, niq_stalling=u32, interval=intervals),
    # Unknown block types, and known types of a size that is not theirs, stay raw.
    st.builds(
        RawXrBlock,
        block_type=st.sampled_from([1, 2, 3, 6, 7, 42, 255]),
        type_specific=u8,
        body=words(),
    ),
    st.builds(
        RawXrBlock,
        block_type=st.just(220),
        type_specific=u8,
        body=st.sampled_from([b"", bytes(8), bytes(16)]),
    ),
)


def rtcp_packet_strategy(max_items: int = 31) -> st.SearchStrategy[RtcpPacket]:
    """Any RTCP packet, with at most `max_items` report blocks, chunks, SSRCs or XR blocks."""
    reports = st.lists(report_blocks, max_size=max_items).map(tuple)
    sdes_items = st.builds(SdesItem, type=st.integers(1, 255), value=st.binary(max_size=255))
    sdes_chunks = st.builds(SdesChunk, ssrc=u32, items=st.lists(sdes_items, max_size=4).map(tuple))
    return st.one_of(
        st.builds(
            SenderReport,
            ssrc=u32,
            ntp_timestamp=u64,
            rtp_timestamp=u32,
            packet_count=u32,
            octet_count=u32,
            reports=reports,
            extension=words(),
        ),
        st.builds(ReceiverReport, ssrc=u32, reports=reports, extension=words()),
        st.builds(Sdes, chunks=st.lists(sdes_chunks, max_size=max_items).map(tuple)),
        st.builds(
            Bye,
            ssrcs=st.lists(u32, max_size=max_items).map(tuple),
            reason=st.none() | st.binary(max_size=255),
        ),
        st.builds(
            ExtendedReport,
            ssrc=u32,
            blocks=st.lists(xr_blocks, max_size=min(max_items, 6)).map(tuple),
        ),
        st.builds(
            RawRtcpPacket,
            packet_type=st.sampled_from([192, 193, 204, 205, 206, 208, 0, 255]),
            count=st.integers(0, 31),
            body=words(),
        ),
    )


rtp_packets = rtp_packet_strategy()
rtcp_packets = rtcp_packet_strategy()
extended_reports = st.builds(
    ExtendedReport, ssrc=u32, blocks=st.lists(xr_blocks, max_size=6).map(tuple)
)
compounds = st.lists(rtcp_packets, min_size=1, max_size=5)
