"""Receiver latency control: keep the queue at its target, say when it is hopeless.

`LatencyTuner` is pure: the caller measures the latency of its queue (samples; for a Roc
receiver the NIQ latency: end of the newest queued packet minus the next position the
depacketizer needs) and reports how much stream it played; the tuner

* checks the latency against [target - tolerance, target + tolerance]: outside, the session
  must be restarted (`LatencyStatus.OUT_OF_BOUNDS`), except below the minimum while no packet
  arrived for longer than the stale tolerance: then the stream is stalled and the watchdog,
  not the tuner, decides (`LatencyStatus.STALLED`);
* feeds the latency to a `FreqEstimator` every scaling interval (5 ms) of stream, and
  exposes its resampling coefficient (1 +- scaling_tolerance) and drift estimate.

Profiles: intact (no tuning; bounds only with an explicit tolerance), responsive, gradual;
the default is responsive below a 30 ms target, gradual otherwise, and intact on a sender.
The rules and defaults follow Roc 0.4's receiver (ROC_PROTOCOL.md section 7.3), so a rocd
receiver keeps and gives up a session when roc-recv would.

The target is fixed per session today; `retarget` is the seam for an adaptive target.
"""

import enum
import math
from typing import Final

import msgspec

from ._freq_estimator import FreqEstimator, FreqEstimatorConfig

__all__ = [
    "LatencyConfig",
    "LatencyProfile",
    "LatencyStatus",
    "LatencyTuner",
    "default_latency_tolerance_ns",
    "default_stale_tolerance_ns",
]

_MS: Final = 1_000_000
_RESPONSIVE_BELOW_NS: Final = 30 * _MS
_STALE_FLOOR_NS: Final = 10 * _MS


class LatencyProfile(enum.StrEnum):
    DEFAULT = "default"
    """Responsive if the target is below 30 ms, else gradual; intact on a sender."""
    INTACT = "intact"
    """No tuning: the coefficient stays 1."""
    RESPONSIVE = "responsive"
    GRADUAL = "gradual"


class LatencyStatus(enum.Enum):
    IN_BOUNDS = "in_bounds"
    STALLED = "stalled"
    """Below the minimum, but no packet came for longer than the stale tolerance: the
    stream stalls (sender gone or link down); the watchdog decides, not the tuner."""
    OUT_OF_BOUNDS = "out_of_bounds"
    """Latency out of bounds: restart the session."""


def default_latency_tolerance_ns(target_ns: int, *, sender_side: bool = False) -> int:
    """Roc's default tolerance: T * ln(400e6 * m) / ln(2 * T), T = max(target, 1 ms) in ns,
    m = 1 on a receiver, 4 on a sender. Equals the target at 200 ms (receiver), and is a
    larger share of smaller targets: 60 ms -> 63.9 ms, 10 ms -> 11.8 ms, 1 ms -> 1.37 ms.
    (The 10 ms -> 20 ms and 1 ms -> 8 ms examples quoted beside the formula hold only with
    T in milliseconds; at the 200 ms default both readings agree.)"""
    t = max(target_ns, _MS)
    m = 4 if sender_side else 1
    return int(t * math.log(400_000_000 * m) / math.log(2 * t))


def default_stale_tolerance_ns(tolerance_ns: int) -> int:
    """Roc's default stale tolerance: max(tolerance / 4, 10 ms) (`deduce_stale_tolerance`).

    The floor keeps small targets from calling a stream stalled after a single late packet:
    at a 10 ms target a quarter of the tolerance is under 3 ms, less than one 5 ms packet.
    """
    return max(tolerance_ns // 4, _STALE_FLOOR_NS)


class LatencyConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Latency settings of one session; times in nanoseconds."""

    target_ns: int = 200 * _MS
    tolerance_ns: int | None = None
    """None: `default_latency_tolerance_ns` (and no bounds check with the intact profile)."""
    stale_tolerance_ns: int | None = None
    """None: a quarter of the tolerance, at least 10 ms (`default_stale_tolerance_ns`)."""
    profile: LatencyProfile = LatencyProfile.DEFAULT
    scaling_interval_ns: int = 5 * _MS
    scaling_tolerance: float = 0.005
    """The coefficient stays within 1 +- this."""
    sender_side: bool = False

    def __post_init__(self) -> None:
        owner = "LatencyConfig"
        if self.target_ns <= 0:
            raise ValueError(f"{owner}.target_ns must be > 0, got {self.target_ns}")
        for name in ("tolerance_ns", "stale_tolerance_ns"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{owner}.{name} must be >= 0, got {value}")
        if self.scaling_interval_ns <= 0:
            raise ValueError(f"{owner}.scaling_interval_ns must be > 0")
        if not 0.0 < self.scaling_tolerance < 1.0:
            raise ValueError(f"{owner}.scaling_tolerance must be in (0, 1)")

    @property
    def effective_profile(self) -> LatencyProfile:
        """The profile DEFAULT stands for with this target and side."""
        if self.profile is not LatencyProfile.DEFAULT:
            return self.profile
        if self.sender_side:
            return LatencyProfile.INTACT
        if self.target_ns < _RESPONSIVE_BELOW_NS:
            return LatencyProfile.RESPONSIVE
        return LatencyProfile.GRADUAL


class LatencyTuner:
    """Bounds check and drift compensation of one session; see the module docstring.

    Latencies are in samples at `sample_rate`; stream positions too. `estimator` replaces
    the profile's filter and gains (its input interval and clamp still come from `config`).
    """

    def __init__(
        self,
        config: LatencyConfig,
        sample_rate: int,
        *,
        estimator: FreqEstimatorConfig | None = None,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
        self.config = config
        self.sample_rate = sample_rate
        self.profile = config.effective_profile
        self._check_bounds = self.profile is not LatencyProfile.INTACT or (
            config.tolerance_ns is not None
        )
        self._interval = config.scaling_interval_ns * sample_rate / 1e9  # samples (fractional)
        self._estimator: FreqEstimator | None = None
        self.latency: float | None = None
        """The last latency given to `update` (samples)."""
        self.stream_position = 0
        """Samples played so far (sum of `advance`)."""
        self._next_scaling = 0.0
        self._goal: float | None = None  # where a slewing target is heading (samples)
        self._slew = 0.0  # its speed: samples of target per sample played
        self.retarget(config.target_ns)
        if self.profile is not LatencyProfile.INTACT:
            if estimator is not None:
                base = estimator
            elif self.profile is LatencyProfile.RESPONSIVE:
                base = FreqEstimatorConfig.responsive()
            else:
                base = FreqEstimatorConfig.gradual()
            fe_config = msgspec.structs.replace(
                base,
                input_interval_ns=config.scaling_interval_ns,
                max_deviation=config.scaling_tolerance,
            )
            # The filters start full of the target: no start-up transient.
            self._estimator = FreqEstimator(fe_config, sample_rate, self.target)

    def retarget(self, target_ns: int) -> None:
        """Set the target latency (ns); the bounds follow unless the tolerance was given."""
        if target_ns <= 0:
            raise ValueError(f"target latency must be > 0 ns, got {target_ns}")
        cfg = self.config
        self.target_ns = target_ns
        self.tolerance_ns = (
            cfg.tolerance_ns
            if cfg.tolerance_ns is not None
            else default_latency_tolerance_ns(target_ns, sender_side=cfg.sender_side)
        )
        self.stale_tolerance_ns = (
            cfg.stale_tolerance_ns
            if cfg.stale_tolerance_ns is not None
            else default_stale_tolerance_ns(self.tolerance_ns)
        )
        self.target = self._samples(target_ns)
        self.min_latency = self._samples(target_ns - self.tolerance_ns)
        self.max_latency = self._samples(target_ns + self.tolerance_ns)
        if self._estimator is not None:
            self._estimator.set_target(self.target)

    def slew_to(self, target_ns: int, rate: float = 0.002) -> None:
        """Move the target to `target_ns` gradually, the bounds staying as they are.

        A step of the target would reach the drift estimator as a step of its error: its
        integral term would take the move for clock drift and overshoot afterwards (on a
        small target, into underruns). Instead the target walks at `rate` (samples of
        target per sample played; 0.002 = 2 ms a second), the queue is drained or filled
        at the same rate by a feed-forward on the coefficient, and the estimator is told
        the moving target, so it sees no error and keeps its drift estimate.
        """
        if target_ns <= 0:
            raise ValueError(f"target latency must be > 0 ns, got {target_ns}")
        if not 0 < rate < self.config.scaling_tolerance:
            raise ValueError(f"slew rate must be in (0, {self.config.scaling_tolerance})")
        self._goal = self._samples(target_ns)
        self._slew = rate
        if self._estimator is None:  # no tuning: nothing to walk with, move at once
            self._set_target(self._goal)

    @property
    def goal_ns(self) -> int:
        """Where the target is heading (the target itself when it is not slewing)."""
        goal = self._goal if self._goal is not None else self.target
        return round(goal * 1e9 / self.sample_rate)

    def _set_target(self, target: float) -> None:
        self.target = target
        self.target_ns = round(target * 1e9 / self.sample_rate)
        if self._estimator is not None:
            self._estimator.set_target(target)
        if self._goal is not None and target == self._goal:
            self._goal = None

    def set_bounds(self, min_ns: int, max_ns: int) -> None:
        """Fixed bounds, whatever the target (an adaptive target moves inside them)."""
        self.min_latency = self._samples(min_ns)
        self.max_latency = self._samples(max_ns)

    def _samples(self, ns: int) -> float:
        return ns * self.sample_rate / 1e9

    @property
    def coefficient(self) -> float:
        """Resampling coefficient to apply now: > 1 consumes input faster."""
        if self._estimator is None:
            return 1.0
        coeff = self._estimator.coefficient
        if self._goal is not None:  # feed-forward of a slewing target (see `slew_to`)
            coeff *= 1 + self._slew if self._goal < self.target else 1 - self._slew
            limit = self.config.scaling_tolerance
            coeff = min(1 + limit, max(1 - limit, coeff))
        return coeff

    @property
    def drift_ppm(self) -> float:
        """Estimated sender clock rate relative to ours, minus 1 (ppm); 0 when intact."""
        return 0.0 if self._estimator is None else self._estimator.drift_ppm

    @property
    def estimator(self) -> FreqEstimator | None:
        return self._estimator

    def update(
        self, latency: float, *, stalling_ns: int = 0, tuned: float | None = None
    ) -> LatencyStatus:
        """Record the current latency (samples) and check it against the bounds.

        `stalling_ns` is how long ago the newest packet arrived. `tuned`, when given, is
        what the estimator is fed instead of `latency` (a receiver's smoothed latency,
        while the bounds stay on the raw NIQ latency, as Roc checks them). On
        OUT_OF_BOUNDS the caller restarts the session; the tuner keeps no failed state of
        its own.
        """
        self.latency = latency if tuned is None else tuned
        if not self._check_bounds:
            return LatencyStatus.IN_BOUNDS
        if latency < self.min_latency:
            if stalling_ns > self.stale_tolerance_ns:
                return LatencyStatus.STALLED
            return LatencyStatus.OUT_OF_BOUNDS
        if latency > self.max_latency:
            return LatencyStatus.OUT_OF_BOUNDS
        return LatencyStatus.IN_BOUNDS

    def advance(self, n_samples: int) -> None:
        """The stream played `n_samples` more: feed the estimator once per scaling interval
        crossed, with the latest latency (frames longer than the interval feed it twice)."""
        self.stream_position += n_samples
        if self._goal is not None:
            step = self._slew * n_samples
            if abs(self._goal - self.target) <= step:
                self._set_target(self._goal)
            else:
                self._set_target(self.target + (step if self._goal > self.target else -step))
        estimator = self._estimator
        if estimator is None or self.latency is None:
            self._next_scaling = max(self._next_scaling, float(self.stream_position))
            return
        latency = max(0.0, self.latency)
        while self.stream_position >= self._next_scaling:
            estimator.update(latency)
            self._next_scaling += self._interval
