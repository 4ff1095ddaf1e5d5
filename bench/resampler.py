"""Resampler candidates for drift compensation: `python -m bench.resampler`.

A sine (1, 5, 12, 18 kHz, 44.1 kHz stereo) goes through each candidate at ratio 1.0005
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


def _libsamplerate(converter: str) -> Callable[[Signal], tuple[Signal, float]]:
    def run(x: Signal) -> tuple[Signal, float]:
        pos = 0

        def pull() -> Signal:
            nonlocal pos
            chunk = x[pos : pos + 256]
            pos += 256
            return chunk

        src = samplerate.CallbackResampler(pull, RATIO, converter, 2)
        frames = []
        t0 = time.process_time()
        while pos < len(x) - 2 * FRAME:
            frames.append(src.read(FRAME))
        cpu = time.process_time() - t0
        return np.concatenate(frames), cpu / len(frames)

    return run


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
        "libsamplerate sinc_fastest": _libsamplerate("sinc_fastest"),
        "libsamplerate sinc_medium": _libsamplerate("sinc_medium"),
        "libsamplerate linear": _libsamplerate("linear"),
        "python-soxr vr (HQ)": _soxr_vr,
    }
    freqs = (1000.0, 5000.0, 12000.0, 18000.0)
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
