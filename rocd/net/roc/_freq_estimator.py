"""Clock drift compensation: from queue latency samples to a resampling coefficient.

The sender's and the receiver's audio clocks differ by a few hundred ppm at most, so the
receiver's queue slowly fills or empties. `FreqEstimator` keeps it at the target: it
low-pass filters the latency samples (fed every 5 ms of stream), decimating as it goes, and
runs a PI controller on the filtered latency:

    err   = (filtered - target) / sample_rate        seconds of excess latency
    integ += err * update_period                     seconds * seconds
    coeff = 1 + kp * err + ki * integ                clamped to 1 +- max_deviation

A coefficient > 1 makes the resampler consume input faster, so the queue shrinks. Once the
loop has settled the error is zero and `ki * integ` alone carries the correction: it is the
estimate of the drift (the sender's clock rate relative to ours, minus 1), reported in ppm.

Design (ours, not Roc's coefficient table). The queue integrates the rate error, so the
closed loop is e'' + kp e' + ki e = 0: natural frequency wn = sqrt(ki), damping
zeta = kp / (2 wn). Both profiles use zeta = 0.8 (a few % overshoot, settles sooner than
critical damping) and keep the filters' delay well below 1/wn. Chosen with the closed-loop
simulation of the tests (44.1 kHz, 5 ms packets, 10 ms frames, NIQ latency):

* responsive (small buffers, must correct fast): stage 1 5 ms -> 50 ms (96 taps, cutoff
  2 Hz), stage 2 50 ms -> 250 ms (64 taps, cutoff 0.3 Hz); wn = 0.1 rad/s, so kp = 0.16 /s,
  ki = 0.01 /s^2. A 1000 ppm offset from the first packet peaks at ~8 ms of latency error
  and the drift estimate is within 20 ppm after ~40 s.
* gradual (large buffers, smooth corrections): stage 1 as above, stage 2 50 ms -> 500 ms
  (256 taps, cutoff 0.1 Hz); wn = 0.03 rad/s, so kp = 0.048 /s, ki = 0.0009 /s^2. The
  same offset peaks at ~20 ms and settles within 20 ppm after ~2 min; +-20 ms packet
  arrival jitter moves the coefficient by ~25 ppm (standard deviation).

Faster loops were tried and rejected: NIQ latency is a sawtooth of one packet (5 ms)
sampled once per frame, which aliases to a slow (~0.25 Hz at +1000 ppm) +-2.5 ms wobble
that a loop with wn >= 0.15 rad/s chases (hundreds of ppm of coefficient swing) and that
keeps its drift estimate off by more than 20 ppm. The gains are in physical units (per
second of latency error) so they do not depend on the sample rate.

The FIR stages are Blackman-windowed sincs normalised to unit gain at DC (a constant latency
passes unchanged). Realised responses (input rate -> -3 dB point, stop band < -70 dB from):
stage 1 200 Hz -> 2.0 Hz, 7.8 Hz; responsive stage 2 20 Hz -> 0.30 Hz, 1.2 Hz; gradual
stage 2 20 Hz -> 0.083 Hz, 0.31 Hz. Each stop band starts below its output's Nyquist
frequency, so arrival jitter does not alias into the loop's band. Filter buffers start full
of the target, so the first outputs are not a step from zero. The integral does not wind up
while the coefficient is clamped.
"""

import math
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = ["FirStage", "FreqEstimator", "FreqEstimatorConfig", "lowpass_fir"]

SCALING_INTERVAL_NS: Final = 5_000_000
"""How often the estimator expects a latency sample, in stream time (ns)."""


def lowpass_fir(taps: int, cutoff: float) -> npt.NDArray[np.float64]:
    """A linear-phase low-pass FIR: Blackman-windowed sinc with unit DC gain.

    `cutoff` is the ideal sinc's edge as a fraction of the input rate (0 < cutoff < 0.5).
    The window smears that edge over its main lobe, +-3/taps of the input rate: the gain is
    about -3 dB at the cutoff (less when the cutoff is narrower than the main lobe) and
    below -70 dB from cutoff + 3/taps on.
    """
    if taps < 1:
        raise ValueError(f"FIR taps must be >= 1, got {taps}")
    if not 0.0 < cutoff < 0.5:
        raise ValueError(f"FIR cutoff must be in (0, 0.5) of the input rate, got {cutoff!r}")
    n = np.arange(taps) - (taps - 1) / 2.0
    h = np.sinc(2.0 * cutoff * n) * np.blackman(taps) if taps > 1 else np.ones(1)
    return np.asarray(h / h.sum(), dtype=np.float64)


class FirStage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One decimating low-pass stage: keeps 1 output per `decimation` inputs."""

    decimation: int
    taps: int
    cutoff_hz: float


class FreqEstimatorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Filter stages and PI gains; see the module docstring for the design."""

    stages: tuple[FirStage, ...]
    kp: float
    """Proportional gain: coefficient change per second of latency error (1/s)."""
    ki: float
    """Integral gain: coefficient change per second*second of accumulated error (1/s^2)."""
    input_interval_ns: int = SCALING_INTERVAL_NS
    max_deviation: float = 0.005
    """The coefficient stays within 1 +- max_deviation (0.005 = 5000 ppm)."""

    def __post_init__(self) -> None:
        owner = "FreqEstimatorConfig"
        if not self.stages:
            raise ValueError(f"{owner}.stages must hold at least one stage")
        rate = 1e9 / self.input_interval_ns if self.input_interval_ns > 0 else 0.0
        for i, stage in enumerate(self.stages):
            if stage.decimation < 1 or stage.taps < 1:
                raise ValueError(f"{owner}.stages[{i}] decimation and taps must be >= 1")
            if not 0.0 < stage.cutoff_hz < rate / 2:
                raise ValueError(
                    f"{owner}.stages[{i}].cutoff_hz must be in (0, {rate / 2:g}) Hz "
                    f"(half its input rate), got {stage.cutoff_hz!r}"
                )
            rate /= stage.decimation
        for name in ("kp", "ki"):
            if not getattr(self, name) >= 0 or math.isinf(getattr(self, name)):
                raise ValueError(f"{owner}.{name} must be a finite number >= 0")
        if self.input_interval_ns <= 0:
            raise ValueError(f"{owner}.input_interval_ns must be > 0")
        if not 0.0 < self.max_deviation < 1.0:
            raise ValueError(f"{owner}.max_deviation must be in (0, 1)")

    @property
    def update_period_ns(self) -> int:
        """Time between two controller updates (one per output of the last stage)."""
        return self.input_interval_ns * math.prod(s.decimation for s in self.stages)

    @classmethod
    def responsive(cls) -> "FreqEstimatorConfig":
        """Fast correction for small buffers (updates every 250 ms)."""
        return cls(
            stages=(
                FirStage(decimation=10, taps=96, cutoff_hz=2.0),
                FirStage(decimation=5, taps=64, cutoff_hz=0.3),
            ),
            kp=0.16,
            ki=0.01,
        )

    @classmethod
    def gradual(cls) -> "FreqEstimatorConfig":
        """Slow, smooth correction for large buffers (updates every 500 ms)."""
        return cls(
            stages=(
                FirStage(decimation=10, taps=96, cutoff_hz=2.0),
                FirStage(decimation=10, taps=256, cutoff_hz=0.1),
            ),
            kp=0.048,
            ki=0.0009,
        )


class _Decimator:
    """A FIR over the last `taps` inputs, evaluated once per `decimation` inputs."""

    __slots__ = ("_buf", "_count", "_h", "_pos", "_taps", "decimation")

    def __init__(self, h: npt.NDArray[np.float64], decimation: int, initial: float) -> None:
        self._h = h
        self._taps = len(h)
        self.decimation = decimation
        # Each input is written twice, at i and i + taps, so the window of the last `taps`
        # inputs is always the contiguous slice [pos, pos + taps): no copy per output.
        self._buf = np.full(2 * self._taps, initial, dtype=np.float64)
        self._pos = 0
        self._count = 0

    def reset(self, value: float) -> None:
        self._buf.fill(value)
        self._count = 0

    def push(self, x: float) -> float | None:
        buf = self._buf
        pos = self._pos
        buf[pos] = x
        buf[pos + self._taps] = x
        pos += 1
        if pos == self._taps:
            pos = 0
        self._pos = pos
        self._count += 1
        if self._count < self.decimation:
            return None
        self._count = 0
        return float(self._h @ buf[pos : pos + self._taps])


class FreqEstimator:
    """Latency samples in, resampling coefficient and drift estimate out.

    Latencies are in samples at `sample_rate` (Hz) and must be fed once per
    `config.input_interval_ns` of stream (5 ms); the caller owns time.
    """

    def __init__(self, config: FreqEstimatorConfig, sample_rate: int, target: float) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
        self.config = config
        self.sample_rate = sample_rate
        self._target = float(target)
        rate = 1e9 / config.input_interval_ns
        self._stages = []
        # The filters run on the error (latency - target), so a target that moves with the
        # queue (a slewing target) is no error at all; prefilled with 0: no start transient.
        for stage in config.stages:
            h = lowpass_fir(stage.taps, stage.cutoff_hz / rate)
            self._stages.append(_Decimator(h, stage.decimation, 0.0))
            rate /= stage.decimation
        self._period_s = config.update_period_ns / 1e9
        self._integral = 0.0  # seconds * seconds
        self._filtered = self._target
        self._coeff = 1.0
        self.updates = 0
        """Controller updates so far (outputs of the last filter stage)."""

    @property
    def target(self) -> float:
        """Target latency in samples."""
        return self._target

    def set_target(self, target: float) -> None:
        """Move the target (samples), keeping the drift estimate. The filters see latency
        minus target: a step of the target is a step of the error that the proportional
        term steers out; a target moved along with the queue (LatencyTuner.slew_to) is none
        (filtering the latency itself, the filters' group delay would lag a moving
        target by seconds and the integral would take that lag for drift)."""
        self._target = float(target)

    @property
    def coefficient(self) -> float:
        """Resampling coefficient: > 1 consumes input faster (the queue shrinks)."""
        return self._coeff

    @property
    def drift_ppm(self) -> float:
        """Estimated sender clock rate relative to ours, minus 1, in ppm (> 0: faster)."""
        return self.config.ki * self._integral * 1e6

    @property
    def filtered_latency(self) -> float:
        """The low-passed latency (samples) the controller last acted on."""
        return self._filtered

    def update(self, latency: float) -> None:
        """Feed one latency sample (samples); call once per input interval of stream."""
        value: float | None = float(latency) - self._target
        for stage in self._stages:
            assert value is not None
            value = stage.push(value)
            if value is None:
                return
        assert value is not None
        self._control(value)

    def _control(self, filtered_error: float) -> None:
        cfg = self.config
        self._filtered = self._target + filtered_error
        err = filtered_error / self.sample_rate
        integral = self._integral + err * self._period_s
        raw = 1.0 + cfg.kp * err + cfg.ki * integral
        limit = cfg.max_deviation
        if raw > 1.0 + limit or raw < 1.0 - limit:
            # Saturated: integrate only what pulls the output back (no wind-up).
            if (raw > 1.0) == (err > 0):
                integral = self._integral
            raw = 1.0 + cfg.kp * err + cfg.ki * integral
        self._integral = integral
        self._coeff = min(1.0 + limit, max(1.0 - limit, raw))
        self.updates += 1
