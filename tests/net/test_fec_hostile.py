"""The FEC reader's rules against forged packets, as properties: counts and state.

A valid stream of large LDPC blocks (K up to 400, N up to 1024; RS8M up to 255) with
random losses, and forged repair packets mixed in anywhere, some with the session's own
geometry.
Whatever the mix: the geometry stays the first block's, only the stream's source packets
move the window, a block is decoded at most once and only with the session's geometry,
and what is held stays within the window.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rocd.net.roc import (
    FecBudget,
    FecReader,
    FecScheme,
    FecWriter,
    LdpcStaircaseCodec,
    Rs8mCodec,
    RtpPacket,
)
from rocd.net.roc._fec_reader import AHEAD_BLOCKS, MAX_DECODE_WORK

LDPC = FecScheme.LDPC_STAIRCASE
RS8M = FecScheme.RS8M
SYMBOL = 16  # bytes of RTP payload per packet: small symbols keep large blocks cheap


class CountingCodec:
    """A codec that records every decode it is asked for."""

    def __init__(self, scheme: FecScheme) -> None:
        self.inner: LdpcStaircaseCodec | Rs8mCodec = (
            LdpcStaircaseCodec() if scheme is LDPC else Rs8mCodec()
        )
        self.calls: list[tuple[int, int, int]] = []  # (K, N, symbols given)

    def check_block(self, k: int, n_repair: int) -> None:
        self.inner.check_block(k, n_repair)

    def encode(self, source: Sequence[bytes], n_repair: int) -> list[bytes]:
        return self.inner.encode(source, n_repair)

    def decode(self, k: int, n: int, symbols: Mapping[int, bytes]) -> list[bytes]:
        return self.inner.decode(k, n, symbols)

    def recover(self, k: int, n: int, symbols: Mapping[int, bytes]) -> dict[int, bytes]:
        self.calls.append((k, n, len(symbols)))
        return self.inner.recover(k, n, symbols)


def _stream(scheme: FecScheme, k: int, r: int, blocks: int, first_sbn: int, seed: int):  # type: ignore[no-untyped-def]
    """(is_repair, datagram, sbn) of `blocks` blocks, and the RTP packets."""
    rng = random.Random(seed)
    writer = FecWriter(scheme, n_source=k, n_repair=r, first_sbn=first_sbn)
    out = []
    packets = []
    for i in range(k * blocks):
        rtp = RtpPacket(10, (7000 + i) & 0xFFFF, i * 4, 0xABC, rng.randbytes(SYMBOL)).serialize()
        packets.append(rtp)
        sbn = writer.sbn
        written = writer.write(rtp)
        out.append((False, written.source, sbn))
        out.extend((True, d, sbn) for d in written.repair)
    return out, packets


def _forged_repair(scheme: FecScheme, sbn: int, esi: int, k: int, n: int, length: int) -> bytes:
    if scheme is RS8M:
        head = bytes([0, sbn >> 8 & 0xFF, sbn & 0xFF, esi & 0xFF]) + k.to_bytes(2, "big")
    else:
        head = b"".join(x.to_bytes(2, "big") for x in (sbn, esi, k, n))
    return head + bytes(length)


forgery = st.tuples(
    st.integers(0, 10_000),  # where in the stream (index modulo its length)
    st.one_of(st.integers(-40, 40), st.integers(0, 0xFFFF)),  # SBN: near, or anywhere
    st.integers(0, 0xFFFF),  # ESI
    st.booleans(),  # the session's K (else random)
    st.booleans(),  # the session's N (else random)
    st.booleans(),  # the session's symbol length (else random)
    st.integers(1, 0xFFFF),  # the random K / N
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scheme=st.sampled_from([LDPC, RS8M]),
    k=st.integers(20, 400),
    r=st.integers(7, 200),
    first_sbn=st.integers(0, 0xFFFF),
    seed=st.integers(0, 2**32),
    loss=st.floats(0.0, 0.3),
    forged=st.lists(forgery, max_size=60),
)
def test_forged_packets_never_change_geometry_window_or_decode_count(
    scheme: FecScheme,
    k: int,
    r: int,
    first_sbn: int,
    seed: int,
    loss: float,
    forged: list[tuple[int, int, int, bool, bool, bool, int]],
) -> None:
    if scheme is RS8M:
        k, r = min(k, 200), min(r, 255 - min(k, 200))
    n = k + min(r, 1024 - k)
    r = n - k
    if r < 7:
        return
    blocks = 4
    stream, _packets = _stream(scheme, k, r, blocks, first_sbn, seed)
    rng = random.Random(seed)
    events = [(is_repair, d, sbn, True) for is_repair, d, sbn in stream if rng.random() >= loss]
    length = 12 + SYMBOL
    for at, dsbn, esi, same_k, same_n, same_len, other in sorted(forged):
        sbn = (first_sbn + dsbn) & 0xFFFF if -40 <= dsbn <= 40 else dsbn
        fk = k if same_k else other
        fn = (255 if scheme is RS8M else n) if same_n else other
        fl = length if same_len else 1 + other % 40
        events.insert(
            at % (len(events) + 1), (True, _forged_repair(scheme, sbn, esi, fk, fn, fl), sbn, False)
        )
    codec = CountingCodec(scheme)
    budget = FecBudget()
    reader = FecReader(scheme, codec=codec, budget=budget)
    opened: set[int] = set()
    true_n = 255 if scheme is RS8M else n
    learned_n = 0
    for is_repair, datagram, sbn, real in events:
        before = reader.newest_block
        budget.refill()
        if is_repair:
            reader.feed_repair(datagram)
            # A repair packet never moves the window.
            assert reader.newest_block == before
        else:
            reader.feed_source(datagram)
            opened.add(sbn)
        reader.poll()
        geometry = reader.geometry
        if geometry is not None:
            assert geometry[0] == k
            assert geometry[2] == length
            # N, once learned, never changes (the stream's own, unless a forged packet
            # of the session's K and length hit an open block before any real repair).
            if learned_n:
                assert geometry[1] == learned_n
            elif geometry[1]:
                learned_n = geometry[1]
                assert learned_n == true_n or not real
        assert reader.held_blocks <= reader.window_blocks + AHEAD_BLOCKS
        assert real or reader.newest_block == before
    geometry = reader.geometry
    assert geometry is not None
    stats = reader.stats
    # One decode at most per block the stream opened, each with the session's geometry and
    # within one decode's cost.
    assert stats.decodes == len(codec.calls) <= len(opened)
    for ck, cn, given_symbols in codec.calls:
        assert (ck, cn) == (k, geometry[1])
        assert given_symbols >= 1
        if scheme is RS8M:
            assert given_symbols >= k
    assert stats.resets == 0
    if scheme is LDPC:
        assert stats.too_costly == 0  # 2 x N x length is far below one decode's cap
    else:
        assert stats.too_costly <= blocks
        assert k * length <= MAX_DECODE_WORK


@settings(max_examples=15, deadline=None)
@given(k=st.integers(100, 600), seed=st.integers(0, 2**32))
def test_a_large_block_is_rebuilt_with_one_decode(k: int, seed: int) -> None:
    """A large LDPC block with a few losses: one decode when the next block starts, and
    every lost packet back (peeling alone covers a few losses)."""
    r = min(1024 - k, k // 2)
    stream, packets = _stream(LDPC, k, r, 2, 0xFFFF, seed)
    rng = random.Random(seed)
    lost = set(rng.sample(range(k), 3))
    reader = FecReader(LDPC)
    out = []
    index = 0
    for is_repair, datagram, _sbn in stream:
        if not is_repair:
            if index in lost:
                index += 1
                continue
            index += 1
            out += reader.feed_source(datagram)
        else:
            out += reader.feed_repair(datagram)
    assert reader.stats.decodes == 1  # block 1 lost nothing
    assert set(packets[:k]) <= set(out)
    assert reader.stats.recovered == 3
