"""Adaptive target latency: how much to buffer, chosen from the jitter the link shows.

A fixed target is either too small for a bad Wi-Fi link (choppy audio, sessions restarted
out of bounds) or wastefully large on a quiet LAN. With an adaptive target a receiver
starts at `start`, then follows an estimate of what the link needs (the behaviour of Roc's
adaptive mode, which our defaults follow):

    estimate = max(peak jitter x 1.15, mean jitter x 3, duration of one FEC block)

- increase: as soon as the estimate exceeds the target, to estimate x (k + 1) / 2
  (k = 1.7, the decrease threshold), capped at `max`; then hold for 15 s;
- decrease: only when the target exceeds k x estimate and the drift estimator is stable,
  by a factor (k + 1) / (2k) (so a target at exactly k x estimate lands halfway), never
  below `min`; then hold for 5 s;
- nothing for the first 5 s of a session (jitter statistics are not meaningful yet).

The FEC block term keeps the target long enough for a whole block to arrive, without
which repair packets come too late to help. Pure: time and statistics are passed in.
"""

from __future__ import annotations

import enum

import msgspec

__all__ = ["AdaptiveLatency", "AdaptiveLatencyConfig"]

_MS = 1_000_000
_S = 1_000_000_000


class AdaptiveLatencyConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Bounds and pace of an adaptive target; times in ns, None: Roc's default."""

    start_ns: int = 200 * _MS
    min_ns: int | None = None
    """None: min(15 ms, start / 5)."""
    max_ns: int | None = None
    """None: 5 x start."""
    decrease_threshold: float = 1.7
    starting_timeout_ns: int = 5 * _S
    cooldown_decrease_ns: int = 5 * _S
    cooldown_increase_ns: int = 15 * _S
    max_jitter_overhead: float = 1.15
    mean_jitter_overhead: float = 3.0

    def __post_init__(self) -> None:
        if self.start_ns <= 0:
            raise ValueError("AdaptiveLatencyConfig.start_ns must be > 0")
        if self.decrease_threshold <= 1:
            raise ValueError("AdaptiveLatencyConfig.decrease_threshold must be > 1")
        low, high = self.bounds
        if not 0 < low <= self.start_ns <= high:
            raise ValueError(
                f"AdaptiveLatencyConfig: need 0 < min ({low} ns) <= start ({self.start_ns} ns)"
                f" <= max ({high} ns)"
            )

    @property
    def bounds(self) -> tuple[int, int]:
        low = self.min_ns if self.min_ns is not None else min(15 * _MS, self.start_ns // 5)
        high = self.max_ns if self.max_ns is not None else 5 * self.start_ns
        return low, high


class _State(enum.Enum):
    STARTING = "starting"
    IDLE = "idle"
    AFTER_INCREASE = "after_increase"
    AFTER_DECREASE = "after_decrease"


class AdaptiveLatency:
    """The current target of one session; `update` may move it (see the module docstring)."""

    def __init__(self, config: AdaptiveLatencyConfig, now_ns: int) -> None:
        self.config = config
        self.target_ns = config.start_ns
        self.min_ns, self.max_ns = config.bounds
        self._state = _State.STARTING
        self._since = now_ns
        self.increases = 0
        self.decreases = 0

    def estimate_ns(
        self, *, mean_jitter_ns: float, peak_jitter_ns: float, fec_block_ns: int
    ) -> int:
        c = self.config
        return int(
            max(peak_jitter_ns * c.max_jitter_overhead, mean_jitter_ns * c.mean_jitter_overhead,
                fec_block_ns)
        )  # fmt: skip

    def update(
        self,
        now_ns: int,
        *,
        mean_jitter_ns: float,
        peak_jitter_ns: float,
        fec_block_ns: int = 0,
        stable: bool = True,
    ) -> int | None:
        """The new target (ns) if it changes now, else None."""
        c = self.config
        hold = {
            _State.STARTING: c.starting_timeout_ns,
            _State.AFTER_INCREASE: c.cooldown_increase_ns,
            _State.AFTER_DECREASE: c.cooldown_decrease_ns,
            _State.IDLE: 0,
        }[self._state]
        if now_ns - self._since < hold:
            return None
        self._state = _State.IDLE
        estimate = self.estimate_ns(
            mean_jitter_ns=mean_jitter_ns, peak_jitter_ns=peak_jitter_ns, fec_block_ns=fec_block_ns
        )
        k = c.decrease_threshold
        if estimate > self.target_ns:
            new = min(self.max_ns, int(estimate * (k + 1) / 2))
            if new <= self.target_ns:
                return None
            self._set(new, _State.AFTER_INCREASE, now_ns)
            self.increases += 1
            return new
        if estimate * k < self.target_ns and stable:
            new = int(self.target_ns * (k + 1) / (2 * k))
            if new < self.min_ns:
                return None
            self._set(new, _State.AFTER_DECREASE, now_ns)
            self.decreases += 1
            return new
        return None

    def _set(self, target: int, state: _State, now_ns: int) -> None:
        self.target_ns = target
        self._state = state
        self._since = now_ns
