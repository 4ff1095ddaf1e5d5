"""The latency tuner: Roc's bounds and profiles, and drift compensation in closed loop."""

import numpy as np
import pytest

from rocd.net.roc import (
    FirStage,
    FreqEstimatorConfig,
    LatencyConfig,
    LatencyProfile,
    LatencyStatus,
    LatencyTuner,
    default_latency_tolerance_ns,
    default_stale_tolerance_ns,
)
from tests.net.drift_sim import FRAME, SAMPLE_RATE, simulate

MS = 1_000_000
RESPONSIVE, GRADUAL, INTACT = (
    LatencyProfile.RESPONSIVE,
    LatencyProfile.GRADUAL,
    LatencyProfile.INTACT,
)
# When the loops have settled after a 1000 ppm offset present from the first packet
# (see the design notes of rocd/net/roc/_freq_estimator.py): ~40 s and ~2 min.
SETTLED_S = {RESPONSIVE: 120.0, GRADUAL: 300.0}


def test_default_tolerance_follows_roc() -> None:
    assert default_latency_tolerance_ns(200 * MS) == 200 * MS
    # T in nanoseconds, as the formula is specified (and documented in the function).
    assert default_latency_tolerance_ns(60 * MS) / MS == pytest.approx(63.88, abs=0.01)
    assert default_latency_tolerance_ns(10 * MS) / MS == pytest.approx(11.78, abs=0.01)
    assert default_latency_tolerance_ns(1 * MS) / MS == pytest.approx(1.365, abs=0.001)
    # A sender (m = 4) tolerates more; smaller targets get a larger share of themselves.
    assert default_latency_tolerance_ns(200 * MS, sender_side=True) == pytest.approx(
        200 * MS * np.log(1.6e9) / np.log(4e8), abs=1
    )
    shares = [default_latency_tolerance_ns(t * MS) / (t * MS) for t in (1, 10, 60, 200, 2000)]
    assert shares == sorted(shares, reverse=True)
    assert default_latency_tolerance_ns(0) == default_latency_tolerance_ns(MS)  # T >= 1 ms


def test_profile_defaults() -> None:
    def profile(**kwargs: object) -> LatencyProfile:
        return LatencyTuner(LatencyConfig(**kwargs), SAMPLE_RATE).profile  # type: ignore[arg-type]

    assert profile() is GRADUAL
    assert profile(target_ns=29 * MS) is RESPONSIVE
    assert profile(target_ns=30 * MS) is GRADUAL
    assert profile(target_ns=10 * MS, profile=GRADUAL) is GRADUAL
    assert profile(sender_side=True) is INTACT
    assert profile(sender_side=True, profile=RESPONSIVE) is RESPONSIVE


def test_bounds_and_stale_exception() -> None:
    config = LatencyConfig(target_ns=50 * MS, tolerance_ns=20 * MS, profile=RESPONSIVE)
    tuner = LatencyTuner(config, 48000)
    assert (tuner.target, tuner.min_latency, tuner.max_latency) == (2400, 1440, 3360)
    # A quarter of the tolerance would be 5 ms: Roc's 10 ms floor applies.
    assert tuner.stale_tolerance_ns == 10 * MS
    assert tuner.update(2400) is LatencyStatus.IN_BOUNDS
    assert tuner.update(1440) is LatencyStatus.IN_BOUNDS
    assert tuner.update(3360) is LatencyStatus.IN_BOUNDS
    assert tuner.update(3361) is LatencyStatus.OUT_OF_BOUNDS
    assert tuner.update(1439) is LatencyStatus.OUT_OF_BOUNDS
    assert tuner.update(1439, stalling_ns=10 * MS) is LatencyStatus.OUT_OF_BOUNDS
    # Below the minimum because nothing arrives: the watchdog's business, not a restart.
    assert tuner.update(-500, stalling_ns=10 * MS + 1) is LatencyStatus.STALLED
    assert tuner.update(3361, stalling_ns=10**9) is LatencyStatus.OUT_OF_BOUNDS


def test_default_bounds_at_200_ms() -> None:
    tuner = LatencyTuner(LatencyConfig(), 44100)
    assert (tuner.target_ns, tuner.tolerance_ns, tuner.stale_tolerance_ns) == (
        200 * MS,
        200 * MS,
        50 * MS,
    )
    assert (tuner.min_latency, tuner.max_latency) == (0, 17640)
    assert tuner.update(17641) is LatencyStatus.OUT_OF_BOUNDS
    assert tuner.update(-1) is LatencyStatus.OUT_OF_BOUNDS


def test_stale_tolerance_is_a_quarter_of_the_tolerance_but_at_least_10_ms() -> None:
    assert default_stale_tolerance_ns(200 * MS) == 50 * MS
    assert default_stale_tolerance_ns(40 * MS) == 10 * MS
    assert default_stale_tolerance_ns(12 * MS) == 10 * MS
    small = LatencyTuner(LatencyConfig(target_ns=10 * MS), 44100)
    assert small.stale_tolerance_ns == 10 * MS
    explicit = LatencyTuner(LatencyConfig(target_ns=10 * MS, stale_tolerance_ns=2 * MS), 44100)
    assert explicit.stale_tolerance_ns == 2 * MS


def test_intact_profile_neither_tunes_nor_checks_unless_told() -> None:
    tuner = LatencyTuner(LatencyConfig(profile=INTACT), 44100)
    assert tuner.estimator is None
    assert tuner.update(10**9) is LatencyStatus.IN_BOUNDS
    tuner.advance(44100)
    assert (tuner.coefficient, tuner.drift_ppm) == (1.0, 0.0)
    checked = LatencyTuner(LatencyConfig(profile=INTACT, tolerance_ns=10 * MS), 44100)
    assert checked.update(10**9) is LatencyStatus.OUT_OF_BOUNDS


def test_estimator_is_fed_once_per_scaling_interval_of_stream() -> None:
    # A pass-through estimator (one tap, no decimation): one controller update per input.
    passthrough = FreqEstimatorConfig(
        stages=(FirStage(decimation=1, taps=1, cutoff_hz=1.0),), kp=0.1, ki=0.0
    )
    tuner = LatencyTuner(LatencyConfig(profile=RESPONSIVE), 44100, estimator=passthrough)
    assert tuner.estimator is not None
    tuner.advance(441)  # no latency known yet: nothing to feed
    assert tuner.estimator.updates == 0
    tuner.update(8820)
    # Fed at once for the interval just reached, then once per 220.5 samples of stream.
    for _ in range(100):
        tuner.advance(441)  # 10 ms frames: two 5 ms intervals each
    assert tuner.estimator.updates == 1 + 200
    for _ in range(441):
        tuner.advance(1)  # 1-sample frames
    assert tuner.estimator.updates == 1 + 202
    assert tuner.stream_position == 100 * 441 + 441 + 441


def test_retarget_moves_bounds_and_setpoint() -> None:
    tuner = LatencyTuner(LatencyConfig(target_ns=200 * MS), 44100)
    tuner.retarget(100 * MS)
    assert tuner.target == 4410
    assert tuner.tolerance_ns == default_latency_tolerance_ns(100 * MS)
    assert tuner.estimator is not None
    assert tuner.estimator.target == 4410
    fixed = LatencyTuner(LatencyConfig(target_ns=200 * MS, tolerance_ns=30 * MS), 44100)
    fixed.retarget(100 * MS)
    assert (fixed.min_latency, fixed.max_latency) == (3087, 5733)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match=r"LatencyConfig\.target_ns must be > 0"):
        LatencyConfig(target_ns=0)
    with pytest.raises(ValueError, match=r"LatencyConfig\.tolerance_ns must be >= 0"):
        LatencyConfig(tolerance_ns=-1)
    with pytest.raises(ValueError, match=r"LatencyConfig\.scaling_tolerance"):
        LatencyConfig(scaling_tolerance=1.5)


# Closed loop: a producer clock off by +-1000 ppm, ten minutes of stream.


@pytest.mark.parametrize("profile", [RESPONSIVE, GRADUAL])
@pytest.mark.parametrize("target_ms", [200, 60])
@pytest.mark.parametrize("drift_ppm", [1000, -1000])
def test_drift_is_compensated(profile: LatencyProfile, target_ms: int, drift_ppm: int) -> None:
    result = simulate(drift_ppm=drift_ppm, target_ms=target_ms, profile=profile)
    assert result.time_s[-1] > 599
    assert result.underruns == 0
    assert result.statuses == {LatencyStatus.IN_BOUNDS}
    settled = result.time_s >= SETTLED_S[profile]
    # NIQ latency is a sawtooth one 5 ms packet high around the queue's mean: every sample
    # within 5 ms of the target means the mean stays within ~2.5 ms.
    error_ms = result.latency_ms[settled] - target_ms
    assert np.abs(error_ms).max() < 5.0
    assert abs(error_ms.mean()) < 0.1
    assert np.abs(result.drift_ppm[settled] - drift_ppm).max() < 20
    assert abs(np.mean(result.coefficient[settled]) - (1 + drift_ppm * 1e-6)) < 5e-6
    # The transient stays far inside the bounds.
    assert np.abs(result.latency_ms - target_ms).max() < 25


def test_no_drift_stays_put() -> None:
    result = simulate(drift_ppm=0, target_ms=60, profile=RESPONSIVE, minutes=3)
    settled = result.time_s >= SETTLED_S[RESPONSIVE]
    assert np.abs(result.drift_ppm[settled]).max() < 20
    assert np.abs(result.latency_ms - 60).max() < 5
    assert result.underruns == 0


@pytest.mark.parametrize(
    ("profile", "target_ms", "max_std_ppm", "max_swing_ppm", "max_drift_error_ppm"),
    [
        (GRADUAL, 200, 40, 150, 20),
        (GRADUAL, 60, 40, 150, 20),
        # A fast loop follows more of the jitter: roughly 6x the gradual figures.
        (RESPONSIVE, 60, 200, 800, 100),
    ],
)
def test_arrival_jitter_does_not_shake_the_coefficient(
    profile: LatencyProfile,
    target_ms: int,
    max_std_ppm: float,
    max_swing_ppm: float,
    max_drift_error_ppm: float,
) -> None:
    # +-20 ms of uniform packet arrival jitter makes the raw NIQ latency swing by ~45 ms.
    result = simulate(
        drift_ppm=1000, target_ms=target_ms, profile=profile, jitter_ms=20, seed=target_ms
    )
    assert np.ptp(result.latency_ms) > 40
    settled = result.time_s >= SETTLED_S[profile]
    deviation_ppm = (result.coefficient[settled] - 1.001) * 1e6
    assert deviation_ppm.std() < max_std_ppm
    assert np.abs(deviation_ppm).max() < max_swing_ppm
    assert np.abs(result.coefficient - 1).max() < 0.004  # never near the 0.005 clamp
    assert np.abs(result.drift_ppm[settled] - 1000).max() < max_drift_error_ppm
    assert result.underruns == 0
    assert result.statuses == {LatencyStatus.IN_BOUNDS}
    # Averaged over one second, the queue still sits on the target.
    frames_per_s = SAMPLE_RATE // FRAME
    usable = settled.sum() // frames_per_s * frames_per_s
    per_second = result.latency_ms[settled][:usable].reshape(-1, frames_per_s).mean(axis=1)
    assert np.abs(per_second - target_ms).max() < 10


def test_drift_beyond_the_clamp_ends_out_of_bounds() -> None:
    # +7000 ppm: the clamped coefficient (1.005) cannot keep up, the queue grows ~2 ms per
    # second until it leaves [target - tolerance, target + tolerance].
    result = simulate(drift_ppm=7000, target_ms=60, profile=RESPONSIVE, minutes=2)
    assert LatencyStatus.OUT_OF_BOUNDS in result.statuses
    assert result.coefficient.max() == pytest.approx(1.005)
    first_out = np.argmax(result.latency_ms > 60 + default_latency_tolerance_ns(60 * MS) / MS)
    assert 20 < result.time_s[first_out] < 60
