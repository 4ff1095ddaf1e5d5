"""Resampler candidates for drift compensation: `python -m bench.resampler`.

A sine (1, 5, 12, 18, 20 kHz, 44.1 kHz stereo) goes through each candidate at ratio 1.0005
(output / input rate) in 10 ms frames; SNR = the sine fitted to the output (amplitude and
phase free, at the expected frequency) against what is left, over the steady part. CPU =
process time per 441-sample output frame. The figures chose `rocd.net.roc.Resampler`'s backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import samplerate
import soxr

from rocd.net.roc import Resampler

RATE = 44100
RATIO = 1.0005
FRAME = 441
SECONDS = 3
Signal = npt.NDArray[np.float32]


def _sine(freq: float) -> Signal:
    t = np.arange(SECONDS * RATE) / RATE
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([x, -0.7 * x], axis=1).astype(np.float32)


def _snr_db(out: Signal, freq: float) -> float:
    y = out[RATE // 2 : -RATE // 2, 0].astype(np.float64)
    n = np.arange(len(y))
    w = 2 * np.pi * freq / (RATE * RATIO)
    basis = np.stack([np.sin(w * n), np.cos(w * n), np.ones(len(n))], axis=1)
    coeffs, *_ = np.linalg.lstsq(basis, y, rcond=None)
    fitted = basis @ coeffs
    return float(10 * np.log10(np.sum(fitted**2) / np.sum((y - fitted) ** 2)))


class _Pull:
    """`x` handed out in order, `n` frames per call (`chunk` when n is not given)."""

    def __init__(self, x: Signal, chunk: int = 256) -> None:
        self.x = x
        self.pos = 0
        self.chunk = chunk

    def __call__(self, n: int | None = None) -> Signal:
        n = self.chunk if n is None else n
        piece = self.x[self.pos : self.pos + n]
        self.pos += n
        return piece


def _timed(read: Callable[[int], Signal], pull: _Pull) -> tuple[Signal, float]:
    """Output frames read until the input is nearly used up, and CPU per frame."""
    frames = []
    t0 = time.process_time()
    while pull.pos < len(pull.x) - 2 * FRAME:
        frames.append(read(FRAME))
    cpu = time.process_time() - t0
    return np.concatenate(frames), cpu / len(frames)


def _libsamplerate(converter: str) -> Callable[[Signal], tuple[Signal, float]]:
    def run(x: Signal) -> tuple[Signal, float]:
        pull = _Pull(x)
        return _timed(samplerate.CallbackResampler(pull, RATIO, converter, 2).read, pull)

    return run


def _compiled(x: Signal) -> tuple[Signal, float]:
    pull = _Pull(x)
    src = Resampler(pull, 2, RATIO)
    assert src.backend == "native", "scripts/setup.sh builds the compiled resampler"
    return _timed(src.read, pull)


def _soxr_vr(x: Signal) -> tuple[Signal, float]:
    # Variable-rate mode: the constructor's ratio is the largest one that will be used.
    stream = soxr.ResampleStream(1.0, 1.01, 2, dtype="float32", quality="HQ", vr=True)
    stream.set_io_ratio(1.0, RATIO, 0)
    frames = []
    t0 = time.process_time()
    for i in range(0, len(x), FRAME):
        frames.append(stream.resample_chunk(x[i : i + FRAME]))
    cpu = time.process_time() - t0
    return np.concatenate(frames), cpu / len(frames)


def main() -> None:
    candidates: dict[str, Callable[[Signal], tuple[Signal, float]]] = {
        "compiled (rocd default)": _compiled,
        "libsamplerate sinc_fastest": _libsamplerate("sinc_fastest"),
        "libsamplerate sinc_medium": _libsamplerate("sinc_medium"),
        "libsamplerate linear": _libsamplerate("linear"),
        "python-soxr vr (HQ)": _soxr_vr,
    }
    freqs = (1000.0, 5000.0, 12000.0, 18000.0, 20000.0)
    signals = {f: _sine(f) for f in freqs}
    print(f"ratio {RATIO}, {RATE} Hz stereo, {FRAME}-sample output frames")
    print(f"  {'candidate':28} " + " ".join(f"{f / 1000:>6.0f}k" for f in freqs) + "  us/frame")
    for name, run in candidates.items():
        snrs = []
        cpus = []
        for f in freqs:
            out, cpu = run(signals[f])
            snrs.append(_snr_db(out, f))
            cpus.append(cpu)
        row = " ".join(f"{s:6.1f}dB" for s in snrs)
        print(f"  {name:28} {row}  {min(cpus) * 1e6:6.1f}")


if __name__ == "__main__":
    main()
