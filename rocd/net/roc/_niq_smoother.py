"""The latency a receiver tunes to: NIQ latency without its one-packet sawtooth.

NIQ latency (ROC_PROTOCOL.md §7.3) = end of the newest queued packet - play position,
measured after each output frame. Packets bring the stream in steps of one packet while
playback takes it smoothly, so NIQ latency is a sawtooth one packet high (5 ms at Roc's
defaults) whatever the queue's real level: roc-send's 10 ms frames hold back a partial
packet of 0..220 samples (441 per frame vs 221 per packet), and reads at 10 ms beat with
packets of 5.011 ms. At 44.1 kHz the tooth takes 221 frames (2.2 s). Held at the target
as it is, the queue sits 2.5 ms off on average at any instant, a 0.45 Hz tooth passes the
responsive profile's filters and the controller chases it (drift estimates off by ~100
ppm on one clock), and |NIQ - target| averages 1.25 ms even when centred.

What is tuned instead (and reported as a session's latency):

    h = output clock - play position          (both in stream samples, both smooth)
    g = output clock - newest end             (the stream head's lag: the tooth, inverted)
    latency = h - G,   G = g low-passed with its trend (a type-2 tracking loop)

so latency = NIQ + (g - G): the NIQ latency with the deviation of the head's lag from
its running level taken out. The output clock is the count of output frames read (so the
read's wake-up jitter is not in it); its offset cancels. `h` is what the tuner moves (the
resampler's ratio changes how fast the play position advances), and it passes unfiltered:
the loop sees its own action at once. Only the head's lag is filtered: its tooth, arrival
jitter and real changes of network delay reach the estimate through a loop of natural
frequency 1 / (2 tau) (tau = 5 s: the 0.45 Hz tooth is left at ~0.2 ms), and a clock
drift (a ramp in g) is tracked without lag by the trend term. On average it equals the
NIQ latency, so a target keeps Roc's meaning.

Roc's NIQ latency stays what is reported on the wire (RTCP XR, BT 220) and what the
latency bounds are checked against (a real drop of the queue must end the session now,
not after the filter has seen it).
"""

from __future__ import annotations

__all__ = ["DEFAULT_TAU_S", "NiqSmoother"]

DEFAULT_TAU_S = 5.0
"""Time constant of the head-lag level (s): several sawtooth periods at Roc's defaults."""


class NiqSmoother:
    """Latency samples without the packet sawtooth; see the module docstring."""

    __slots__ = ("_level", "_tau_s", "_trend")

    def __init__(self, tau_s: float = DEFAULT_TAU_S) -> None:
        if not tau_s > 0:
            raise ValueError(f"tau must be > 0 s, got {tau_s!r}")
        self._tau_s = tau_s
        self._level: float | None = None
        self._trend = 0.0  # samples per second

    def update(self, niq: float, lag: float, frame_s: float) -> float:
        """The latency (samples) after a frame of `frame_s` seconds whose NIQ latency is
        `niq` and whose head lag (output clock - newest end, samples) is `lag`."""
        level = self._level
        if level is None:
            self._level = lag
            return niq
        # Error-correction form of a level + trend tracker (an alpha-beta filter),
        # critically damped: poles at 1 - alpha / 2, natural frequency 1 / (2 tau).
        alpha = min(1.0, frame_s / self._tau_s)
        predicted = level + self._trend * frame_s
        error = lag - predicted
        level = predicted + alpha * error
        self._trend += 0.25 * alpha * alpha * error / frame_s
        self._level = level
        return niq + lag - level
