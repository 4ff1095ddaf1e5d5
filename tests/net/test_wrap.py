import random

from hypothesis import given
from hypothesis import strategies as st

from rocd.net.roc import (
    SeqExtender,
    TimestampExtender,
    WrapExtender,
    seq_add,
    seq_diff,
    seq_le,
    seq_lt,
    ts_add,
    ts_diff,
    ts_le,
    ts_lt,
)
from tests.net.strategies import u16, u32


def test_seq_diff_across_the_wrap() -> None:
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(5, 5) == 0
    assert seq_diff(0x8000, 0) == -0x8000  # half the range apart counts as older
    assert seq_diff(0x7FFF, 0) == 0x7FFF
    assert seq_lt(65535, 0)
    assert not seq_lt(0, 65535)
    assert seq_le(3, 3)
    assert seq_add(65535, 2) == 1
    assert seq_add(0, -1) == 65535


def test_ts_diff_across_the_wrap() -> None:
    assert ts_diff(100, 0xFFFF_FFFF - 120) == 221
    assert ts_diff(0xFFFF_FFFF - 120, 100) == -221
    assert ts_diff(0x8000_0000, 0) == -0x8000_0000
    assert ts_lt(0xFFFF_FF00, 5)
    assert ts_le(7, 7)
    assert not ts_le(8, 7)
    assert ts_add(0xFFFF_FFFF, 221) == 220


@given(u16, st.integers(-0x8000, 0x7FFF))
def test_seq_add_and_diff_are_inverse(a: int, n: int) -> None:
    assert seq_diff(seq_add(a, n), a) == n
    if n != -0x8000:  # half the range apart: each counts as older than the other
        assert seq_lt(a, seq_add(a, n)) == (n > 0)


@given(u32, st.integers(-0x8000_0000, 0x7FFF_FFFF))
def test_ts_add_and_diff_are_inverse(a: int, n: int) -> None:
    assert ts_diff(ts_add(a, n), a) == n
    if n != -0x8000_0000:
        assert ts_le(a, ts_add(a, n)) == (n >= 0)


@given(u16, u16)
def test_seq_diff_is_antisymmetric_except_at_half_range(a: int, b: int) -> None:
    d = seq_diff(a, b)
    assert -0x8000 <= d <= 0x7FFF
    if d != -0x8000:
        assert seq_diff(b, a) == -d


def test_extender_counts_wraps() -> None:
    ext = SeqExtender()
    assert ext.highest is None
    values = [ext.extend(s) for s in (65534, 65535, 0, 1, 65535, 2)]
    assert values == [65534, 65535, 65536, 65537, 65535, 65538]
    assert ext.highest == 65538
    ext.reset()
    assert ext.extend(7) == 7


def test_extender_before_the_first_value_goes_negative() -> None:
    ext = SeqExtender()
    assert ext.extend(0) == 0
    assert ext.extend(65535) == -1
    assert ext.highest == 0


def test_timestamp_extender() -> None:
    ext = TimestampExtender()
    assert ext.extend(0xFFFF_FF00) == 0xFFFF_FF00
    assert ext.extend(0x100) == 0x1_0000_0100
    assert ext.unwrap(0xFFFF_FFF0) == 0xFFFF_FFF0
    assert ext.highest == 0x1_0000_0100


@given(
    start=st.integers(0, 10**12),
    steps=st.lists(st.integers(0, 300), min_size=1, max_size=300),
    rng=st.randoms(use_true_random=False),
)
def test_extender_recovers_a_reordered_stream(
    start: int, steps: list[int], rng: random.Random
) -> None:
    """Extended values equal the true counters when reordering stays within a window."""
    truth = []
    value = start
    for step in steps:
        value += step
        truth.append(value)
    # Reorder locally: swap neighbours (displacement far below half the range).
    order = list(truth)
    for i in range(0, len(order) - 1, 2):
        if rng.random() < 0.5:
            order[i], order[i + 1] = order[i + 1], order[i]
    ext = SeqExtender()
    base = order[0] - (order[0] & 0xFFFF)
    got = [ext.extend(v & 0xFFFF) + base for v in order]
    assert got == order
    assert ext.highest is not None
    assert ext.highest + base == max(truth)


@given(st.integers(1, 64), st.data())
def test_any_width_extender_is_monotonic_in_order(bits: int, data: st.DataObject) -> None:
    ext = WrapExtender(bits)
    half = 1 << (bits - 1)
    steps = data.draw(st.lists(st.integers(0, max(half - 1, 0)), max_size=50))
    value = data.draw(st.integers(0, (1 << bits) - 1))
    expected = [value]
    got = [ext.extend(value)]
    for step in steps:
        value += step
        expected.append(value)
        got.append(ext.extend(value))
    assert got == expected
