"""Adaptive target latency: start, hold, increase fast, decrease slowly, bounds."""

from __future__ import annotations

import itertools

import pytest

from rocd.net.roc._adaptive_latency import AdaptiveLatency, AdaptiveLatencyConfig

MS = 1_000_000
S = 1_000_000_000


def test_defaults_follow_the_start_latency() -> None:
    c = AdaptiveLatencyConfig()
    assert c.bounds == (15 * MS, 1000 * MS)
    assert AdaptiveLatencyConfig(start_ns=50 * MS).bounds == (10 * MS, 250 * MS)
    with pytest.raises(ValueError, match="min"):
        AdaptiveLatencyConfig(start_ns=10 * MS, min_ns=20 * MS)


def test_nothing_moves_during_the_first_seconds() -> None:
    a = AdaptiveLatency(AdaptiveLatencyConfig(), now_ns=0)
    assert a.update(4 * S, mean_jitter_ns=0, peak_jitter_ns=500 * MS) is None
    assert a.target_ns == 200 * MS


def test_a_jittery_link_raises_the_target_at_once_then_holds() -> None:
    a = AdaptiveLatency(AdaptiveLatencyConfig(), now_ns=0)
    new = a.update(6 * S, mean_jitter_ns=20 * MS, peak_jitter_ns=240 * MS)
    # estimate = max(240 x 1.15, 20 x 3) = 276 ms; target = 276 x 1.35
    assert new == pytest.approx(276 * MS * 1.35, rel=1e-6)
    assert a.update(10 * S, mean_jitter_ns=20 * MS, peak_jitter_ns=400 * MS) is None  # cooldown
    raised = a.update(22 * S, mean_jitter_ns=20 * MS, peak_jitter_ns=400 * MS)
    assert raised == pytest.approx(400 * MS * 1.15 * 1.35, rel=1e-6)


def test_increase_is_capped_at_the_maximum() -> None:
    a = AdaptiveLatency(AdaptiveLatencyConfig(), now_ns=0)
    assert a.update(6 * S, mean_jitter_ns=0, peak_jitter_ns=5 * S) == 1000 * MS


def test_a_quiet_link_lowers_the_target_step_by_step_down_to_the_minimum() -> None:
    a = AdaptiveLatency(AdaptiveLatencyConfig(), now_ns=0)
    t = 6 * S
    targets = []
    for _ in range(30):
        new = a.update(t, mean_jitter_ns=0.5 * MS, peak_jitter_ns=2 * MS, fec_block_ns=0)
        if new is not None:
            targets.append(new)
        t += 6 * S  # past each cooldown
    assert targets[0] == pytest.approx(200 * MS * 2.7 / 3.4, rel=1e-6)
    assert all(b < a_ for a_, b in itertools.pairwise(targets))
    assert a.target_ns >= 15 * MS
    assert a.target_ns < 15 * MS * 3.4 / 2.7  # one more step would cross the minimum


def test_the_fec_block_keeps_the_target_long_enough_for_repair() -> None:
    a = AdaptiveLatency(AdaptiveLatencyConfig(start_ns=50 * MS), now_ns=0)
    t = 6 * S
    for _ in range(20):
        a.update(t, mean_jitter_ns=0, peak_jitter_ns=0, fec_block_ns=90 * MS)
        t += 16 * S
    assert a.target_ns >= 90 * MS


def test_no_decrease_while_the_drift_estimate_is_unsettled() -> None:
    a = AdaptiveLatency(AdaptiveLatencyConfig(), now_ns=0)
    assert a.update(6 * S, mean_jitter_ns=0, peak_jitter_ns=MS, stable=False) is None
    assert a.update(7 * S, mean_jitter_ns=0, peak_jitter_ns=MS, stable=True) is not None
