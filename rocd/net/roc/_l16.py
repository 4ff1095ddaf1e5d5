"""L16 payloads (signed 16-bit big-endian PCM, interleaved) <-> numpy frames.

Frames are 2-D arrays of shape (frames, channels). The float conversions are Roc's
(`roc_audio/pcm_format.cpp`): s16 -> float is s / 32768, float -> s16 is
trunc(x * 32768) clipped to [-32768, 32767], so a stream passed through rocd and roc
stays bit-exact. Everything is vectorised: one packet costs a few numpy calls.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._errors import MalformedPacket
from ._types import Buffer

_BE_S16 = np.dtype(">i2")
_SCALE = np.float32(32768.0)
_INV_SCALE = np.float32(1.0 / 32768.0)  # a power of two: s / 32768 exactly


def _samples(payload: Buffer, channels: int) -> npt.NDArray[np.int16]:
    """The big-endian samples of `payload` (a view, no copy), validated against `channels`."""
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if len(payload) % (2 * channels):
        raise MalformedPacket(
            f"L16 payload of {len(payload)} bytes is not a whole number of "
            f"{channels}-channel frames"
        )
    return np.frombuffer(payload, dtype=_BE_S16)


def decode_l16(payload: Buffer, channels: int) -> npt.NDArray[np.float32]:
    """Float32 frames in [-1, 1) of shape (frames, channels) from an L16 payload."""
    samples = _samples(payload, channels)
    out = np.empty(samples.shape, dtype=np.float32)
    np.multiply(samples, _INV_SCALE, out=out)
    return out.reshape(-1, channels)


def decode_l16_s16(payload: Buffer, channels: int) -> npt.NDArray[np.int16]:
    """Native-endian int16 frames of shape (frames, channels) from an L16 payload."""
    return _samples(payload, channels).astype(np.int16).reshape(-1, channels)


def encode_l16(frames: npt.NDArray[np.floating]) -> bytes:
    """The L16 payload of float frames of shape (frames, channels).

    Values are scaled by 32768, truncated toward zero and clipped, as Roc does; NaN
    becomes 0 (a silent sample rather than an error on the real-time path).
    """
    if frames.ndim != 2:
        raise ValueError(f"frames must be 2-D (frames, channels), got shape {frames.shape}")
    scaled = np.multiply(frames, _SCALE, dtype=np.float32)
    # Two ufuncs: np.clip's Python wrapper costs more than the clipping itself.
    np.minimum(scaled, 32767.0, out=scaled)
    np.maximum(scaled, -32768.0, out=scaled)
    scaled[np.isnan(scaled)] = 0.0
    payload: bytes = scaled.astype(_BE_S16).tobytes()
    return payload


def encode_l16_s16(frames: npt.NDArray[np.int16]) -> bytes:
    """The L16 payload of int16 frames of shape (frames, channels)."""
    if frames.ndim != 2:
        raise ValueError(f"frames must be 2-D (frames, channels), got shape {frames.shape}")
    if frames.dtype != np.int16:
        raise ValueError(f"frames must be int16, got {frames.dtype}")
    return frames.astype(_BE_S16).tobytes()
