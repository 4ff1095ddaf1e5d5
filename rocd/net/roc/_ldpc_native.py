"""The compiled core of the LDPC-Staircase decoder, when it is built (optional).

`_ldpc_native.c` runs the decoder's peeling and Gaussian elimination in C: measured with
`python -m bench.ldpc_decoders`, 2-6 times faster than numpy, so it takes on every unknown
that peeling leaves (numpy stops at `ML_MAX_UNKNOWNS` to keep within a few ms). It is a
plain shared library loaded with ctypes: `_ldpc_native.build()` compiles it next to this
file with the system's C compiler (scripts/setup.sh does). Without it the
numpy decoder runs; both give the same packets wherever numpy's cap is not reached.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ._native import NativeLibrary

__all__ = ["available", "build", "decode"]

_NATIVE = NativeLibrary("ldpc_native", "-O3")


def _load() -> ctypes.CDLL | None:
    lib = _NATIVE.load()
    if lib is None:
        return None
    lib.ldpc_decode.restype = ctypes.c_int
    lib.ldpc_decode.argtypes = [ctypes.c_int] * 3 + [ctypes.c_void_p] * 6
    return lib


_LIB = _load()


def available() -> bool:
    """Whether the compiled decoder is loaded."""
    return _LIB is not None


def decode(
    eq_sources: npt.NDArray[np.uint8],
    k: int,
    length: int,
    symbols: Mapping[int, bytes],
    repairs: list[int],
) -> dict[int, bytes]:
    """Lost sources that the reduced equations `eq_sources` (one per received repair
    symbol `repairs[i]`, K columns) determine, from the received `symbols`."""
    assert _LIB is not None
    words = -(-length // 8)
    esis = list(symbols)
    table = np.zeros((len(esis), words), dtype=np.uint64)
    table.view(np.uint8)[:, :length] = np.frombuffer(
        b"".join([symbols[e] for e in esis]), dtype=np.uint8
    ).reshape(len(esis), length)
    base = table.ctypes.data
    stride = table.strides[0]
    row = {e: base + i * stride for i, e in enumerate(esis)}
    e_count = len(repairs)
    known = (ctypes.c_void_p * k)(*[row.get(s) for s in range(k)])
    rep_a = (ctypes.c_void_p * e_count)(*[row[k + j] for j in repairs])
    rep_b = (ctypes.c_void_p * e_count)(*[None] + [row[k + j] for j in repairs[:-1]])
    eq = np.ascontiguousarray(eq_sources, dtype=np.uint8)
    out = np.zeros((k, words), dtype=np.uint64)
    done = np.zeros(k, dtype=np.uint8)
    _LIB.ldpc_decode(
        e_count, k, words, eq.ctypes.data, known, rep_a, rep_b, out.ctypes.data,
        done.ctypes.data,
    )  # fmt: skip
    raw = out.view(np.uint8)[:, :length]
    return {int(s): raw[s].tobytes() for s in np.flatnonzero(done)}


def build() -> Path:
    """Compile the library (see `NativeLibrary.build`)."""
    return _NATIVE.build()
