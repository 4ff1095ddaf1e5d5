"""Test signals, and how to compare what arrived with what was sent.

A signal is written `KIND:ARGS`: `chirp:SECONDS` (a 200 Hz -> 5 kHz sweep with a little
noise: one unambiguous peak when aligned by correlation), `noise:SECONDS` (16-bit random
samples: exact through L16), `sine:HZ:SECONDS`, `silence:SECONDS`; anything else is a
file path. Each is padded with 0.2 s of silence (the end of a playback can be cut).

`compare` aligns a recording with what was sent (cross-correlation) and measures it:
correlation (normalised, 1.0 for the same waveform at any level), SNR after alignment,
the offset, and the silent gaps inside the signal's span; `tone` measures a recording of
a sine (its frequency, its SNR from the spectrum, the share of its energy at that tone).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "Frames",
    "Signal",
    "SignalError",
    "align",
    "chirp",
    "compare",
    "parse_signal",
    "quantise_l16",
    "sine_snr_db",
    "snr_db",
    "tone",
    "tones",
]

Frames = npt.NDArray[np.float32]

PAD_S: Final = 0.2  # silence after each rendered signal
_BLOCK_S: Final = 0.01  # the unit of gap detection
_SILENT: Final = 1e-4  # RMS below this is silence (-80 dBFS)
_MAX_SECONDS: Final = 600.0


class SignalError(ValueError):
    pass


@dataclass(frozen=True)
class Signal:
    kind: str  # chirp | noise | sine | silence | file
    seconds: float = 0.0
    freq: float = 0.0
    path: str = ""

    def render(self, rate: int, channels: int, seed: int = 7) -> Frames:
        """The samples (float32, L16-exact for noise), padded with silence."""
        if self.kind == "chirp":
            body = chirp(self.seconds, rate, channels, seed)
        elif self.kind == "noise":
            rng = np.random.default_rng(seed)
            pcm = rng.integers(-12000, 12000, (round(self.seconds * rate), channels))
            body = (pcm.astype(np.float32) / 32768).astype(np.float32)
        elif self.kind == "sine":
            t = np.arange(round(self.seconds * rate)) / rate
            mono = np.round(0.4 * np.sin(2 * np.pi * self.freq * t) * 32768) / 32768
            body = np.repeat(mono[:, None], channels, axis=1).astype(np.float32)
        elif self.kind == "silence":
            body = np.zeros((round(self.seconds * rate), channels), np.float32)
        else:
            raise SignalError(f"{self.path}: a file, not a generated signal")
        pad = np.zeros((round(PAD_S * rate), channels), np.float32)
        return np.concatenate([body, pad]).astype(np.float32)


def parse_signal(text: str) -> Signal:
    """`KIND:ARGS` as in the module docstring, or a file path; SignalError names the
    fault."""
    kind, _, args = text.partition(":")
    if kind not in ("chirp", "noise", "sine", "silence"):
        if not text.strip():
            raise SignalError("an empty signal")
        return Signal("file", path=text)
    parts = args.split(":") if args else []
    want = 2 if kind == "sine" else 1
    if len(parts) != want:
        usage = "sine:HZ:SECONDS" if kind == "sine" else f"{kind}:SECONDS"
        raise SignalError(f"{text!r}: expected {usage}")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise SignalError(f"{text!r}: not a number") from None
    seconds = numbers[-1]
    if not 0 < seconds <= _MAX_SECONDS:
        raise SignalError(f"{text!r}: seconds must be in (0, {_MAX_SECONDS:g}]")
    freq = numbers[0] if kind == "sine" else 0.0
    if kind == "sine" and not 20 <= freq <= 20000:
        raise SignalError(f"{text!r}: frequency must be in [20, 20000] Hz")
    return Signal(kind, seconds=seconds, freq=freq)


def chirp(seconds: float, rate: int = 44100, channels: int = 2, seed: int = 0) -> Frames:
    """A 200 Hz -> 5 kHz sweep with a little noise: unambiguous to align by correlation."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    f0, f1 = 200.0, 5000.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    noise = np.random.default_rng(seed).normal(0, 0.01, n)
    left = 0.5 * np.sin(phase) + noise
    cols = [left, -0.7 * left][:channels]
    return np.stack(cols, axis=1).astype(np.float32)


def quantise_l16(frames: Frames) -> Frames:
    """What L16 makes of float samples (Roc's rule: truncate x * 32768, clip)."""
    q = np.clip(np.trunc(frames.astype(np.float64) * 32768), -32768, 32767)
    return (q / 32768).astype(np.float32)


def align(sent: Frames, received: Frames) -> int:
    """Offset of `sent` inside `received` (by cross-correlation of the first channel)."""
    a = sent[:, 0].astype(np.float64)
    b = received[:, 0].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    return int(np.argmax(corr[: len(b)]))


def snr_db(reference: npt.NDArray[np.floating], signal: npt.NDArray[np.floating]) -> float:
    err = signal.astype(np.float64) - reference.astype(np.float64)
    power = float(np.mean(reference.astype(np.float64) ** 2))
    noise = float(np.mean(err**2))
    return float("inf") if noise == 0 else float(10 * np.log10(power / noise))


def sine_snr_db(signal: npt.NDArray[np.floating], freq: float, rate: int = 44100) -> float:
    """Signal-to-(noise + distortion) of a sine, from its spectrum: power within +-20 Hz of
    `freq` against everything else above 20 Hz. Unlike a sample-by-sample comparison this
    does not count a slowly varying delay (what drift compensation does on purpose) as
    noise, only what a resampler adds: aliasing, imaging, distortion, clicks."""
    x = np.asarray(signal, dtype=np.float64)
    window = np.blackman(len(x))
    spectrum = np.abs(np.fft.rfft(x * window)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    near = np.abs(freqs - freq) <= 20
    rest = (~near) & (freqs > 20)
    return float(10 * np.log10(spectrum[near].sum() / max(spectrum[rest].sum(), 1e-30)))


def _rms_blocks(x: npt.NDArray[np.float64], block: int) -> npt.NDArray[np.float64]:
    n = len(x) // block
    if n == 0:
        return np.zeros(0)
    blocks = x[: n * block].reshape(n, block)
    return np.asarray(np.sqrt(np.mean(blocks**2, axis=1)))


def _finite(value: float) -> float:
    """JSON has no infinity: a perfect SNR is reported as 999 dB."""
    return 999.0 if math.isinf(value) and value > 0 else round(value, 3)


def local_correlation(
    sent: npt.NDArray[np.float64],
    received: npt.NDArray[np.float64],
    offset: int,
    rate: int,
    window_s: float = 0.02,
    search_s: float = 0.01,
) -> float:
    """The lowest, over the 20 ms windows of `sent` that are not silent, of each
    window's best normalised correlation with `received` near where it is expected
    (within +-10 ms of the previous window's place). Unlike one correlation over the
    whole signal it does not count a slowly changing delay (a latency tuner walking to a
    new target, drift compensation) against the audio, only what breaks it: gaps,
    concealment, glitches, noise."""
    window, search = round(window_s * rate), round(search_s * rate)
    shift = 0
    scores = []
    for start in range(0, len(sent) - window + 1, window):
        piece = sent[start : start + window]
        energy = float(np.dot(piece, piece))
        if energy < window * _SILENT**2:
            continue
        lo = offset + start + shift - search
        first = max(lo, 0)
        region = received[first : offset + start + shift + window + search]
        if len(region) < window:
            scores.append(0.0)
            continue
        size = 1 << int(np.ceil(np.log2(len(region) + window)))
        corr = np.fft.irfft(np.fft.rfft(region, size) * np.conj(np.fft.rfft(piece, size)), size)
        lags = len(region) - window + 1
        sq = np.concatenate([[0.0], np.cumsum(region**2)])
        energies = sq[window : window + lags] - sq[:lags]
        norm = np.sqrt(np.maximum(energies, 1e-30) * energy)
        values = corr[:lags] / norm
        best = int(np.argmax(values))
        scores.append(float(values[best]))
        shift = first + best - (offset + start)
    return min(scores) if scores else 0.0


def compare(sent: Frames, received: Frames, rate: int) -> dict[str, float]:
    """How `received` (a recording) holds `sent`: `offset_s` of `sent` in it,
    `correlation` (normalised, over the aligned span), `local_correlation` (window by
    window, see `local_correlation`), `snr_db` (sample by sample after alignment),
    `gaps_ms` (silent 10 ms blocks in the span where `sent` plays), `missing_ms` (the
    part of `sent` past the recording's end), `level_db` (RMS)."""
    channels = min(sent.shape[1], received.shape[1])
    sent, received = sent[:, :channels], received[:, :channels]
    if len(received) == 0 or not np.any(received):
        return {"correlation": 0.0, "local_correlation": 0.0, "snr_db": -999.0,
                "offset_s": -1.0, "gaps_ms": -1.0,
                "missing_ms": round(len(sent) / rate * 1000, 1), "level_db": -999.0}  # fmt: skip
    offset = align(sent, received)
    got = received[offset : offset + len(sent)].astype(np.float64)
    ref = sent[: len(got)].astype(np.float64)
    norm = float(np.sqrt(np.sum(ref**2) * np.sum(got**2)))
    correlation = float(np.sum(ref * got) / norm) if norm > 0 else 0.0
    block = max(1, round(_BLOCK_S * rate))
    playing = _rms_blocks(ref[:, 0], block) > _SILENT
    silent = _rms_blocks(got[:, 0], block) <= _SILENT
    gaps = int(np.sum(playing & silent))
    level = float(np.sqrt(np.mean(got**2))) if len(got) else 0.0
    local = local_correlation(
        sent[:, 0].astype(np.float64), received[:, 0].astype(np.float64), offset, rate
    )
    return {
        "correlation": round(correlation, 5),
        "local_correlation": round(local, 5),
        "snr_db": _finite(snr_db(ref, got)),
        "offset_s": round(offset / rate, 4),
        "gaps_ms": gaps * _BLOCK_S * 1000,
        "missing_ms": round((len(sent) - len(got)) / rate * 1000, 1),
        "level_db": _finite(20 * math.log10(level)) if level > 0 else -999.0,
    }


def tone(received: Frames, freq: float, rate: int) -> dict[str, float]:
    """How `received` holds a sine at `freq` Hz, over its sounding part: `frequency_hz`
    (the strongest), `snr_db` (spectral), `correlation` (the share of the energy within
    20 Hz of `freq`), `onset_s` (where sound starts), `gaps_ms` (silent 10 ms blocks
    between its first and last sound), `duration_s` and `level_db`."""
    mono = received[:, 0].astype(np.float64) if len(received) else np.zeros(0)
    block = max(1, round(_BLOCK_S * rate))
    loud = _rms_blocks(mono, block) > _SILENT
    if not np.any(loud):
        return {"frequency_hz": 0.0, "snr_db": -999.0, "correlation": 0.0, "onset_s": -1.0,
                "gaps_ms": -1.0, "duration_s": 0.0, "level_db": -999.0}  # fmt: skip
    first, last = int(np.argmax(loud)), len(loud) - 1 - int(np.argmax(loud[::-1]))
    body = mono[first * block : (last + 1) * block]
    spectrum = np.abs(np.fft.rfft(body * np.blackman(len(body)))) ** 2
    freqs = np.fft.rfftfreq(len(body), 1 / rate)
    near = np.abs(freqs - freq) <= 20
    total = float(spectrum[freqs > 20].sum())
    level = float(np.sqrt(np.mean(body**2)))
    return {
        "frequency_hz": round(float(freqs[int(np.argmax(spectrum))]), 1),
        "snr_db": _finite(sine_snr_db(body, freq, rate)),
        "correlation": round(float(spectrum[near].sum()) / total, 5) if total else 0.0,
        "onset_s": round(first * _BLOCK_S, 3),
        "gaps_ms": float(np.sum(~loud[first : last + 1])) * _BLOCK_S * 1000,
        "duration_s": round((last + 1 - first) * _BLOCK_S, 3),
        "level_db": _finite(20 * math.log10(level)) if level > 0 else -999.0,
    }


def tones(received: Frames, freqs: list[float], rate: int) -> dict[str, float | list[float]]:
    """How `received` holds several sines mixed (the last 1.5 s of its sounding part, or
    all of it): `tones_db` (each one's power within 15 Hz against the median power per
    bin above 50 Hz, in the order given), `tones_spread_db` (strongest over weakest),
    `peak` (the largest sample), and `tone`'s measures for the first."""
    first = tone(received, freqs[0], rate)
    mono = received[:, 0].astype(np.float64) if len(received) else np.zeros(0)
    loud = np.nonzero(np.abs(mono) > _SILENT)[0]
    if len(loud) == 0:
        return {**first, "tones_db": [-999.0] * len(freqs), "tones_spread_db": 999.0, "peak": 0.0}
    body = mono[loud[0] : loud[-1] + 1][-round(1.5 * rate) :]
    spectrum = np.abs(np.fft.rfft(body * np.blackman(len(body)))) ** 2
    bins = np.fft.rfftfreq(len(body), 1 / rate)
    floor = max(float(np.median(spectrum[bins > 50])), 1e-30)
    powers = [max(float(spectrum[np.abs(bins - f) <= 15].sum()), 1e-30) for f in freqs]
    return {
        **first,
        "tones_db": [round(10 * math.log10(p / floor), 2) for p in powers],
        "tones_spread_db": round(10 * math.log10(max(powers) / min(powers)), 2),
        "peak": round(float(np.max(np.abs(body))), 4),
    }


def read_signal_file(path: Path) -> tuple[Frames, int]:
    """A sound file's samples (float32, frames x channels) and rate."""
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise SignalError(f"{path}: {exc}") from None
    return np.asarray(data, dtype=np.float32), int(rate)


def signal_name(text: str) -> str:
    """A file name for a signal spec ("sine:440:2" -> "sine-440-2.wav")."""
    return re.sub(r"[^\w.\-]+", "-", text).strip("-") + ".wav"
