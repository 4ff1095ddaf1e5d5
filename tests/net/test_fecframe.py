"""FECFRAME payload IDs: Roc's exact byte layouts, round trips and the §3.4 validation."""

import pytest

from rocd.net.roc import (
    FecScheme,
    MalformedPacket,
    RepairPayloadId,
    SourcePayloadId,
    build_repair_datagram,
    build_source_datagram,
    check_block_size,
    parse_repair_datagram,
    parse_source_datagram,
    sbn_diff,
)
from tests.pcap import REPAIR_PORT, SOURCE_PORT, VECTORS, by_port

RS8M = FecScheme.RS8M
LDPC = FecScheme.LDPC_STAIRCASE
RTP = bytes.fromhex("800a1234") + bytes(20)


def test_rs8m_layouts_match_captured_roc_bytes() -> None:
    # Wire examples from roc-send 0.4.0 (defaults, K=18, R=10).
    source = build_source_datagram(RS8M, RTP, SourcePayloadId(59258, 0, 18))
    assert source == RTP + bytes.fromhex("00e77a000012")
    repair = build_repair_datagram(RS8M, RepairPayloadId(59258, 18, 18, 28), b"\xab" * 4)
    assert repair == bytes.fromhex("00e77a120012") + b"\xab" * 4


def test_ldpc_layouts_match_captured_roc_bytes() -> None:
    source = build_source_datagram(LDPC, RTP, SourcePayloadId(0xE1E4, 0, 18))
    assert source == RTP + bytes.fromhex("e1e400000012")
    repair = build_repair_datagram(LDPC, RepairPayloadId(0xE1E4, 18, 18, 28), b"\xcd" * 3)
    assert repair == bytes.fromhex("e1e400120012001c") + b"\xcd" * 3


def test_parse_inverts_build() -> None:
    for scheme in FecScheme:
        datagram = build_source_datagram(scheme, RTP, SourcePayloadId(65535, 4, 5))
        assert parse_source_datagram(scheme, datagram) == (RTP, SourcePayloadId(65535, 4, 5))
        pid = RepairPayloadId(7, 5, 5, 255 if scheme is RS8M else 12)
        datagram = build_repair_datagram(scheme, pid, b"xyz")
        assert parse_repair_datagram(scheme, datagram) == (b"xyz", pid)


def test_rs8m_repair_reports_n_255_and_ldpc_source_has_no_n() -> None:
    # RS8M has no N field: whatever the sender's R, the receiver sees N = 255.
    datagram = build_repair_datagram(RS8M, RepairPayloadId(1, 20, 18, 28), b"x")
    assert parse_repair_datagram(RS8M, datagram)[1].n == 255
    assert len(build_repair_datagram(LDPC, RepairPayloadId(1, 20, 18, 28), b"x")) == 9


def test_rs8m_sbn_is_taken_modulo_65536() -> None:
    # Roc's block counter is 16 bits: a non-zero top byte is ignored on receive.
    _, pid = parse_source_datagram(RS8M, RTP + bytes.fromhex("abcdef010012"))
    assert pid == SourcePayloadId(0xCDEF, 1, 18)
    _, rpid = parse_repair_datagram(RS8M, bytes.fromhex("ff0001140012") + b"x")
    assert rpid == RepairPayloadId(1, 20, 18, 255)


@pytest.mark.parametrize(
    ("scheme", "footer"),
    [
        (RS8M, "000001000000"),  # K = 0
        (RS8M, "000001120012"),  # ESI 18 = K
        (RS8M, "000001000100"),  # K = 256 > 255
        (LDPC, "000100000000"),  # K = 0
        (LDPC, "000100120012"),  # ESI 18 = K
    ],
)
def test_invalid_source_footers_are_malformed(scheme: FecScheme, footer: str) -> None:
    with pytest.raises(MalformedPacket):
        parse_source_datagram(scheme, RTP + bytes.fromhex(footer))


@pytest.mark.parametrize(
    ("scheme", "header"),
    [
        (RS8M, "000001110012"),  # ESI 17 < K
        (RS8M, "000001000000"),  # K = 0
        (RS8M, "000001ff0012"),  # ESI 255 = N
        (LDPC, "000100110012001c"),  # ESI 17 < K
        (LDPC, "0001001200120012"),  # ESI 18 = N
        (LDPC, "0001001400120000"),  # N = 0
        (LDPC, "000100000000001c"),  # K = 0
        (LDPC, "0001001c001c001b"),  # K > N
    ],
)
def test_invalid_repair_headers_are_malformed(scheme: FecScheme, header: str) -> None:
    with pytest.raises(MalformedPacket):
        parse_repair_datagram(scheme, bytes.fromhex(header) + b"symbol")


@pytest.mark.parametrize("scheme", list(FecScheme))
def test_empty_symbols_are_malformed(scheme: FecScheme) -> None:
    with pytest.raises(MalformedPacket):
        parse_source_datagram(scheme, bytes.fromhex("000100000012"))
    with pytest.raises(MalformedPacket):
        parse_repair_datagram(scheme, bytes(scheme.repair_header_size))
    with pytest.raises(MalformedPacket):
        parse_source_datagram(scheme, b"\x00")


def test_build_rejects_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError, match="SBN"):
        build_source_datagram(RS8M, RTP, SourcePayloadId(65536, 0, 1))
    with pytest.raises(ValueError, match="not below"):
        build_source_datagram(LDPC, RTP, SourcePayloadId(0, 3, 3))
    with pytest.raises(ValueError, match="empty"):
        build_source_datagram(LDPC, b"", SourcePayloadId(0, 0, 3))
    with pytest.raises(ValueError, match="out of range"):
        build_repair_datagram(RS8M, RepairPayloadId(0, 255, 18, 256), b"x")
    with pytest.raises(ValueError, match=r"K\.\.N-1"):
        build_repair_datagram(LDPC, RepairPayloadId(0, 2, 3, 10), b"x")


def test_block_size_limits() -> None:
    check_block_size(RS8M, 245, 10)
    check_block_size(LDPC, 1000, 500)
    with pytest.raises(ValueError, match="at most 255"):
        check_block_size(RS8M, 246, 10)
    with pytest.raises(ValueError, match="at least one"):
        check_block_size(LDPC, 0, 10)
    with pytest.raises(ValueError, match="negative"):
        check_block_size(LDPC, 10, -1)


def test_sbn_diff_wraps_at_16_bits() -> None:
    assert sbn_diff(0, 0xFFFF) == 1
    assert sbn_diff(0xFFFF, 0) == -1
    assert sbn_diff(5, 3) == 2
    assert sbn_diff(0x8000, 0) == -0x8000


@pytest.mark.parametrize(
    ("name", "scheme"), [("rs8m_default.pcap", RS8M), ("ldpc_default.pcap", LDPC)]
)
def test_captured_datagrams_parse_and_rebuild_identically(name: str, scheme: FecScheme) -> None:
    for datagram in by_port(VECTORS / name, SOURCE_PORT):
        rtp, pid = parse_source_datagram(scheme, datagram)
        assert rtp[0] == 0x80
        assert pid.k == 18
        assert build_source_datagram(scheme, rtp, pid) == datagram
    for datagram in by_port(VECTORS / name, REPAIR_PORT):
        symbol, rpid = parse_repair_datagram(scheme, datagram)
        assert rpid.k == 18
        assert rpid.n == (255 if scheme is RS8M else 28)
        rebuilt = build_repair_datagram(scheme, RepairPayloadId(rpid.sbn, rpid.esi, 18, 28), symbol)
        assert rebuilt == datagram
