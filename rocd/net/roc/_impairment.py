"""A seeded network impairment model: what a lossy, jittery link does to datagrams.

Sans-IO: `ImpairmentModel.process(now_ns, datagram)` says when (and how many times) a
datagram comes out of the simulated link; the caller owns the clock and the sockets (see
`_relay.py`, or a test driving it on virtual time).

Stages, in order, for each datagram:

1. random loss (independent, probability `loss`) and bursty loss (a Gilbert-Elliott
   two-state Markov chain, stepped once per datagram);
2. duplication (probability `duplicate`: a second copy);
3. for each copy: the optional rate limit (a FIFO serialising `rate_bps`; a copy that would
   wait longer than `rate_queue_ns` for the link is dropped, like a tail-drop queue), then
   fixed delay + jitter (uniform in [0, jitter_ns]) + reorder hold-back (probability
   `reorder`: `reorder_delay_ns` more, so the datagrams that follow overtake it).

Jitter reorders datagrams spaced closer than the jitter, as on a real multipath link; set
`jitter_keeps_order` for a link whose delay varies but which never reorders (a queue).

Reproducibility: every stage draws from its own `random.Random` seeded from (seed, stage
name), and only through `random()` (stable across Python versions). The loss pattern hence
depends only on the seed and the datagram index, not on timing, jitter or duplication
settings; identical (now_ns, datagram) inputs give identical outputs.
"""

import math
import random
from collections import deque
from typing import ClassVar

import msgspec

__all__ = ["GilbertElliott", "ImpairmentConfig", "ImpairmentCounters", "ImpairmentModel"]


def _check_probability(owner: str, name: str, value: float) -> None:
    # `not a <= v <= b` is also true for NaN.
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{owner}.{name} must be a probability in [0, 1], got {value!r}")


def _check_non_negative(owner: str, name: str, value: float) -> None:
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"{owner}.{name} must be a finite number >= 0, got {value!r}")


class GilbertElliott(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Bursty loss: a two-state Markov chain (good / bad) stepped once per datagram.

    In the good state a datagram is lost with probability `loss_good`, in the bad state with
    `loss_bad`. With the classic `loss_good=0, loss_bad=1` the bursts (runs of losses) have
    a geometric length distribution of mean 1/`to_good`, and the long-run loss fraction is
    to_bad / (to_bad + to_good).
    """

    to_bad: float
    """Probability of moving from the good to the bad state, per datagram."""
    to_good: float
    """Probability of moving from the bad to the good state, per datagram."""
    loss_good: float = 0.0
    loss_bad: float = 1.0

    def __post_init__(self) -> None:
        for name in ("to_bad", "to_good", "loss_good", "loss_bad"):
            _check_probability("GilbertElliott", name, getattr(self, name))

    @classmethod
    def from_loss(cls, loss: float, mean_burst: float) -> "GilbertElliott":
        """The chain with long-run loss fraction `loss` and mean burst length `mean_burst`
        datagrams (all losses happen in the bad state)."""
        if not 0.0 <= loss < 1.0:
            raise ValueError(f"GilbertElliott loss must be in [0, 1), got {loss!r}")
        if not mean_burst >= 1.0 or math.isinf(mean_burst):
            raise ValueError(f"GilbertElliott mean_burst must be >= 1, got {mean_burst!r}")
        to_good = 1.0 / mean_burst
        return cls(to_bad=min(1.0, loss * to_good / (1.0 - loss)), to_good=to_good)

    @property
    def loss_fraction(self) -> float:
        """The long-run fraction of datagrams this chain loses."""
        moves = self.to_bad + self.to_good
        bad = 0.0 if moves == 0 else self.to_bad / moves
        return bad * self.loss_bad + (1.0 - bad) * self.loss_good


class ImpairmentConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the link does. Times are in nanoseconds; the defaults impair nothing."""

    seed: int = 0
    loss: float = 0.0
    """Independent loss probability per datagram."""
    burst: GilbertElliott | None = None
    """Bursty loss on top of `loss`."""
    delay_ns: int = 0
    jitter_ns: int = 0
    """Extra delay drawn uniformly in [0, jitter_ns] per datagram copy."""
    jitter_keeps_order: bool = False
    reorder: float = 0.0
    """Probability that a copy is held back `reorder_delay_ns` more than its delay."""
    reorder_delay_ns: int = 0
    duplicate: float = 0.0
    """Probability that a datagram is delivered twice (each copy gets its own jitter)."""
    rate_bps: int = 0
    """Link rate in bits per second (payload bytes only); 0 = unlimited."""
    rate_queue_ns: int = 100_000_000
    """With a rate limit: longest wait for the link before a copy is dropped."""

    def __post_init__(self) -> None:
        owner = "ImpairmentConfig"
        for name in ("loss", "reorder", "duplicate"):
            _check_probability(owner, name, getattr(self, name))
        for name in ("delay_ns", "jitter_ns", "reorder_delay_ns", "rate_bps", "rate_queue_ns"):
            _check_non_negative(owner, name, getattr(self, name))
        if self.reorder > 0 and self.reorder_delay_ns == 0:
            raise ValueError(f"{owner}.reorder_delay_ns must be > 0 when reorder > 0")

    @property
    def is_transparent(self) -> bool:
        """True when every datagram comes out once, at once, in order."""
        burst_loses = self.burst is not None and self.burst.loss_fraction > 0
        return not (
            self.loss or burst_loses or self.delay_ns or self.jitter_ns or self.reorder
        ) and not (self.duplicate or self.rate_bps)


class ImpairmentCounters(msgspec.Struct, kw_only=True):
    """Running totals of one model, in datagrams."""

    received: int = 0
    """Datagrams given to `process`."""
    dropped: int = 0
    """Datagrams of which no copy comes out (`rate_dropped` included)."""
    rate_dropped: int = 0
    """Datagrams dropped because the rate-limited link's queue was full."""
    duplicated: int = 0
    """Extra copies scheduled."""
    reordered: int = 0
    """Datagrams overtaken by one that entered the link after them (as in RFC 4737),
    counted when the overtaking datagram is scheduled. Duplicates are not counted."""
    delivered: int = 0
    """(deliver_at, datagram) pairs returned, duplicates included; so
    received == dropped + delivered - duplicated."""


class ImpairmentModel:
    """One direction of an impaired link; see the module docstring for the stages."""

    _STAGES: ClassVar[tuple[str, ...]] = ("loss", "burst", "duplicate", "jitter", "reorder")

    def __init__(self, config: ImpairmentConfig) -> None:
        self.config = config
        self.counters = ImpairmentCounters()
        self._transparent = config.is_transparent
        # str seeds are hashed with SHA-512 by random.seed (version 2): stable everywhere.
        rngs = {name: random.Random(f"{config.seed}/{name}") for name in self._STAGES}
        self._loss = rngs["loss"].random
        self._burst = rngs["burst"].random
        self._dup = rngs["duplicate"].random
        self._jitter = rngs["jitter"].random
        self._reorder = rngs["reorder"].random
        self._bad = False  # Gilbert-Elliott state
        self._link_free_ns = 0  # rate limit: when the link has sent its backlog
        self._unsettled: deque[int] = deque()
        self._last_ns = -1  # latest in-order delivery time (jitter_keeps_order)

    def process(self, now_ns: int, datagram: bytes) -> list[tuple[int, bytes]]:
        """The (deliver_at_ns, datagram) pairs for a datagram entering the link at now_ns.

        Returns [] for a loss, two pairs for a duplicate, pairs in delivery order.
        `now_ns` must not go backwards between calls.
        """
        cfg = self.config
        counters = self.counters
        counters.received += 1
        if self._transparent:
            counters.delivered += 1
            return [(now_ns, datagram)]
        lost = False
        if cfg.loss and self._loss() < cfg.loss:
            lost = True
        burst = cfg.burst
        if burst is not None:
            # Step the chain for every datagram (lost or not) so that its state sequence
            # depends on the datagram index only.
            draw = self._burst()
            if self._bad:
                self._bad = draw >= burst.to_good
            else:
                self._bad = draw < burst.to_bad
            p = burst.loss_bad if self._bad else burst.loss_good
            if p and self._burst() < p:
                lost = True
        copies = 2 if cfg.duplicate and self._dup() < cfg.duplicate else 1
        if lost:
            counters.dropped += 1
            return []
        out: list[tuple[int, bytes]] = []
        for _ in range(copies):
            at = self._schedule(now_ns, len(datagram))
            if at is not None:
                out.append((at, datagram))
        if not out:
            counters.dropped += 1
            counters.rate_dropped += 1
            return out
        if len(out) == 2:
            counters.duplicated += 1
            if out[1][0] < out[0][0]:
                out.reverse()
        # RFC 4737's view: the earlier datagrams this one overtakes are the reordered ones.
        # `_unsettled` holds, ascending, the delivery times of earlier datagrams that a
        # later one could still overtake (those not yet due).
        first = out[0][0]
        unsettled = self._unsettled
        while unsettled and unsettled[-1] > first:
            unsettled.pop()
            counters.reordered += 1
        while unsettled and unsettled[0] <= now_ns:
            unsettled.popleft()
        unsettled.append(first)
        counters.delivered += len(out)
        return out

    def _schedule(self, now_ns: int, size: int) -> int | None:
        """When one copy comes out, or None when the rate-limited queue drops it."""
        cfg = self.config
        at = now_ns
        if cfg.rate_bps:
            start = max(now_ns, self._link_free_ns)
            if start - now_ns > cfg.rate_queue_ns:
                return None
            self._link_free_ns = start + (size * 8 * 1_000_000_000) // cfg.rate_bps
            at = self._link_free_ns
        at += cfg.delay_ns
        if cfg.jitter_ns:
            at += int(self._jitter() * (cfg.jitter_ns + 1))
        if cfg.reorder and self._reorder() < cfg.reorder:
            # Held back: the copies that follow may overtake it (not kept behind it).
            return at + cfg.reorder_delay_ns
        if cfg.jitter_keeps_order:
            at = max(at, self._last_ns)
            self._last_ns = at
        return at
