import struct

import pytest
from hypothesis import given

from rocd.net.roc import MalformedPacket, RtpExtension, RtpPacket
from tests.net.strategies import rtp_packets


@given(rtp_packets)
def test_round_trip(packet: RtpPacket) -> None:
    data = packet.serialize()
    assert len(data) == packet.size
    parsed = RtpPacket.parse(data)
    assert parsed == packet
    assert parsed.serialize() == data
    assert RtpPacket.parse(bytearray(data)) == packet
    assert RtpPacket.parse(memoryview(data)) == packet


def test_roc_bare_header_layout() -> None:
    """ROC_PROTOCOL.md §2.1: 0x80, M=0 + PT, seq, timestamp, SSRC, then the payload."""
    payload = bytes(range(256)) * 3 + bytes(116)
    packet = RtpPacket(
        payload_type=10, seq=0xBEEF, timestamp=0xC28A072B, ssrc=0x80E5F0D8, payload=payload
    )
    data = packet.serialize()
    assert data[:12] == bytes.fromhex("800abeefc28a072b80e5f0d8")
    assert data[12:] == payload
    assert len(data) == packet.size == 896
    assert packet.header_size == 12


def test_padding_keeps_length_constant() -> None:
    """A short last packet is padded with zeros and a pad count (P bit) to full size."""
    packet = RtpPacket(10, 1, 2, 3, payload=bytes([1]) * 880, padding=4)
    data = packet.serialize()
    assert len(data) == 896
    assert data[0] == 0xA0
    assert data[-4:] == bytes([0, 0, 0, 4])
    parsed = RtpPacket.parse(data)
    assert parsed.payload == bytes([1]) * 880
    assert parsed.padding == 4
    # One byte of padding is just the count.
    assert RtpPacket(10, 1, 2, 3, b"ab", padding=1).serialize()[-3:] == b"ab\x01"


def test_marker_csrcs_extension_layout() -> None:
    packet = RtpPacket(
        payload_type=11, seq=1, timestamp=2, ssrc=3, payload=b"xy", marker=True,
        csrcs=(0x11111111, 0x22222222), extension=RtpExtension(0xBEDE, b"\x01\x02\x03\x04"),
    )  # fmt: skip
    data = packet.serialize()
    assert data == (
        bytes.fromhex("928b0001 00000002 00000003 11111111 22222222 bede0001 01020304") + b"xy"
    )
    assert packet.header_size == 28
    assert RtpPacket.parse(data) == packet


def test_foreign_padding_content_is_ignored() -> None:
    data = bytes.fromhex("a00a0001 00000002 00000003") + b"ab" + b"\xff\xff\x03"
    packet = RtpPacket.parse(data)
    assert packet.payload == b"ab"
    assert packet.padding == 3


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"", "shorter than its header"),
        (bytes.fromhex("800a0001 00000002 000000"), "shorter than its header"),
        (bytes.fromhex("400a0001 00000002 00000003"), "version 1"),
        (bytes.fromhex("c00a0001 00000002 00000003"), "version 3"),
        (bytes.fromhex("820a0001 00000002 00000003 00000004"), "2 CSRCs"),
        (bytes.fromhex("900a0001 00000002 00000003 bede"), "header extension"),
        (bytes.fromhex("900a0001 00000002 00000003 bede0002 00000000"), "overruns"),
        (bytes.fromhex("a00a0001 00000002 00000003"), "pad count 0"),
        (bytes.fromhex("a00a0001 00000002 00000003 00"), "pad count 0"),
        (bytes.fromhex("a00a0001 00000002 00000003 0003"), "pad count 3 outside 1..2"),
        (bytes.fromhex("b00a0001 00000002 00000003 bede0000 05"), "pad count 5 outside 1..1"),
    ],
)
def test_malformed(data: bytes, what: str) -> None:
    with pytest.raises(MalformedPacket, match=what):
        RtpPacket.parse(data)


@pytest.mark.parametrize(
    ("packet", "what"),
    [
        (RtpPacket(128, 0, 0, 0), "payload type"),
        (RtpPacket(10, 65536, 0, 0), "out of range"),
        (RtpPacket(10, 0, 1 << 32, 0), "out of range"),
        (RtpPacket(10, 0, 0, -1), "out of range"),
        (RtpPacket(10, 0, 0, 0, padding=256), "padding"),
        (RtpPacket(10, 0, 0, 0, padding=-1), "padding"),
        (RtpPacket(10, 0, 0, 0, csrcs=tuple(range(16))), "CSRCs"),
        (RtpPacket(10, 0, 0, 0, csrcs=(1 << 32,)), "out of range"),
        (RtpPacket(10, 0, 0, 0, extension=RtpExtension(1, b"abc")), "whole 32-bit words"),
        (RtpPacket(10, 0, 0, 0, extension=RtpExtension(1 << 16, b"")), "out of range"),
    ],
)
def test_serialize_rejects_fields_that_do_not_fit(packet: RtpPacket, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        packet.serialize()


def test_parse_copies_out_of_a_mutable_buffer() -> None:
    buf = bytearray(struct.pack(">BBHII", 0x80, 10, 1, 2, 3) + b"abcd")
    packet = RtpPacket.parse(buf)
    buf[12:16] = b"zzzz"
    assert packet.payload == b"abcd"
    assert type(packet.payload) is bytes
