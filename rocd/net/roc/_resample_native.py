"""The compiled drift-compensation resampler, when it is built (optional): `NativeResampler`.

Why: a receiving stream resamples every 10 ms frame (drift compensation), and with
libsamplerate's callback API that was the largest item of its CPU (about a fifth of a
receiving daemon's samples at 32 streams): the filter itself, plus a Python callback per
input chunk and copies on both sides. `_resample_native.c` is a windowed-sinc polyphase
filter over planar float32 (inner loops the compiler vectorises; an AVX2 clone is picked
at load time where the CPU has it), driven with three ctypes calls per frame: how many
input frames the block needs, push them, produce the block. One filter table is shared by
every stream with the same shape.

The filter: a Kaiser-windowed sinc of `HALF_TAPS` taps each side at a 1:1 ratio (more
when the ratio is below 1, so the cutoff can follow it), cut at `CUTOFF` of the lower
Nyquist, `PHASES` rows blended linearly. Measured with `python -m bench.resampler`; see
`Resampler` for the figures. It is a plain shared library loaded with ctypes: `build()`
compiles it next to this file with the system's C compiler (scripts/setup.sh does).
Without it `Resampler` runs libsamplerate.
"""

from __future__ import annotations

import ctypes
import functools
import math
import weakref
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ._native import NativeLibrary

__all__ = ["NativeResampler", "available", "build", "kernel"]

_NATIVE = NativeLibrary(
    "resample_native",
    "-O3",
    "-fno-math-errno",
    "-fassociative-math",
    "-fno-signed-zeros",
    "-fno-trapping-math",
)  # what vectorising the sums needs; not -ffast-math, which flushes subnormals process-wide

HALF_TAPS = 32
"""Taps each side of the output position at a ratio >= 1."""
PHASES = 256
"""Table rows per input sample (a position between two rows blends them linearly)."""
CUTOFF = 0.91
"""Pass band, as a fraction of the lower of the two Nyquist frequencies."""
BETA = 12.0
"""The Kaiser window's shape: stop band attenuation against transition width."""

_p = ctypes.c_void_p
_int = ctypes.c_int
_ssize = ctypes.c_ssize_t
_dbl = ctypes.c_double


def _load() -> ctypes.CDLL | None:
    lib = _NATIVE.load()
    if lib is None or not hasattr(lib, "rs_read"):  # not built, or built from an older source
        return None
    lib.rs_new.restype = _p
    lib.rs_new.argtypes = [_p, _int, _int, _int, _dbl]
    lib.rs_free.restype = None
    lib.rs_free.argtypes = [_p]
    lib.rs_need.restype = _ssize
    lib.rs_need.argtypes = [_p, _int, _dbl]
    lib.rs_read.restype = _int
    lib.rs_read.argtypes = [_p, _p, _ssize, _p, _int, _dbl]
    return lib


_LIB = _load()


def available() -> bool:
    """Whether the compiled resampler is loaded."""
    return _LIB is not None


build = _NATIVE.build
"""Compile the library next to this file (see `NativeLibrary.build`)."""


@functools.cache
def kernel(ratio_band: float) -> npt.NDArray[np.float32]:
    """The filter table for a cutoff at `ratio_band` (min(1, ratio)) times `CUTOFF`:
    PHASES + 1 rows of taps, row p for the fractional position p / PHASES, each row's sum
    1 (no ripple at DC). Cached: every stream with the same band shares one table."""
    half = math.ceil(HALF_TAPS / ratio_band)
    cut = CUTOFF * ratio_band
    taps = 2 * half
    frac = np.arange(PHASES + 1)[:, None] / PHASES
    x = frac + (half - 1) - np.arange(taps)[None, :]  # input samples from the position
    window = np.i0(BETA * np.sqrt(np.clip(1.0 - (x / half) ** 2, 0.0, None))) / np.i0(BETA)
    rows = cut * np.sinc(cut * x) * window
    rows /= rows.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(rows, dtype=np.float32)


def _address(array: npt.NDArray[np.float32]) -> int:
    """The address of a C-contiguous array's data (the fast way when it is writable)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array.data))
    except (TypeError, ValueError):  # read-only
        return int(array.ctypes.data)


class NativeResampler:
    """`Resampler`'s compiled backend: same contract (n frames out per `read`, the input
    pulled from `source(k)`, a new ratio ramped linearly across the next block)."""

    def __init__(
        self, source: Callable[[int], npt.NDArray[np.float32]], channels: int, ratio: float
    ) -> None:
        assert _LIB is not None
        self._source = source
        self._channels = channels
        self._table = kernel(min(1.0, ratio))  # referenced by the C state: kept alive here
        taps = self._table.shape[1]
        state = _LIB.rs_new(self._table.ctypes.data, taps, PHASES, channels, 1.0 / ratio)
        if not state:
            raise MemoryError("resampler state")
        weakref.finalize(self, _LIB.rs_free, state)
        self._need = functools.partial(_LIB.rs_need, state)
        self._read = functools.partial(_LIB.rs_read, state)
        self._next_step = 1.0 / ratio

    @property
    def ratio(self) -> float:
        return 1.0 / self._next_step

    @ratio.setter
    def ratio(self, value: float) -> None:
        self._next_step = 1.0 / value

    def read(self, n: int) -> npt.NDArray[np.float32]:
        step = self._next_step
        need: int = self._need(n, step)
        out = np.empty((n, self._channels), dtype=np.float32)
        if need:
            chunk = np.ascontiguousarray(self._source(need), dtype=np.float32)
            if chunk.shape != (need, self._channels):
                raise ValueError(f"source gave {chunk.shape}, not {(need, self._channels)}")
            status = self._read(_address(chunk), need, _address(out), n, step)
        else:
            status = self._read(None, 0, _address(out), n, step)
        if status == -2:
            raise MemoryError("resampler input")
        if status != 0:  # rs_need said what the block needs, and it was given
            raise RuntimeError("resampler input short of its block")
        return out
