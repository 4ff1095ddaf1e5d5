"""What the audio checks measure, on made-up recordings."""

from __future__ import annotations

import numpy as np

from rocd.scenario._names import AUDIO_COMPARE, AUDIO_TONE, AUDIO_TONES
from rocd.scenario._signals import chirp, compare, parse_signal, tone, tones

RATE = 44100
SENT = chirp(2.0, RATE)
PAD = np.zeros((4410, 2), np.float32)


def recorded(frames: np.ndarray) -> np.ndarray:
    return np.concatenate([PAD, frames, PAD]).astype(np.float32)


def warped(frames: np.ndarray, ppm: float) -> np.ndarray:
    factor = 1 + ppm / 1e6
    t = np.arange(int(len(frames) * factor)) / factor
    cols = [np.interp(t, np.arange(len(frames)), frames[:, c]) for c in range(2)]
    return np.stack(cols, axis=1).astype(np.float32)


def test_the_same_audio_later() -> None:
    got = compare(SENT, recorded(SENT), RATE)
    assert got["offset_s"] == 0.1
    assert got["correlation"] == got["local_correlation"] == 1.0
    assert got["snr_db"] == 999.0  # exact
    assert got["gaps_ms"] == got["missing_ms"] == 0


def test_a_slow_warp_spoils_the_whole_but_not_the_windows() -> None:
    got = compare(SENT, recorded(warped(SENT, 500)), RATE)
    assert got["correlation"] < 0.9
    assert got["local_correlation"] > 0.98


def test_a_gap_is_found() -> None:
    holed = recorded(SENT)
    holed[4410 + RATE : 4410 + RATE + 2205] = 0  # 50 ms of silence
    got = compare(SENT, holed, RATE)
    assert got["gaps_ms"] >= 40
    assert got["local_correlation"] < 0.5


def test_a_cut_end_is_missing() -> None:
    got = compare(SENT, recorded(SENT)[: 4410 + RATE], RATE)
    assert got["missing_ms"] == 1000.0


def test_silence_measures_as_nothing() -> None:
    got = compare(SENT, np.zeros((RATE, 2), np.float32), RATE)
    assert got["correlation"] == 0.0
    assert got["offset_s"] == -1.0


def test_tones() -> None:
    sine = parse_signal("sine:1000:1").render(RATE, 2)
    got = tone(recorded(sine), 1000, RATE)
    assert got["frequency_hz"] == 1000.0
    assert got["snr_db"] > 60
    assert got["onset_s"] == 0.1
    assert got["gaps_ms"] == 0
    mixed = sine + parse_signal("sine:440:1").render(RATE, 2)
    both = tones(recorded(mixed), [440, 1000, 2500], RATE)
    db = both["tones_db"]
    assert isinstance(db, list)
    assert db[0] > 60
    assert db[1] > 60
    assert db[2] < db[0] - 40  # not played
    spread = both["tones_spread_db"]
    assert isinstance(spread, float)
    assert spread > 40


def test_the_measures_are_the_names_scenario_check_knows() -> None:
    silence = np.zeros((RATE, 2), np.float32)
    for got in (compare(SENT, recorded(SENT), RATE), compare(SENT, silence, RATE)):
        assert set(got) == AUDIO_COMPARE
    sine = recorded(parse_signal("sine:1000:1").render(RATE, 2))
    for got in (tone(sine, 1000, RATE), tone(silence, 1000, RATE)):
        assert set(got) == AUDIO_TONE
    for mixed in (tones(sine, [440, 1000], RATE), tones(silence, [440, 1000], RATE)):
        assert set(mixed) == AUDIO_TONES
