"""The frequency estimator: its filters, its controller's signs, limits and cadence."""

import msgspec
import numpy as np
import pytest

from rocd.net.roc import FirStage, FreqEstimator, FreqEstimatorConfig, lowpass_fir

FS = 44100


def gain_db(h: np.ndarray, frequency: float) -> float:
    """Gain of FIR h at `frequency` (fraction of its sample rate), in dB."""
    n = np.arange(len(h))
    response = abs(np.sum(h * np.exp(-2j * np.pi * frequency * n)))
    return float(20 * np.log10(max(response, 1e-300)))


STAGES = [
    # taps, input rate (Hz), cutoff (Hz), -3 dB point (Hz) and stop band start documented
    (96, 200.0, 2.0, 2.0, 7.8),
    (64, 20.0, 0.3, 0.30, 1.2),
    (256, 20.0, 0.1, 0.083, 0.31),
]


@pytest.mark.parametrize(("taps", "rate", "cutoff", "minus_3db", "stop"), STAGES)
def test_lowpass_fir_response_is_as_documented(
    taps: int, rate: float, cutoff: float, minus_3db: float, stop: float
) -> None:
    h = lowpass_fir(taps, cutoff / rate)
    assert h.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(h, h[::-1])  # linear phase: delay (taps - 1) / 2 inputs
    assert gain_db(h, minus_3db / rate) == pytest.approx(-3.0, abs=0.2)
    assert gain_db(h, cutoff / rate / 4) > -0.5
    assert -6.0 < gain_db(h, cutoff / rate) < -2.5
    band = np.linspace(stop / rate, 0.5, 2000)
    assert max(gain_db(h, f) for f in band) < -70
    # The generic promise: below -70 dB from cutoff + 3/taps of the input rate.
    assert (cutoff / rate + 3 / taps) * rate >= stop - 0.05


def test_lowpass_fir_rejects_bad_designs() -> None:
    with pytest.raises(ValueError, match="cutoff must be in"):
        lowpass_fir(32, 0.5)
    with pytest.raises(ValueError, match="taps must be >= 1"):
        lowpass_fir(0, 0.1)


@pytest.mark.parametrize(
    "config", [FreqEstimatorConfig.responsive(), FreqEstimatorConfig.gradual()]
)
def test_latency_at_target_keeps_coefficient_at_one(config: FreqEstimatorConfig) -> None:
    fe = FreqEstimator(config, FS, target=8820.0)
    for _ in range(20_000):
        fe.update(8820.0)
    assert fe.coefficient == pytest.approx(1.0, abs=1e-12)
    assert fe.drift_ppm == pytest.approx(0.0, abs=1e-6)
    assert fe.filtered_latency == pytest.approx(8820.0)


def test_controller_updates_once_per_decimated_output() -> None:
    responsive = FreqEstimator(FreqEstimatorConfig.responsive(), FS, target=0.0)
    gradual = FreqEstimator(FreqEstimatorConfig.gradual(), FS, target=0.0)
    for _ in range(1000):
        responsive.update(0.0)
        gradual.update(0.0)
    assert responsive.updates == 1000 // 50  # every 250 ms of stream
    assert gradual.updates == 1000 // 100  # every 500 ms of stream
    assert FreqEstimatorConfig.responsive().update_period_ns == 250_000_000
    assert FreqEstimatorConfig.gradual().update_period_ns == 500_000_000


def test_excess_latency_speeds_up_consumption_and_is_clamped() -> None:
    fe = FreqEstimator(FreqEstimatorConfig.responsive(), FS, target=4410.0)
    for _ in range(400):  # 2 s of 10 ms more latency than the target
        fe.update(4410.0 + 441.0)
    assert 1.0 < fe.coefficient < 1.005
    assert fe.drift_ppm > 0
    for _ in range(40_000):  # 200 s of a queue far too long: the output saturates
        fe.update(4410.0 + 44100.0)
    assert fe.coefficient == 1.005
    # No wind-up: back at the target, the integral did not grow past what the clamp needs,
    # so the coefficient leaves the limit within seconds, not minutes.
    for _ in range(2_000):  # 10 s
        fe.update(4410.0)
    assert fe.coefficient < 1.005
    assert fe.drift_ppm <= 5000


def test_missing_latency_slows_consumption() -> None:
    fe = FreqEstimator(FreqEstimatorConfig.gradual(), FS, target=8820.0)
    for _ in range(2_000):
        fe.update(8820.0 - 882.0)
    assert fe.coefficient < 1.0
    assert fe.drift_ppm < 0


def test_set_target_moves_the_setpoint() -> None:
    fe = FreqEstimator(FreqEstimatorConfig.responsive(), FS, target=4410.0)
    fe.set_target(8820.0)
    assert fe.target == 8820.0
    for _ in range(200):
        fe.update(4410.0)  # now 100 ms short of the target
    assert fe.coefficient < 1.0


def test_config_validation_names_the_field() -> None:
    stage = FirStage(decimation=10, taps=32, cutoff_hz=2.0)
    with pytest.raises(ValueError, match=r"stages\[0\]\.cutoff_hz must be in \(0, 100\) Hz"):
        FreqEstimatorConfig(stages=(FirStage(decimation=10, taps=32, cutoff_hz=150.0),), kp=1, ki=1)
    too_high = FirStage(decimation=10, taps=32, cutoff_hz=12.0)  # its input runs at 20 Hz
    with pytest.raises(ValueError, match=r"stages\[1\]\.cutoff_hz must be in \(0, 10\) Hz"):
        FreqEstimatorConfig(stages=(stage, too_high), kp=1, ki=1)
    with pytest.raises(ValueError, match=r"FreqEstimatorConfig\.kp must be"):
        FreqEstimatorConfig(stages=(stage,), kp=-1, ki=1)
    with pytest.raises(ValueError, match=r"FreqEstimatorConfig\.stages must hold"):
        FreqEstimatorConfig(stages=(), kp=1, ki=1)
    with pytest.raises(ValueError, match="max_deviation"):
        msgspec.structs.replace(FreqEstimatorConfig.gradual(), max_deviation=0)
    with pytest.raises(ValueError, match="sample_rate"):
        FreqEstimator(FreqEstimatorConfig.gradual(), 0, 0.0)
