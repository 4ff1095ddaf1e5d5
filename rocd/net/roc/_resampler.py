"""A variable-ratio resampler that pulls its input: n output samples per call, exactly.

Used for clock drift compensation (the ratio follows the latency tuner's coefficient) and
for converting the stream's rate to the output's. It wraps libsamplerate's callback API
(`samplerate.CallbackResampler`): libsamplerate asks for input chunks when it needs them and
changes the ratio smoothly (a linear ramp over the next output block), so a new ratio never
makes a step in the signal.

Why libsamplerate `sinc_fastest` (measured with `python -m bench.resampler`: a sine through
each candidate at ratio 1.0005, 44.1 kHz stereo, 10 ms frames):

| candidate                        | SNR 1 / 5 / 12 / 18 kHz      | CPU per 10 ms frame |
|----------------------------------|------------------------------|---------------------|
| libsamplerate sinc_fastest       | 119 / 116 / 103 / 95 dB      | ~35 us              |
| libsamplerate sinc_medium        | 142 / 137 / 126 / 119 dB     | ~65 us              |
| libsamplerate linear             | 62 / 34 / 16 / 6 dB          | ~6 us               |
| python-soxr, variable rate (vr)  | 116 / 116 / 115 / 115 dB     | ~38 us              |

soxr's fixed-ratio modes are faster (~9 us) but cannot follow a changing ratio; its
variable-rate mode costs as much as sinc_fastest and is marked experimental in
python-soxr. `linear` is cheap but audibly poor above a few kHz. sinc_fastest stays above
16-bit resolution (~96 dB) over the audio band at the lowest cost of the sinc options.
The CPU figure is the largest item of a receiving stream's budget, which is why no better
quality is bought by default.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import samplerate

from ._rate_converter import ResamplerQuality

__all__ = ["Resampler"]

DEFAULT_CHUNK = 256
"""Input samples fetched per callback (5.8 ms at 44.1 kHz): the resampler runs at most this
plus its filter's half length ahead of its output; fewer, larger chunks cost less Python
per 10 ms frame (128 measured ~10% more CPU per stream than 256, 441 no less)."""


class Resampler:
    """Output `channels`-channel frames at `ratio` (output rate / input rate) from `source`.

    `source(n)` must return exactly `n` input frames, shape (n, channels), float32; it is
    called from within `read`. The resampler reads ahead of its output by its filter's
    half length plus up to one chunk.
    """

    def __init__(
        self,
        source: Callable[[int], npt.NDArray[np.float32]],
        channels: int,
        ratio: float,
        *,
        chunk: int = DEFAULT_CHUNK,
        quality: ResamplerQuality = ResamplerQuality.FASTEST,
    ) -> None:
        if channels < 1 or chunk < 1:
            raise ValueError("channels and chunk must be >= 1")
        if quality.is_soxr:
            raise ValueError(f"{quality.value} converts at a fixed ratio only")
        if not ratio > 0:
            raise ValueError(f"ratio must be > 0, got {ratio!r}")
        self._channels = channels

        def pull() -> npt.NDArray[np.float32]:
            return source(chunk)

        self._src = samplerate.CallbackResampler(pull, ratio, quality.value, channels)

    @property
    def ratio(self) -> float:
        """Output rate / input rate used from the next `read` on."""
        return float(self._src.ratio)

    @ratio.setter
    def ratio(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"ratio must be > 0, got {value!r}")
        self._src.ratio = value

    def read(self, n: int) -> npt.NDArray[np.float32]:
        """The next `n` output frames, shape (n, channels)."""
        out: npt.NDArray[np.float32] = self._src.read(n)
        if len(out) != n:  # the source never ends, so libsamplerate always fills the block
            raise RuntimeError(f"resampler produced {len(out)} of {n} frames")
        return out.reshape(n, self._channels)
