"""The drift-compensation resampler, both backends: the compiled filter (built by
scripts/setup.sh) and libsamplerate's sinc_fastest."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rocd.net.roc import Resampler, ResamplerQuality, _resample_native

RATE = 44100
BACKENDS = [None, ResamplerQuality.FASTEST]
"""None: the default (the compiled filter, which setup builds)."""


class Sine:
    """A stereo sine as a pulled source, counting what was pulled."""

    def __init__(self, freq: float) -> None:
        self.freq = freq
        self.position = 0

    def __call__(self, n: int) -> npt.NDArray[np.float32]:
        t = (self.position + np.arange(n)) / RATE
        self.position += n
        x = 0.5 * np.sin(2 * np.pi * self.freq * t)
        return np.stack([x, -x], axis=1).astype(np.float32)


def snr_db(y: npt.NDArray[np.float32], freq: float, ratio: float) -> float:
    """The sine at `freq` (output rate RATE * ratio) fitted to `y` against the rest."""
    y64 = y.astype(np.float64)
    n = np.arange(len(y64))
    w = 2 * np.pi * freq / (RATE * ratio)
    basis = np.stack([np.sin(w * n), np.cos(w * n)], axis=1)
    coeffs, *_ = np.linalg.lstsq(basis, y64, rcond=None)
    fitted = basis @ coeffs
    return float(10 * np.log10(np.sum(fitted**2) / np.sum((y64 - fitted) ** 2)))


def test_setup_builds_the_compiled_filter_and_it_is_the_default() -> None:
    assert _resample_native.available(), "scripts/setup.sh builds the compiled resampler"
    assert Resampler(Sine(1000), 2, 1.0).backend == "native"
    assert Resampler(Sine(1000), 2, 1.0, quality=ResamplerQuality.FASTEST).backend == (
        "sinc_fastest"
    )


def test_loading_the_compiled_filter_leaves_subnormal_numbers_alone() -> None:
    """Built with -ffast-math, a shared library turns on flush-to-zero for the whole
    process when it loads (other code, hypothesis among it, then computes wrong)."""
    assert _resample_native.available()
    tiny = np.nextafter(np.float64(0), np.float64(1))
    assert tiny * np.float64(1.0) > 0
    assert np.nextafter(np.float32(0), np.float32(1)) * np.float32(1.0) > 0


@pytest.mark.parametrize("quality", BACKENDS)
def test_resampler_outputs_exactly_what_is_asked_and_is_clean(
    quality: ResamplerQuality | None,
) -> None:
    freq, ratio = 997.0, 1.0005
    source = Sine(freq)
    resampler = Resampler(source, 2, ratio, quality=quality)
    out = np.concatenate([resampler.read(n) for n in [441] * 300 + [1, 7, 1000]])
    assert out.shape == (441 * 300 + 1008, 2)
    assert source.position == pytest.approx(len(out) / ratio, abs=600)  # reads ahead a little
    assert snr_db(out[2000:, 0], freq, ratio) > 90
    np.testing.assert_allclose(out[2000:, 1], -out[2000:, 0], atol=1e-6)  # channels apart
    # Changing the ratio does not make a step.
    resampler.ratio = 0.999
    assert resampler.ratio == pytest.approx(0.999)
    more = resampler.read(441)[:, 0]
    joined = np.concatenate((out[-10:, 0], more[:10]))
    assert np.abs(np.diff(joined)).max() < 0.5 * 2 * np.pi * freq / RATE * 1.05
    with pytest.raises(ValueError, match="ratio"):
        resampler.ratio = 0.0


@pytest.mark.parametrize("freq", [1000.0, 5000.0, 12000.0, 18000.0])
def test_the_compiled_filter_is_cleaner_than_sixteen_bits_to_18_khz(freq: float) -> None:
    ratio = 1.0005
    source = Sine(freq)
    resampler = Resampler(source, 2, ratio)
    out = np.concatenate([resampler.read(441) for _ in range(200)])
    y = out[RATE // 4 :, 0]
    assert snr_db(y, freq, ratio) > 100
    amplitude = np.sqrt(2 * np.mean(y.astype(np.float64) ** 2))
    assert amplitude == pytest.approx(0.5, rel=0.01)  # flat pass band (within 0.1 dB)


def test_the_compiled_filter_removes_what_a_lower_output_rate_cannot_carry() -> None:
    """48 kHz -> 44.1 kHz: the filter's cutoff follows the ratio, so a 23 kHz tone (above
    the output's Nyquist) does not fold back into the band."""
    source = Sine(23000.0)
    resampler = Resampler(source, 2, 44100 / 48000)
    out = np.concatenate([resampler.read(441) for _ in range(100)])
    assert np.sqrt(np.mean(out[4410:, 0].astype(np.float64) ** 2)) < 0.5 * 10 ** (-80 / 20)


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_the_compiled_filter_consumes_what_the_ramp_says(channels: int) -> None:
    """A ratio change ramps across one block: the block consumes n * (1/old + 1/new) / 2
    input frames (the receiver's latency accounting relies on it), for any channel count."""
    taken = 0

    def ramp(n: int) -> npt.NDArray[np.float32]:
        nonlocal taken
        values = np.arange(taken, taken + n, dtype=np.float32)
        taken += n
        return np.repeat(values[:, None], channels, axis=1)

    resampler = Resampler(ramp, channels, 1.0)
    consumed = 0.0
    old = 1.0
    for i, ratio in enumerate([1.0, 1.002, 0.998, 0.998, 1.0001] * 20):
        resampler.ratio = ratio
        out = resampler.read(441)
        consumed += 0.5 * 441 * (1 / old + 1 / ratio)
        old = ratio
        if i > 2:
            # A ramp is band-limited: the output is the input position it was read at,
            # so the next output frame sits at the consumed position.
            assert out[-1, 0] + 1 / ratio == pytest.approx(consumed, abs=0.02)
            assert (out[-1] == out[-1, 0]).all()
    assert taken - consumed < 40  # reads ahead by half the filter


@settings(max_examples=40, deadline=None)
@given(
    blocks=st.lists(st.integers(1, 3000), min_size=1, max_size=20),
    ratios=st.lists(st.floats(0.9, 1.1), min_size=1, max_size=20),
)
def test_the_compiled_filter_gives_any_block_size_at_any_ratio(
    blocks: list[int], ratios: list[float]
) -> None:
    pulled: list[int] = []

    def silence(n: int) -> npt.NDArray[np.float32]:
        pulled.append(n)
        return np.zeros((n, 2), dtype=np.float32)

    resampler = Resampler(silence, 2, ratios[0])
    for i, n in enumerate(blocks):
        resampler.ratio = ratios[i % len(ratios)]
        out = resampler.read(n)
        assert out.shape == (n, 2)
        assert out.dtype == np.float32
        assert not out.any()
    assert all(n > 0 for n in pulled)


@pytest.mark.parametrize("ratio", [0.9, 1.1, 0.8, 1.25, 48000 / 44100])
def test_a_block_that_ends_on_a_whole_input_frame_is_given_what_it_needs(ratio: float) -> None:
    # At 0.9 a first block of 1396 ends exactly on input frame 1550: the compiled check
    # summed the positions in another order than `rs_need` (its AVX2 clone, with
    # associative maths) and found the input one frame short.
    for n in range(1, 2000, 3):
        resampler = Resampler(lambda k: np.zeros((k, 2), np.float32), 2, ratio)
        assert resampler.read(n).shape == (n, 2)


def test_a_source_that_gives_the_wrong_shape_is_refused() -> None:
    resampler = Resampler(lambda n: np.zeros((n + 1, 2), np.float32), 2, 1.0)
    with pytest.raises(ValueError, match="source gave"):
        resampler.read(441)
