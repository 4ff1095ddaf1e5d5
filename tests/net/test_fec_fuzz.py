"""Fuzzing the FEC layer with untrusted bytes: parsers raise MalformedPacket only, codecs
FecDecodeError only, and the reader never raises at all (it counts and drops)."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rocd.net.roc import (
    FecDecodeError,
    FecReader,
    FecScheme,
    FecWriter,
    LdpcStaircaseCodec,
    MalformedPacket,
    Rs8mCodec,
    build_repair_datagram,
    build_source_datagram,
    parse_repair_datagram,
    parse_source_datagram,
)
from rocd.net.roc._fec_reader import AHEAD_BLOCKS

pytestmark = pytest.mark.fuzz

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
schemes = st.sampled_from(list(FecScheme))


def _valid_stream(scheme: FecScheme, seed: int) -> list[tuple[bool, bytes]]:
    rng = random.Random(seed)
    writer = FecWriter(scheme, n_source=4, n_repair=7, first_sbn=rng.randrange(65536))
    out: list[tuple[bool, bytes]] = []
    for _ in range(12):
        written = writer.write(rng.randbytes(12))
        out.append((False, written.source))
        out.extend((True, d) for d in written.repair)
    return out


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, cut or extend a valid datagram so it stays close to plausible."""
    b = bytearray(data)
    choice = rng.randrange(4)
    if choice == 0 and b:
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif choice == 1:
        b = b[: rng.randrange(len(b) + 1)]
    elif choice == 2:
        b += rng.randbytes(rng.randrange(4))
    elif b:  # rewrite one payload ID byte
        end = rng.choice(
            [rng.randrange(min(8, len(b))), len(b) - 1 - rng.randrange(min(6, len(b)))]
        )
        b[end] = rng.randrange(256)
    return bytes(b)


@FUZZ
@given(scheme=schemes, data=st.binary(max_size=40))
def test_parsers_raise_only_malformed_packet(scheme: FecScheme, data: bytes) -> None:
    try:
        rtp, pid = parse_source_datagram(scheme, data)
    except MalformedPacket:
        pass
    else:
        assert rtp
        assert 0 <= pid.esi < pid.k <= scheme.max_block
        if scheme is FecScheme.LDPC_STAIRCASE or data[-6] == 0:
            assert build_source_datagram(scheme, rtp, pid) == data
    try:
        symbol, rpid = parse_repair_datagram(scheme, data)
    except MalformedPacket:
        pass
    else:
        assert symbol
        assert 0 < rpid.k <= rpid.esi < rpid.n <= scheme.max_block
        if scheme is FecScheme.LDPC_STAIRCASE:
            assert build_repair_datagram(scheme, rpid, symbol) == data


@FUZZ
@given(scheme=schemes, seed=st.integers(0, 2**32), n_events=st.integers(1, 120))
def test_reader_never_raises_on_mangled_streams(
    scheme: FecScheme, seed: int, n_events: int
) -> None:
    rng = random.Random(seed)
    valid = _valid_stream(scheme, seed)
    reader = FecReader(scheme, window_blocks=3, max_block=64)
    for _ in range(n_events):
        is_repair, data = rng.choice(valid)
        roll = rng.random()
        if roll < 0.3:
            data = _mutate(data, rng)
        elif roll < 0.4:
            data = rng.randbytes(rng.randrange(16))
        elif roll < 0.45:
            is_repair = not is_repair
        out = reader.feed_repair(data) if is_repair else reader.feed_source(data)
        assert all(isinstance(p, bytes) and p for p in out)
        assert reader.held_blocks <= 3 + AHEAD_BLOCKS


@FUZZ
@given(
    scheme=schemes,
    datagrams=st.lists(st.tuples(st.booleans(), st.binary(max_size=24)), max_size=30),
)
def test_reader_never_raises_on_arbitrary_datagrams(
    scheme: FecScheme, datagrams: list[tuple[bool, bytes]]
) -> None:
    reader = FecReader(scheme, window_blocks=4, max_block=200)
    for is_repair, data in datagrams:
        out = reader.feed_repair(data) if is_repair else reader.feed_source(data)
        assert all(isinstance(p, bytes) for p in out)
    reader.flush()
    assert reader.held_blocks == 0


@FUZZ
@given(
    k=st.integers(-2, 40),
    n=st.integers(-2, 300),
    symbols=st.dictionaries(st.integers(-3, 300), st.binary(max_size=6), max_size=40),
)
def test_codecs_raise_only_fec_decode_error(k: int, n: int, symbols: dict[int, bytes]) -> None:
    for codec in (Rs8mCodec(), LdpcStaircaseCodec()):
        try:
            recovered = codec.recover(k, n, symbols)
        except FecDecodeError:
            pass
        else:
            assert all(0 <= e < k and e not in symbols for e in recovered)
        try:
            decoded = codec.decode(k, n, symbols)
        except FecDecodeError:
            pass
        else:
            assert len(decoded) == k


@FUZZ
@given(seed=st.integers(0, 2**32), k=st.integers(1, 30), r=st.integers(7, 20))
def test_ldpc_decoder_is_consistent_on_corrupted_symbols(seed: int, k: int, r: int) -> None:
    # Wrong bytes in a symbol (undetected corruption) give wrong output, never a crash.
    rng = random.Random(seed)
    codec = LdpcStaircaseCodec()
    source = [rng.randbytes(9) for _ in range(k)]
    everything = dict(enumerate(source + codec.encode(source, r)))
    for e in rng.sample(sorted(everything), rng.randint(0, r)):
        del everything[e]
    for e in rng.sample(sorted(everything), min(2, len(everything))):
        everything[e] = rng.randbytes(9)
    recovered = codec.recover(k, k + r, everything)
    assert all(len(v) == 9 for v in recovered.values())
    assert all(0 <= e < k and e not in everything for e in recovered)
