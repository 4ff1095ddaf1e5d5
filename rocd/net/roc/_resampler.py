"""A variable-ratio resampler that pulls its input: n output samples per call, exactly.

Used for clock drift compensation (the ratio follows the latency tuner's coefficient) and
for converting the stream's rate to the output's. A new ratio is ramped linearly across
the next output block, so it never makes a step in the signal.

Two backends. By default the compiled windowed-sinc filter (`_resample_native`, built by
scripts/setup.sh); libsamplerate (`samplerate.CallbackResampler`, sinc_fastest) where it
is not built or when a `quality` is asked for. Measured with `python -m bench.resampler`:
a sine through each candidate at ratio 1.0005, 44.1 kHz stereo, 10 ms frames:

| candidate                        | SNR 1 / 5 / 12 / 18 / 20 kHz       | CPU per 10 ms frame |
|----------------------------------|------------------------------------|---------------------|
| compiled (`_resample_native`)    | 133 / 129 / 115 / 108 / 107 dB     | ~10 us              |
| libsamplerate sinc_fastest       | 119 / 116 / 103 / 95 / 80 dB       | ~38 us              |
| libsamplerate sinc_medium        | 142 / 137 / 126 / 119 / 116 dB     | ~70 us              |
| libsamplerate linear             | 62 / 34 / 16 / 6 / 3 dB            | ~6 us               |
| python-soxr, variable rate (vr)  | 116 / 116 / 115 / 115 / 115 dB     | ~30-38 us           |

The compiled filter is flat to 18 kHz (-0.01 dB; -0.7 dB at 19 kHz, -5.4 dB at 20 kHz),
as sinc_fastest's pass band. The CPU figure was the largest item of a receiving stream's
budget with libsamplerate (its callback API calls back into Python for every input
chunk), which is why the compiled filter exists.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import samplerate

from . import _resample_native
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
    half length (plus up to one `chunk` with libsamplerate). `quality` None: the compiled
    filter when it is built, else libsamplerate's sinc_fastest; a libsamplerate quality
    picks that converter.
    """

    def __init__(
        self,
        source: Callable[[int], npt.NDArray[np.float32]],
        channels: int,
        ratio: float,
        *,
        chunk: int = DEFAULT_CHUNK,
        quality: ResamplerQuality | None = None,
    ) -> None:
        if channels < 1 or chunk < 1:
            raise ValueError("channels and chunk must be >= 1")
        if quality is not None and quality.is_soxr:
            raise ValueError(f"{quality.value} converts at a fixed ratio only")
        if not ratio > 0:
            raise ValueError(f"ratio must be > 0, got {ratio!r}")
        self._channels = channels
        self._converter = "native"
        self._native: _resample_native.NativeResampler | None = None
        self._src: samplerate.CallbackResampler | None = None
        if quality is None and _resample_native.available():
            self._native = _resample_native.NativeResampler(source, channels, ratio)
            return

        def pull() -> npt.NDArray[np.float32]:
            return source(chunk)

        self._converter = converter = (quality or ResamplerQuality.FASTEST).value
        self._src = samplerate.CallbackResampler(pull, ratio, converter, channels)

    @property
    def backend(self) -> str:
        """ "native" (the compiled filter) or the libsamplerate converter's name."""
        return self._converter

    @property
    def ratio(self) -> float:
        """Output rate / input rate used from the next `read` on."""
        if self._native is not None:
            return self._native.ratio
        assert self._src is not None
        return float(self._src.ratio)

    @ratio.setter
    def ratio(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"ratio must be > 0, got {value!r}")
        if self._native is not None:
            self._native.ratio = value
        else:
            assert self._src is not None
            self._src.ratio = value

    def read(self, n: int) -> npt.NDArray[np.float32]:
        """The next `n` output frames, shape (n, channels)."""
        if self._native is not None:
            return self._native.read(n)
        assert self._src is not None
        out: npt.NDArray[np.float32] = self._src.read(n)
        if len(out) != n:  # the source never ends, so libsamplerate always fills the block
            raise RuntimeError(f"resampler produced {len(out)} of {n} frames")
        return out.reshape(n, self._channels)
