"""Test signals and how to compare what arrived with what was sent."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rocd.scenario._signals import align, chirp, quantise_l16, sine_snr_db, snr_db

__all__ = [
    "Frames",
    "align",
    "assert_exact_stream",
    "assert_same_audio",
    "chirp",
    "quantise_l16",
    "s16_noise",
    "sine",
    "sine_snr_db",
    "snr_db",
    "tone_windows",
    "whole_fec_blocks",
]

Frames = npt.NDArray[np.float32]

TONE_HZ = 440.0
"""What the tone driver's `tone:sine` plays (at half of full scale)."""


def sine(seconds: float, freq: float = 1000.0, rate: int = 44100, channels: int = 2) -> Frames:
    t = np.arange(round(seconds * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.repeat(tone[:, None], channels, axis=1).astype(np.float32)


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


def tone_windows(x: Frames, rate: int = 44100) -> npt.NDArray[np.bool_]:
    """Per 10 ms window: does it hold the `tone:sine` tone (>= 90% of its energy at
    TONE_HZ, at least half the tone's level)."""
    mono = x[:, 0].astype(np.float64)
    win = rate // 100
    n = len(mono) // win
    frames = mono[: n * win].reshape(n, win)
    t = np.arange(win) / rate
    c, s = np.cos(2 * np.pi * TONE_HZ * t), np.sin(2 * np.pi * TONE_HZ * t)
    tone = ((frames @ c) ** 2 + (frames @ s) ** 2) * 2 / win
    energy = (frames**2).sum(axis=1)
    level = 0.5 * 0.5**2 * win
    return np.asarray((tone >= 0.9 * energy) & (energy >= 0.25 * level))
