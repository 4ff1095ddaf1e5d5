import pytest
from hypothesis import given
from hypothesis import strategies as st

from rocd.net.roc import (
    NTP32_UNAVAILABLE,
    NTP64_UNAVAILABLE,
    metric_to_ntp32,
    metric_to_ntp64,
    ns_to_ntp32,
    ns_to_ntp64,
    ntp32_diff,
    ntp32_to_metric,
    ntp32_to_ns,
    ntp64_to_metric,
    ntp64_to_ns,
    ntp64_to_ntp32,
    ntp64_to_unix_ns,
    unix_ns_to_ntp64,
)

S = 1_000_000_000
UNIX_EPOCH_NTP = 2_208_988_800
# The first and last Unix seconds of the range the era rule covers (1968-01-20 .. 2104-02-26).
ERA_FIRST_S = (1 << 31) - UNIX_EPOCH_NTP
ERA_END_S = (1 << 32) + (1 << 31) - UNIX_EPOCH_NTP


def test_known_values() -> None:
    assert unix_ns_to_ntp64(0) == UNIX_EPOCH_NTP << 32
    assert unix_ns_to_ntp64(S // 2) == (UNIX_EPOCH_NTP << 32) | 0x8000_0000
    assert ntp64_to_unix_ns(UNIX_EPOCH_NTP << 32) == 0
    # 2025-11-26T05:33:13.209742Z, an SR time of the captures.
    assert ntp64_to_unix_ns(0xEEB09D3935B19CC5) == 1_795_563_193_209_741_400
    assert ntp64_to_ntp32(0xEEB09D3935B19CC5) == 0x9D3935B1  # the LSR quoting it


def test_era_1_starts_in_2036() -> None:
    era_start_s = (1 << 32) - UNIX_EPOCH_NTP  # 2036-02-07T06:28:16Z
    assert era_start_s == 2_085_978_496
    assert unix_ns_to_ntp64(era_start_s * S) == 0
    assert ntp64_to_unix_ns(0) == era_start_s * S
    assert ntp64_to_unix_ns(1 << 32) == (era_start_s + 1) * S
    assert unix_ns_to_ntp64((era_start_s - 1) * S) == 0xFFFF_FFFF << 32
    assert ntp64_to_unix_ns(0xFFFF_FFFF << 32) == (era_start_s - 1) * S
    # The top bit picks the era: 0x8000_0000 s is 1968, 0x7FFF_FFFF s is 2104.
    assert ntp64_to_unix_ns(0x8000_0000 << 32) == ERA_FIRST_S * S
    assert ntp64_to_unix_ns(0x7FFF_FFFF << 32) == (ERA_END_S - 1) * S


@given(st.integers(ERA_FIRST_S * S, (ERA_END_S - 1) * S))
def test_unix_round_trip_is_exact(unix_ns: int) -> None:
    ntp = unix_ns_to_ntp64(unix_ns)
    assert 0 <= ntp <= 0xFFFF_FFFF_FFFF_FFFF
    assert ntp64_to_unix_ns(ntp) == unix_ns


@given(st.integers(0, 0xFFFF_FFFF_FFFF_FFFF))
def test_ntp64_round_trip_within_half_a_nanosecond(ntp: int) -> None:
    # 1 ns is 4.29 NTP64 units: half a ns of rounding, plus half a unit, is 2 units at most.
    back = unix_ns_to_ntp64(ntp64_to_unix_ns(ntp))
    assert min((back - ntp) % (1 << 64), (ntp - back) % (1 << 64)) <= 2


def test_durations() -> None:
    assert ns_to_ntp32(S) == 0x10000
    assert ns_to_ntp32(S // 2) == 0x8000
    assert ntp32_to_ns(0x30F9) == 191_299_438  # Roc's NIQ latency example, ~191 ms
    assert ns_to_ntp64(S) == 1 << 32
    assert ntp64_to_ns(1 << 31) == S // 2
    assert ntp64_to_ns(0x334295AF) == 200_234_752  # the e2e latency of §6.2, ~200 ms
    with pytest.raises(ValueError, match=">= 0"):
        ns_to_ntp32(-1)
    with pytest.raises(ValueError, match=">= 0"):
        ns_to_ntp64(-1)
    with pytest.raises(ValueError, match="does not fit"):
        ns_to_ntp32(65536 * S)
    with pytest.raises(ValueError, match="does not fit"):
        ns_to_ntp64((1 << 32) * S)


@given(st.integers(0, 65535 * S))
def test_ntp32_duration_precision(ns: int) -> None:
    # One NTP32 unit is 15.26 us; nearest rounding errs by at most half of it.
    assert abs(ntp32_to_ns(ns_to_ntp32(ns)) - ns) <= 7_630


@given(st.integers(0, ((1 << 32) - 1) * S))
def test_ntp64_duration_round_trip_is_exact(ns: int) -> None:
    assert ntp64_to_ns(ns_to_ntp64(ns)) == ns


def test_metrics_mark_unavailable_and_clamp() -> None:
    assert metric_to_ntp32(None) == NTP32_UNAVAILABLE == 0xFFFF_FFFF
    assert metric_to_ntp64(None) == NTP64_UNAVAILABLE == 0xFFFF_FFFF_FFFF_FFFF
    assert ntp32_to_metric(NTP32_UNAVAILABLE) is None
    assert ntp64_to_metric(NTP64_UNAVAILABLE) is None
    assert metric_to_ntp32(10**15) == 0xFFFF_FFFE
    assert metric_to_ntp64(10**30) == 0xFFFF_FFFF_FFFF_FFFE
    assert metric_to_ntp32(-5) == 0
    assert metric_to_ntp64(-5) == 0
    assert metric_to_ntp32(191_299_438) == 0x30F9
    assert ntp32_to_metric(0x30F9) == 191_299_438
    assert metric_to_ntp64(S) == 1 << 32
    assert ntp64_to_metric(1 << 32) == S


@given(st.none() | st.integers(-(10**12), 10**16))
def test_metric_never_produces_the_marker_for_a_value(ns: int | None) -> None:
    v32 = metric_to_ntp32(ns)
    v64 = metric_to_ntp64(ns)
    assert (v32 == NTP32_UNAVAILABLE) == (ns is None)
    assert (v64 == NTP64_UNAVAILABLE) == (ns is None)
    assert 0 <= v32 <= 0xFFFF_FFFF
    assert 0 <= v64 <= 0xFFFF_FFFF_FFFF_FFFF


def test_rtt_from_lsr_and_dlsr() -> None:
    """RFC 3550 §6.4.1: RTT = arrival - LSR - DLSR in NTP32, across the 16-bit-second wrap."""
    lsr = 0xFFFF_F000
    dlsr = ns_to_ntp32(100_000_000)
    arrival = (lsr + dlsr + ns_to_ntp32(10_000_000)) & 0xFFFF_FFFF
    assert arrival < lsr
    assert ntp32_diff(ntp32_diff(arrival, lsr), dlsr) == ns_to_ntp32(10_000_000)
