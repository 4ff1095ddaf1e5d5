"""Sample specs and the frame convention every audio module shares.

A block of audio ("frames") is a C-contiguous numpy float32 array shaped
(frames, channels), samples in [-1.0, 1.0). One frame is one sample per channel. Counts
called "frames" are per channel (a 10 ms block of 48 kHz stereo is 480 frames, 960 samples).
Float32 holds every 16- and 24-bit PCM value exactly, so s16 -> float -> s16 is bit-exact.
"""

from typing import Final

import msgspec
import numpy as np
from numpy.typing import NDArray

Frames = NDArray[np.float32]
"""A block of audio: float32, shape (frames, channels)."""

MAX_VOLUME: Final = 1.5
"""Highest volume a device accepts (1.0 is nominal, as 100 % in a sound server's mixer)."""

_S16_SCALE: Final = 32768.0


class SampleSpec(msgspec.Struct, frozen=True):
    """The rate (frames per second) and channel count of a stream or device."""

    rate: int = 48000
    channels: int = 2

    def __post_init__(self) -> None:
        if not 1000 <= self.rate <= 768000:
            raise ValueError(f"sample rate {self.rate} Hz is out of range")
        if not 1 <= self.channels <= 32:
            raise ValueError(f"channel count {self.channels} is out of range")

    def frames_for(self, seconds: float) -> int:
        """Frames in `seconds` of audio, rounded down."""
        return int(self.rate * seconds)

    def duration(self, frames: int) -> float:
        """Seconds of audio in `frames` frames."""
        return frames / self.rate

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one float32 frame (all channels)."""
        return 4 * self.channels


def silence(spec: SampleSpec, frames: int) -> Frames:
    """`frames` frames of digital silence."""
    return np.zeros((frames, spec.channels), np.float32)


def as_frames(data: object, spec: SampleSpec) -> Frames:
    """`data` checked and converted to the frame convention for `spec`.

    Accepts a (frames, channels) array of any real dtype, or a 1-D array for mono.
    Raises ValueError when the shape does not match the spec.
    """
    arr = np.asarray(data)
    if arr.ndim == 1 and spec.channels == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != spec.channels:
        raise ValueError(f"frames of shape {arr.shape} do not fit {spec.channels} channel(s)")
    return np.ascontiguousarray(arr, dtype=np.float32)


def frames_from_bytes(data: bytes | bytearray | memoryview, channels: int) -> Frames:
    """Frames from packed native float32 samples (the length must be whole frames)."""
    return np.frombuffer(data, dtype=np.float32).reshape(-1, channels)


def frames_to_s16(frames: Frames) -> NDArray[np.int16]:
    """Frames as 16-bit PCM: scaled by 32768, rounded, clipped to the int16 range."""
    scaled = np.rint(frames * _S16_SCALE)
    pcm: NDArray[np.int16] = np.clip(scaled, -32768, 32767).astype(np.int16)
    return pcm


def frames_from_s16(pcm: NDArray[np.int16]) -> Frames:
    """16-bit PCM as frames (exact: every int16 value maps to one float32)."""
    return (pcm.astype(np.float32) / np.float32(_S16_SCALE)).astype(np.float32)


def check_volume(volume: float) -> float:
    """`volume` as a float, or ValueError when it is outside 0..MAX_VOLUME."""
    if not 0.0 <= volume <= MAX_VOLUME:
        raise ValueError(f"volume {volume} is outside 0..{MAX_VOLUME}")
    return float(volume)


def volume_to_amplitude(volume: float) -> float:
    """The linear gain of a volume level.

    Volumes follow PulseAudio's scale (1.0 = 100 % = 0 dB; amplitude = volume cubed), so a
    software-gain device at 0.5 sounds as quiet as a sound-server device at 50 %.
    """
    return volume**3


def apply_gain(frames: Frames, volume: float, mute: bool) -> Frames:
    """Frames with a device's volume and mute applied (the input when neither changes it)."""
    if mute:
        return np.zeros_like(frames)
    if volume == 1.0:
        return frames
    return (frames * np.float32(volume_to_amplitude(volume))).astype(np.float32)
