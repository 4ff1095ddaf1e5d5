"""FecReader: Roc's captured streams with packets removed, reordering, duplicates, SBN
wrap and jumps, the window, and counters for everything dropped."""

import random

import pytest

from rocd.net.roc import (
    FecReader,
    FecScheme,
    FecWriter,
    RepairPayloadId,
    SourcePayloadId,
    build_repair_datagram,
    build_source_datagram,
    parse_repair_datagram,
    parse_source_datagram,
)
from tests.net.fec_blocks import captured_blocks, captured_datagrams
from tests.net.ldpc_oracle import determined

RS8M = FecScheme.RS8M
LDPC = FecScheme.LDPC_STAIRCASE

Datagram = tuple[bool, bytes]  # (is_repair, bytes)


def _feed(reader: FecReader, datagram: Datagram) -> list[bytes]:
    is_repair, data = datagram
    return reader.feed_repair(data) if is_repair else reader.feed_source(data)


def _feed_all(reader: FecReader, datagrams: list[Datagram]) -> list[bytes]:
    return [rtp for d in datagrams for rtp in _feed(reader, d)]


def _esi(scheme: FecScheme, datagram: Datagram) -> tuple[int, int]:
    """(SBN, ESI) of a datagram."""
    is_repair, data = datagram
    pid: SourcePayloadId | RepairPayloadId
    if is_repair:
        pid = parse_repair_datagram(scheme, data)[1]
    else:
        pid = parse_source_datagram(scheme, data)[1]
    return pid.sbn, pid.esi


def _stream(
    scheme: FecScheme,
    n_packets: int,
    *,
    k: int = 18,
    r: int = 10,
    first_sbn: int = 0,
    seed: int = 0,
) -> tuple[list[bytes], list[Datagram]]:
    """RTP packets (distinct, random) and the datagrams a writer makes of them."""
    rng = random.Random(seed)
    writer = FecWriter(scheme, n_source=k, n_repair=r, first_sbn=first_sbn)
    packets = [
        bytes([0x80, 10]) + i.to_bytes(2, "big") + rng.randbytes(60) for i in range(n_packets)
    ]
    datagrams: list[Datagram] = []
    for rtp in packets:
        out = writer.write(rtp)
        datagrams.append((False, out.source))
        datagrams.extend((True, d) for d in out.repair)
    return packets, datagrams


@pytest.mark.parametrize("scheme", list(FecScheme))
def test_lossless_capture_passes_every_packet_through_once(scheme: FecScheme) -> None:
    reader = FecReader(scheme)
    out = _feed_all(reader, captured_datagrams(scheme))
    assert out == [rtp for b in captured_blocks(scheme) for rtp in b.source]
    assert reader.stats.source_received == 399
    assert reader.stats.repair_received == 220
    assert reader.stats.recovered == 0


def test_rs8m_capture_with_up_to_r_losses_per_block_is_rebuilt_exactly() -> None:
    rng = random.Random(11)
    datagrams = captured_datagrams(RS8M)
    removed: set[int] = set()
    blocks: dict[int, list[int]] = {}
    for i, d in enumerate(datagrams):
        blocks.setdefault(_esi(RS8M, d)[0], []).append(i)
    for indexes in blocks.values():
        if len(indexes) == 28:
            removed.update(rng.sample(indexes, rng.randint(1, 10)))
    reader = FecReader(RS8M)
    out = _feed_all(reader, [d for i, d in enumerate(datagrams) if i not in removed])
    expected = [rtp for b in captured_blocks(RS8M) for rtp in b.source]
    assert sorted(out) == sorted(expected)
    assert len(out) == len(set(out)) == 399
    lost_sources = sum(not datagrams[i][0] for i in removed)
    assert lost_sources > 50
    assert reader.stats.recovered == lost_sources


def test_ldpc_capture_with_losses_gives_back_what_the_code_determines() -> None:
    rng = random.Random(12)
    removed: set[tuple[int, int]] = set()
    expected: list[bytes] = []
    for block in captured_blocks(LDPC):
        lost = set(rng.sample(range(28), rng.randint(1, 10))) if block.repair else set()
        rebuilt = determined(18, 10, lost)
        expected += [rtp for e, rtp in enumerate(block.source) if e not in lost or e in rebuilt]
        removed |= {(block.sbn, e) for e in lost}
    reader = FecReader(LDPC)
    out = _feed_all(reader, [d for d in captured_datagrams(LDPC) if _esi(LDPC, d) not in removed])
    # Two audio periods later the last whole block is decoded too (the capture ends with
    # a few packets of the next one).
    out += reader.poll() + reader.poll()
    assert sorted(out) == sorted(expected)
    assert len(out) == len(set(out))
    assert 0 < reader.stats.recovered < len(expected)


def test_rebuilt_packet_comes_with_the_first_symbol_that_makes_it_possible() -> None:
    packets, datagrams = _stream(RS8M, 18)
    reader = FecReader(RS8M)
    lost = {2, 9}  # two source packets lost: the 2nd repair packet brings both back
    for i in range(18):
        if i not in lost:
            assert _feed(reader, datagrams[i]) == [packets[i]]
    assert _feed(reader, datagrams[18]) == []
    assert _feed(reader, datagrams[19]) == [packets[2], packets[9]]
    assert _feed(reader, datagrams[20]) == []
    assert reader.stats.recovered == 2
    assert reader.held_blocks == 1


def _only_lost(datagrams: list[Datagram], lost: set[int]) -> list[Datagram]:
    return [d for i, d in enumerate(datagrams) if i not in lost]


def test_rs8m_reordering_duplicates_and_repair_before_source() -> None:
    packets, datagrams = _stream(RS8M, 18 * 30, first_sbn=0xFFF0, seed=1)  # wraps SBN
    rng = random.Random(2)
    # One lost source packet per block, repair-first order inside each block, heavy local
    # reordering across blocks and duplicates of one datagram in five.
    per_block = [datagrams[i : i + 28] for i in range(0, len(datagrams), 28)]
    mixed: list[Datagram] = []
    for block in per_block:
        block = block[18:] + block[:18]
        del block[10 + rng.randrange(18)]
        mixed += block
    mixed = [copy for d in mixed for copy in ([d, d] if rng.random() < 0.2 else [d])]
    shuffled = sorted(range(len(mixed)), key=lambda i: i + rng.uniform(0, 40))
    reader = FecReader(RS8M)
    out = _feed_all(reader, [mixed[i] for i in shuffled])
    assert sorted(out) == sorted(packets)
    # Repair first: blocks are rebuilt (once each) before most of their source packets
    # arrive; only the 30 deleted packets never show up.
    assert reader.stats.recovered - reader.stats.overtaken == 30
    assert reader.stats.overtaken > 100
    assert reader.stats.decodes == 30
    assert reader.stats.duplicates > 50
    assert reader.stats.unrepaired_blocks == 0
    assert reader.stats.resets == reader.stats.misaligned == 0


def test_ldpc_decodes_each_block_once_when_the_next_one_starts() -> None:
    packets, datagrams = _stream(LDPC, 18 * 30, first_sbn=0xFFF0, seed=1)
    rng = random.Random(2)
    lost = {28 * b + rng.randrange(18) for b in range(30)}
    # Local reordering inside each block, duplicates of one datagram in five.
    kept = _only_lost(datagrams, lost)
    kept = [copy for d in kept for copy in ([d, d] if rng.random() < 0.2 else [d])]
    shuffled = sorted(range(len(kept)), key=lambda i: i + rng.uniform(0, 8))
    reader = FecReader(LDPC)
    out = _feed_all(reader, [kept[i] for i in shuffled])
    assert len(out) == len(set(out))
    assert reader.stats.decodes == 29
    assert reader.stats.recovered == 29
    # Every block is decoded when the next one starts, so the last one never is.
    never = {packets[18 * 29 + e] for e in range(18) if 28 * 29 + e in lost}
    assert set(out) == set(packets) - never


@pytest.mark.parametrize("scheme", list(FecScheme))
def test_random_losses_within_the_limit_over_a_wrap(scheme: FecScheme) -> None:
    packets, datagrams = _stream(scheme, 18 * 40, first_sbn=0xFFEC, seed=3)
    rng = random.Random(4)
    lost: set[int] = set()
    for start in range(0, len(datagrams), 28):
        n_lost = rng.randint(0, 10) if scheme is RS8M else rng.randint(0, 2)
        lost.update(start + i for i in rng.sample(range(28), n_lost))
    reader = FecReader(scheme)
    out = _feed_all(reader, _only_lost(datagrams, lost))
    if scheme is RS8M:
        assert sorted(out) == sorted(packets)
    else:
        # LDPC is not MDS; compare against what each block's symbols determine. A block
        # is decoded when the next one starts: the last one never is.
        expected = set()
        for b in range(40):
            block_lost = {i - 28 * b for i in lost if 28 * b <= i < 28 * (b + 1)}
            rebuilt = determined(18, 10, block_lost) if b < 39 else set()
            expected |= {
                packets[18 * b + e] for e in range(18) if e not in block_lost or e in rebuilt
            }
        assert set(out) == expected
        assert len(out) == len(expected)


def test_beyond_the_limit_the_block_is_counted_unrepaired() -> None:
    packets, datagrams = _stream(RS8M, 18 * 5, seed=5)
    lost = set(range(11))  # 11 source packets of the first block, one more than R
    reader = FecReader(RS8M, window_blocks=2)
    out = _feed_all(reader, _only_lost(datagrams, lost))
    assert sorted(out) == sorted(packets[11:])
    assert reader.stats.unrepaired_blocks == 1
    assert reader.stats.lost == 11
    assert reader.stats.recovered == 0
    assert reader.held_blocks == 2


def test_flush_counts_incomplete_blocks() -> None:
    _, datagrams = _stream(LDPC, 18 * 2)
    reader = FecReader(LDPC)
    # Block 1 loses source ESIs 0 and 1 and all its repair packets.
    _feed_all(reader, datagrams[:28] + datagrams[30:46])
    reader.flush()
    assert reader.held_blocks == 0
    assert reader.stats.unrepaired_blocks == 1
    assert reader.stats.lost == 2


def test_window_bounds_memory_and_late_packets_are_played_not_used() -> None:
    packets, datagrams = _stream(RS8M, 18 * 100, seed=6)
    reader = FecReader(RS8M, window_blocks=4)
    late = datagrams[:28]
    _feed_all(reader, datagrams[28:])
    assert reader.held_blocks <= 4
    # Source packets are the caller's to play whatever FEC makes of them; repair ones
    # for a block behind the window are dropped.
    assert _feed_all(reader, late) == packets[:18]
    assert reader.stats.late == 28
    assert reader.held_blocks <= 4


def test_renumbered_blocks_are_taken_up_only_after_two_blocks_in_a_row() -> None:
    scheme = RS8M
    packets_a, stream_a = _stream(scheme, 18 * 2 + 5, first_sbn=1000, seed=7)
    reader = FecReader(scheme)
    out = _feed_all(reader, stream_a)
    assert out == packets_a
    # A sender that restarts its block numbering (SBN + 103) while its RTP stream goes
    # on: one stray packet is ignored by FEC (still played), 2 x K in a row start over.
    writer = FecWriter(scheme, first_sbn=1000 + 2 + 103)
    rest = [
        bytes([0x80, 10]) + (41 + i).to_bytes(2, "big") + random.Random(i).randbytes(60)
        for i in range(18 * 3)
    ]
    renumbered = [writer.write(rtp) for rtp in rest]
    assert reader.feed_source(renumbered[0].source) == [rest[0]]
    assert reader.stats.misaligned == 1
    assert reader.stats.resets == 0
    for i in range(1, 36):
        assert reader.feed_source(renumbered[i].source) == [rest[i]]
    assert reader.stats.resets == 1
    assert reader.stats.misaligned == 36
    assert reader.newest_block == 1000 + 2 + 103 + 1
    # From there FEC works on the new numbering: lose one, rebuild it.
    assert reader.feed_source(renumbered[37].source) == [rest[37]]
    for i in range(38, 54):
        assert reader.feed_source(renumbered[i].source) == [rest[i]]
    assert _feed_all(reader, [(True, d) for d in renumbered[53].repair[:1]]) == [rest[36]]
    assert reader.newest_block == 1000 + 2 + 103 + 2
    assert reader.stats.unrepaired_blocks == 1  # a's last block, cut short


@pytest.mark.parametrize("scheme", list(FecScheme))
def test_inconsistent_geometry_is_dropped_and_counted(scheme: FecScheme) -> None:
    reader = FecReader(scheme)
    rtp = bytes(30)
    n = 28
    assert reader.feed_source(build_source_datagram(scheme, rtp, SourcePayloadId(5, 0, 18))) == [
        rtp
    ]
    assert reader.geometry == (18, 255 if scheme is RS8M else 0, 30)
    # Other K, other length (source packets are still played), other N (LDPC): not used.
    other_k = build_source_datagram(scheme, rtp, SourcePayloadId(5, 1, 17))
    assert reader.feed_source(other_k) == [rtp]
    longer = build_source_datagram(scheme, rtp + b"x", SourcePayloadId(5, 2, 18))
    assert reader.feed_source(longer) == [rtp + b"x"]
    assert (
        reader.feed_repair(build_repair_datagram(scheme, RepairPayloadId(5, 18, 18, n), rtp)) == []
    )
    if scheme is LDPC:
        assert reader.geometry == (18, n, 30)
        other_n = build_repair_datagram(scheme, RepairPayloadId(5, 19, 18, n + 1), rtp)
        assert reader.feed_repair(other_n) == []
    assert reader.stats.inconsistent == (3 if scheme is LDPC else 2)
    assert reader.stats.source_received == 1
    assert reader.stats.repair_received == 1


def test_malformed_and_unusable_datagrams_are_counted() -> None:
    reader = FecReader(LDPC, max_block=100)
    assert reader.feed_source(b"\x00" * 5) == []
    assert reader.feed_repair(b"\x00" * 8) == []
    # K above the reader's bound: the packet is played, FEC never starts.
    big_k = build_source_datagram(LDPC, bytes(12), SourcePayloadId(1, 0, 101))
    assert reader.feed_source(big_k) == [bytes(12)]
    assert reader.geometry is None
    assert reader.feed_source(build_source_datagram(LDPC, bytes(12), SourcePayloadId(1, 0, 18)))
    # R = 5 < N1: OpenFEC refuses it, so do we.
    r5 = build_repair_datagram(LDPC, RepairPayloadId(1, 18, 18, 23), bytes(12))
    assert reader.feed_repair(r5) == []
    # N above the reader's bound.
    n101 = build_repair_datagram(LDPC, RepairPayloadId(1, 18, 18, 101), bytes(12))
    assert reader.feed_repair(n101) == []
    assert reader.stats.malformed == 5
    assert reader.geometry == (18, 0, 12)
    assert reader.held_blocks == 1


def test_duplicates_and_originals_after_their_rebuild_are_not_returned_twice() -> None:
    packets, datagrams = _stream(RS8M, 18)
    reader = FecReader(RS8M)
    late_original = datagrams[3]
    out = _feed_all(reader, datagrams[:3] + datagrams[4:])
    assert sorted(out) == sorted(packets)
    assert _feed(reader, late_original) == []
    assert _feed(reader, late_original) == []
    assert _feed(reader, datagrams[0]) == []
    assert _feed(reader, datagrams[20]) == []
    assert reader.stats.overtaken == 1
    assert reader.stats.duplicates == 2
    assert reader.stats.decodes == 1
    assert reader.stats.stragglers == 10  # repair symbols after the decode: not kept


def test_reader_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="window_blocks"):
        FecReader(RS8M, window_blocks=0)
