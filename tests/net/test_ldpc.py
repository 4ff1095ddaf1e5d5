"""LDPC-Staircase: Roc's captured repair packets, the matrix shape, and recovery that
succeeds exactly when the received symbols determine the lost ones (a rank oracle)."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rocd.net.roc import LDPC_N1, LDPC_SEED, FecDecodeError, FecScheme, LdpcStaircaseCodec
from rocd.net.roc._ldpc import _matrix, _Prng
from tests.net.fec_blocks import captured_blocks, random_block
from tests.net.ldpc_oracle import dense_h, determined

CODEC = LdpcStaircaseCodec()
NUMPY = LdpcStaircaseCodec(native=False)
DECODERS = [LdpcStaircaseCodec(native=True), NUMPY]


def test_prng_is_the_minimal_standard_generator() -> None:
    # Park & Miller's published check: from seed 1, the 10000th state is 1043618065.
    prng = _Prng(1)
    for _ in range(10000):
        prng.rand(1)
    assert prng._state == 1043618065
    draws = [_Prng(LDPC_SEED).rand(10) for _ in range(3)]
    assert all(0 <= d < 10 for d in draws)


def test_captured_repair_symbols_are_rebuilt() -> None:
    blocks = [b for b in captured_blocks(FecScheme.LDPC_STAIRCASE) if b.repair]
    assert len(blocks) == 22
    for block in blocks:
        assert CODEC.encode(block.source, 10) == block.repair


@pytest.mark.parametrize(("k", "r"), [(18, 10), (1, 7), (2, 9), (50, 8), (100, 50)])
def test_matrix_shape(k: int, r: int) -> None:
    h = dense_h(k, r)
    src, rep = h[:, :k], h[:, k:]
    assert (src.sum(axis=0) >= min(LDPC_N1, r)).all()  # N1 ones per source column (or more)
    assert (src.sum(axis=1) >= min(2, k)).all()  # every row holds two sources (K > 1)
    staircase = np.eye(r, dtype=np.uint8) + np.eye(r, k=-1, dtype=np.uint8)
    assert (rep == staircase).all()


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 40),
    r=st.integers(7, 16),
    length=st.integers(1, 30),
    seed=st.integers(0, 2**32),
)
def test_every_parity_equation_holds(k: int, r: int, length: int, seed: int) -> None:
    source = random_block(random.Random(seed), k, length)
    words = [np.frombuffer(s, dtype=np.uint8) for s in source + CODEC.encode(source, r)]
    for mask in _matrix(k, r, LDPC_N1, LDPC_SEED).row_masks:
        acc = np.zeros(length, dtype=np.uint8)
        for e in range(k + r):
            if mask >> e & 1:
                acc ^= words[e]
        assert not acc.any()


def test_the_compiled_decoder_is_built_and_used() -> None:
    # scripts/setup.sh builds it (gcc is in its package list).
    assert CODEC.native


@pytest.mark.parametrize("codec", DECODERS, ids=["native", "numpy"])
@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(1, 30),
    r=st.integers(7, 14),
    length=st.integers(1, 20),
    seed=st.integers(0, 2**32),
    loss=st.floats(0.0, 0.6),
)
def test_recovery_matches_rank_oracle(
    codec: LdpcStaircaseCodec, k: int, r: int, length: int, seed: int, loss: float
) -> None:
    rng = random.Random(seed)
    source = random_block(rng, k, length)
    everything = dict(enumerate(source + codec.encode(source, r)))
    lost = {e for e in everything if rng.random() < loss}
    symbols = {e: s for e, s in everything.items() if e not in lost}
    expected = determined(k, r, lost)
    assert codec.recover(k, k + r, symbols) == {e: source[e] for e in expected}
    if expected == {e for e in lost if e < k}:
        assert codec.decode(k, k + r, symbols) == source
    else:
        with pytest.raises(FecDecodeError, match="undetermined"):
            codec.decode(k, k + r, symbols)


@pytest.mark.parametrize("loss", [0.05, 0.25, 0.4])
def test_large_blocks_both_decoders_agree_up_to_the_numpy_cap(loss: float) -> None:
    rng = random.Random(int(loss * 100))
    k, r = 340, 172
    source = random_block(rng, k, 24)
    everything = dict(enumerate(source + CODEC.encode(source, r)))
    lost = set(rng.sample(range(k + r), round(loss * (k + r))))
    symbols = {e: s for e, s in everything.items() if e not in lost}
    native = DECODERS[0].recover(k, k + r, symbols)
    numpy = NUMPY.recover(k, k + r, symbols)
    assert all(native[e] == source[e] for e in native)
    # numpy rebuilds a subset (all of it while elimination stays under its cap).
    assert numpy.items() <= native.items()
    if loss == 0.05:
        assert numpy == native
        assert len(native) == sum(e < k for e in lost)


@pytest.mark.parametrize("codec", DECODERS, ids=["native", "numpy"])
def test_default_block_random_losses(codec: LdpcStaircaseCodec) -> None:
    rng = random.Random(3)
    decoded = 0
    for _ in range(300):
        source = random_block(rng, 18, 33)
        everything = dict(enumerate(source + codec.encode(source, 10)))
        lost = set(rng.sample(range(28), rng.randint(1, 10)))
        symbols = {e: s for e, s in everything.items() if e not in lost}
        expected = determined(18, 10, lost)
        assert codec.recover(18, 28, symbols) == {e: source[e] for e in expected}
        decoded += expected == {e for e in lost if e < 18}
    assert 150 < decoded < 300  # both outcomes are exercised


@pytest.mark.parametrize("codec", DECODERS, ids=["native", "numpy"])
def test_large_block_with_ten_percent_loss(codec: LdpcStaircaseCodec) -> None:
    rng = random.Random(5)
    source = random_block(rng, 1000, 16)
    everything = dict(enumerate(source + codec.encode(source, 500)))
    lost = set(rng.sample(range(1500), 150))
    symbols = {e: s for e, s in everything.items() if e not in lost}
    assert codec.decode(1000, 1500, symbols) == source


def test_parameters_openfec_refuses() -> None:
    with pytest.raises(ValueError, match="R >= N1 = 7"):
        CODEC.encode([b"ab"] * 10, 6)
    with pytest.raises(ValueError, match="R >= N1 = 7"):
        CODEC.check_block(10, 5)
    with pytest.raises(FecDecodeError, match="N1=7"):
        CODEC.recover(10, 16, {0: b"a"})
    with pytest.raises(ValueError, match="seed"):
        LdpcStaircaseCodec(seed=0)
    with pytest.raises(ValueError, match="N1"):
        LdpcStaircaseCodec(n1=0)


def test_other_n1_and_seed_change_the_code() -> None:
    rng = random.Random(9)
    source = random_block(rng, 12, 8)
    other = LdpcStaircaseCodec(n1=3, seed=42)
    repair = other.encode(source, 4)  # R = 4 is fine with N1 = 3
    assert repair != CODEC.encode(source, 7)[:4]
    symbols = {e: s for e, s in enumerate(source + repair) if e != 5}
    assert other.decode(12, 16, symbols) == source


def test_inconsistent_input_raises_fec_decode_error() -> None:
    with pytest.raises(FecDecodeError, match="lengths"):
        CODEC.decode(18, 28, {0: b"ab", 20: b"abc"})
    with pytest.raises(FecDecodeError, match="ESI"):
        CODEC.decode(18, 28, {0: b"ab", 28: b"cd"})
    with pytest.raises(ValueError, match="one length"):
        CODEC.encode([b"ab", b"c"], 8)
