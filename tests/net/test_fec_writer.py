"""FecWriter: Roc's captured streams rebuilt byte for byte, block numbering and sizes."""

import pytest

from rocd.net.roc import (
    FecScheme,
    FecWriter,
    RepairPayloadId,
    SourcePayloadId,
    parse_repair_datagram,
    parse_source_datagram,
)
from tests.net.fec_blocks import captured_blocks, captured_datagrams

RTP = bytes(range(40))


@pytest.mark.parametrize("scheme", list(FecScheme))
def test_captured_stream_is_rebuilt_byte_for_byte(scheme: FecScheme) -> None:
    # The RTP packets of roc-send's capture, through our writer, give back every source and
    # repair datagram it sent, footers and headers included, in the order it sent them.
    blocks = captured_blocks(scheme)
    writer = FecWriter(scheme, first_sbn=blocks[0].sbn)
    sent: list[tuple[bool, bytes]] = []
    for block in blocks:
        for rtp in block.source:
            out = writer.write(rtp)
            sent.append((False, out.source))
            sent.extend((True, d) for d in out.repair)
    assert sent == captured_datagrams(scheme)
    assert sum(is_repair for is_repair, _ in sent) == 220


@pytest.mark.parametrize("scheme", list(FecScheme))
def test_block_numbers_count_up_and_wrap(scheme: FecScheme) -> None:
    writer = FecWriter(scheme, n_source=2, n_repair=7, first_sbn=0xFFFF)
    pids = []
    for _ in range(6):
        out = writer.write(RTP)
        pids.append(parse_source_datagram(scheme, out.source)[1])
        assert len(out.repair) == (7 if pids[-1].esi == 1 else 0)
    assert [(p.sbn, p.esi) for p in pids] == [
        (0xFFFF, 0),
        (0xFFFF, 1),
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    assert writer.sbn == 2


def test_repair_datagrams_follow_the_kth_packet_in_esi_order() -> None:
    writer = FecWriter(FecScheme.LDPC_STAIRCASE, n_source=3, n_repair=8, first_sbn=9)
    assert writer.write(RTP).repair == []
    assert writer.write(RTP).repair == []
    repair = writer.write(RTP).repair
    pids = [parse_repair_datagram(FecScheme.LDPC_STAIRCASE, d)[1] for d in repair]
    assert pids == [RepairPayloadId(9, e, 3, 11) for e in range(3, 11)]


def test_length_change_inside_a_block_is_refused() -> None:
    writer = FecWriter(FecScheme.RS8M, n_source=3, n_repair=2)
    writer.write(RTP)
    with pytest.raises(ValueError, match="pad packets"):
        writer.write(RTP + b"x")
    # The refused packet did not enter the block; the block goes on.
    assert parse_source_datagram(FecScheme.RS8M, writer.write(RTP).source)[1].esi == 1
    assert len(writer.write(RTP).repair) == 2
    # A new block may use a new length.
    assert writer.write(RTP + b"xy").repair == []
    with pytest.raises(ValueError, match="empty"):
        writer.write(b"")


def test_block_size_changes_at_the_next_block() -> None:
    scheme = FecScheme.RS8M
    writer = FecWriter(scheme, n_source=2, n_repair=1)
    writer.write(RTP)
    writer.set_block_size(3, 4)
    assert writer.block_size == (2, 1)
    assert len(writer.write(RTP).repair) == 1
    assert writer.block_size == (3, 4)
    outs = [writer.write(RTP) for _ in range(3)]
    assert [parse_source_datagram(scheme, o.source)[1] for o in outs] == [
        SourcePayloadId(1, e, 3) for e in range(3)
    ]
    assert len(outs[-1].repair) == 4


def test_flush_drops_the_open_block_without_repair() -> None:
    writer = FecWriter(FecScheme.RS8M, n_source=4, n_repair=2, first_sbn=5)
    writer.write(RTP)
    writer.flush()
    writer.flush()  # nothing open: no block number is skipped
    out = writer.write(RTP)
    assert parse_source_datagram(FecScheme.RS8M, out.source)[1] == SourcePayloadId(6, 0, 4)


def test_unusable_block_sizes_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="255"):
        FecWriter(FecScheme.RS8M, n_source=250, n_repair=10)
    with pytest.raises(ValueError, match="N1"):
        FecWriter(FecScheme.LDPC_STAIRCASE, n_source=18, n_repair=5)
    with pytest.raises(ValueError, match="SBN"):
        FecWriter(FecScheme.RS8M, first_sbn=65536)
    writer = FecWriter(FecScheme.LDPC_STAIRCASE)
    with pytest.raises(ValueError, match="N1"):
        writer.set_block_size(18, 6)
    assert writer.block_size == (18, 10)
