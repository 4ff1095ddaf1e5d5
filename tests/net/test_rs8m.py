"""RS8M: the zfec-backed codec against a plain-Python oracle and Roc's captured packets."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rocd.net.roc import FecDecodeError, FecScheme, Rs8mCodec
from tests.net import rs8m_reference
from tests.net.fec_blocks import captured_blocks, random_block

CODEC = Rs8mCodec()


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 12),
    r=st.integers(0, 8),
    length=st.integers(1, 24),
    seed=st.integers(0, 2**32),
)
def test_encode_matches_reference(k: int, r: int, length: int, seed: int) -> None:
    source = random_block(random.Random(seed), k, length)
    assert CODEC.encode(source, r) == rs8m_reference.encode(source, r)


def test_reference_closed_form_agrees_with_gauss_jordan() -> None:
    rng = random.Random(7)
    for k, r in [(1, 1), (2, 3), (18, 10), (5, 30)]:
        source = random_block(rng, k, 5)
        assert rs8m_reference.encode_lagrange(source, r) == rs8m_reference.encode(source, r)


@pytest.mark.parametrize(("k", "r"), [(1, 254), (5, 250), (128, 127), (200, 55), (254, 1)])
def test_largest_blocks_match_reference(k: int, r: int) -> None:
    source = random_block(random.Random(k), k, 2)
    repair = CODEC.encode(source, r)
    assert repair == rs8m_reference.encode_lagrange(source, r)
    # The last K symbols of the block (the first R sources lost) give it all back.
    symbols = dict(enumerate(source + repair))
    assert CODEC.decode(k, 255, {e: symbols[e] for e in range(r, k + r)}) == source


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 20),
    r=st.integers(1, 12),
    length=st.integers(1, 40),
    seed=st.integers(0, 2**32),
)
def test_any_k_symbols_decode(k: int, r: int, length: int, seed: int) -> None:
    rng = random.Random(seed)
    source = random_block(rng, k, length)
    everything = dict(enumerate(source + CODEC.encode(source, r)))
    kept = rng.sample(sorted(everything), rng.randint(k, k + r))
    symbols = {e: everything[e] for e in kept}
    # Roc's receiver says N = 255 for RS8M: rows do not depend on N.
    assert CODEC.decode(k, 255, symbols) == source
    assert CODEC.decode(k, k + r, symbols) == source
    missing = {e for e in range(k) if e not in symbols}
    assert CODEC.recover(k, 255, symbols) == {e: source[e] for e in missing}


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 20), r=st.integers(1, 12), seed=st.integers(0, 2**32))
def test_fewer_than_k_symbols_fail_cleanly(k: int, r: int, seed: int) -> None:
    rng = random.Random(seed)
    source = random_block(rng, k, 8)
    everything = dict(enumerate(source + CODEC.encode(source, r)))
    kept = rng.sample(sorted(everything), rng.randint(0, k - 1))
    symbols = {e: everything[e] for e in kept}
    with pytest.raises(FecDecodeError):
        CODEC.decode(k, 255, symbols)
    assert CODEC.recover(k, 255, symbols) == {}


def test_inconsistent_input_raises_fec_decode_error() -> None:
    with pytest.raises(FecDecodeError, match="lengths"):
        CODEC.decode(2, 255, {0: b"ab", 2: b"abc"})
    with pytest.raises(FecDecodeError, match="ESI"):
        CODEC.decode(2, 4, {0: b"ab", 4: b"cd"})
    with pytest.raises(FecDecodeError, match="K=0"):
        CODEC.recover(0, 255, {})
    with pytest.raises(FecDecodeError, match="N=256"):
        CODEC.recover(2, 256, {0: b"a"})


def test_encode_rejects_unusable_blocks() -> None:
    with pytest.raises(ValueError, match="255"):
        CODEC.encode([b"x"] * 200, 56)
    with pytest.raises(ValueError, match="one length"):
        CODEC.encode([b"x", b"yy"], 2)
    with pytest.raises(ValueError, match="K="):
        CODEC.check_block(0, 3)
    assert CODEC.encode([b"x"] * 3, 0) == []


def test_captured_repair_symbols_are_rebuilt_and_decode() -> None:
    blocks = captured_blocks(FecScheme.RS8M)
    full = [b for b in blocks if b.repair]
    assert len(full) == 22
    rng = random.Random(1)
    for block in full:
        assert CODEC.encode(block.source, 10) == block.repair
        lost = set(rng.sample(range(28), 10))
        symbols = {e: s for e, s in enumerate(block.source + block.repair) if e not in lost}
        assert CODEC.decode(18, 255, symbols) == block.source
