"""Test signals and how to compare what arrived with what was sent."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Frames = npt.NDArray[np.float32]


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


def snr_db(reference: Frames, signal: Frames) -> float:
    err = signal.astype(np.float64) - reference.astype(np.float64)
    power = float(np.mean(reference.astype(np.float64) ** 2))
    noise = float(np.mean(err**2))
    return float("inf") if noise == 0 else 10 * np.log10(power / noise)


def sine(seconds: float, freq: float = 1000.0, rate: int = 44100, channels: int = 2) -> Frames:
    t = np.arange(round(seconds * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.repeat(tone[:, None], channels, axis=1).astype(np.float32)


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
    return float(10 * np.log10(spectrum[near].sum() / spectrum[rest].sum()))


def whole_fec_blocks(frames: Frames, packet: int = 221, block: int = 18) -> Frames:
    """The part of a stream that FEC protects: the last, incomplete block gets no repair
    packets (from Roc's sender either), so a loss there can only be concealed."""
    return frames[: (len(frames) // packet // block) * block * packet]


def assert_exact_stream(
    sent: Frames,
    received: Frames,
    trim: int = 441,
    expected_delay_s: tuple[float, float] = (0.0, 1.0),
) -> int:
    """`received` holds `sent` (L16-quantised) sample for sample, after silence.

    A receiver starts playing once it holds its target latency and drops the oldest
    excess to the sample (as Roc's does, by whole packets), so when more than a read
    period arrived at once before the start, up to `trim` samples (one 10 ms read) of the
    beginning may be missing, replaced by silence; nothing else may differ. Returns the
    offset of `sent` in `received`."""
    offset = align(sent, received)
    assert expected_delay_s[0] <= offset / 44100 <= expected_delay_s[1], offset
    expected = quantise_l16(sent)
    got = received[offset : offset + len(sent)]
    assert len(got) == len(expected), "the end of the stream is missing"
    assert not np.any(received[:offset]), "noise before the stream"
    differs = np.nonzero(np.any(got != expected, axis=1))[0]
    if len(differs):
        assert differs[-1] < trim, f"{len(differs)} samples differ, up to {differs[-1]}"
        assert not np.any(got[: differs[-1] + 1]), "a trimmed start must be silence"
    return offset


def s16_noise(seconds: float, rate: int = 48000, channels: int = 2, seed: int = 1) -> Frames:
    """Random 16-bit noise as floats (exact through float32 and s16 files), never 0 at
    the start, so its first sample can be found."""
    rng = np.random.default_rng(seed)
    pcm = rng.integers(-20000, 20000, (round(seconds * rate), channels), dtype=np.int16)
    pcm[0] = 12345
    return (pcm.astype(np.float32) / 32768).astype(np.float32)


def assert_same_audio(captured: Frames, expected: Frames) -> None:
    """`captured` holds `expected` somewhere, bit for bit or with an SNR above 90 dB."""
    offset = align(expected, captured)
    got = captured[offset : offset + len(expected)]
    assert len(got) == len(expected), f"signal cut short at offset {offset}"
    if not np.array_equal(got, expected):
        snr = snr_db(expected, got)
        assert snr > 90, f"SNR {snr:.1f} dB at offset {offset}"
