"""RTP payload encodings: which payload type means which rate and channel count.

Roc 0.4 only speaks L16 (signed 16-bit big-endian PCM, interleaved). Payload types 10
(stereo) and 11 (mono) at 44100 Hz are built in; applications of Roc's C API may register
more (id 1..127, any rate, 1..1024 channels). Nothing is signalled on the wire, so both
peers must hold the same map.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import numpy as np

from ._errors import MalformedPacket

NS_PER_SECOND = 1_000_000_000

#: Bytes per L16 sample (one channel).
L16_SAMPLE_BYTES = 2

#: Largest channel count Roc's channel sets hold.
MAX_CHANNELS = 1024

_F32_NS_PER_SECOND = np.float32(NS_PER_SECOND)


class Encoding(msgspec.Struct, frozen=True):
    """One payload encoding: L16 big-endian PCM at `rate` Hz with `channels` channels."""

    payload_type: int
    rate: int  # Hz
    channels: int

    def __post_init__(self) -> None:
        if not 1 <= self.payload_type <= 127:
            raise ValueError(f"payload type must be in 1..127, got {self.payload_type}")
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {self.rate}")
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise ValueError(f"channels must be in 1..{MAX_CHANNELS}, got {self.channels}")

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame (one sample of every channel)."""
        return L16_SAMPLE_BYTES * self.channels

    def samples_per_packet(self, packet_length_ns: int) -> int:
        """Samples per channel in a packet of `packet_length_ns`, rounded as Roc does."""
        return samples_for_duration(packet_length_ns, self.rate)

    def payload_bytes(self, samples: int) -> int:
        """Payload size of a packet holding `samples` samples per channel."""
        return samples * self.frame_bytes

    def payload_samples(self, payload_len: int) -> int:
        """Samples per channel in a payload of `payload_len` bytes (RTP timestamp units).

        A length that is not a whole number of frames raises MalformedPacket.
        """
        frames, rest = divmod(payload_len, self.frame_bytes)
        if rest:
            raise MalformedPacket(
                f"payload of {payload_len} bytes is not a whole number of "
                f"{self.frame_bytes}-byte frames"
            )
        return frames

    def samples_to_ns(self, samples: int) -> int:
        """Duration of `samples` samples per channel, in ns (nearest, exact integer maths)."""
        return (samples * NS_PER_SECOND * 2 + self.rate) // (2 * self.rate)


def samples_for_duration(duration_ns: int, rate: int) -> int:
    """Samples per channel in `duration_ns` at `rate` Hz, computed exactly as Roc does.

    Roc evaluates `roundf(float(ns) / 1e9 * rate)` in single precision, rounding halves
    away from zero, so 5 ms at 44100 Hz (220.5) gives 221 samples, not 220. Matching this
    keeps our packets the same size as roc-send's.
    """
    if duration_ns < 0:
        raise ValueError(f"duration must be >= 0 ns, got {duration_ns}")
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    x = np.float32(duration_ns) / _F32_NS_PER_SECOND * np.float32(rate)
    # x is a non-negative float32, exact in float64, so adding 0.5 there is exact too.
    return int(np.floor(np.float64(x) + 0.5))


#: Roc's built-in encodings.
L16_STEREO = Encoding(payload_type=10, rate=44100, channels=2)
L16_MONO = Encoding(payload_type=11, rate=44100, channels=1)


class EncodingMap:
    """Payload type -> Encoding, preloaded with Roc's built-ins (PT 10 and 11).

    Mirrors Roc's registry: custom ids are 1..127 and an id can be registered only once.
    """

    __slots__ = ("_by_pt",)

    def __init__(self, *, builtins: bool = True) -> None:
        self._by_pt: dict[int, Encoding] = {}
        if builtins:
            self.register(L16_STEREO)
            self.register(L16_MONO)

    def register(self, encoding: Encoding) -> None:
        """Add `encoding`; raises ValueError when its payload type is already taken."""
        pt = encoding.payload_type
        if pt in self._by_pt:
            raise ValueError(f"payload type {pt} is already registered")
        self._by_pt[pt] = encoding

    def get(self, payload_type: int) -> Encoding | None:
        """The encoding of `payload_type`, or None when it is unknown."""
        return self._by_pt.get(payload_type)

    def __getitem__(self, payload_type: int) -> Encoding:
        """The encoding of `payload_type`; MalformedPacket when unknown (a wire value)."""
        try:
            return self._by_pt[payload_type]
        except KeyError:
            raise MalformedPacket(f"unknown payload type {payload_type}") from None

    def find(self, rate: int, channels: int) -> Encoding | None:
        """The registered encoding with this rate and channel count (lowest PT), if any."""
        for pt in sorted(self._by_pt):
            enc = self._by_pt[pt]
            if enc.rate == rate and enc.channels == channels:
                return enc
        return None

    def __contains__(self, payload_type: object) -> bool:
        return payload_type in self._by_pt

    def __iter__(self) -> Iterator[Encoding]:
        """Registered encodings in payload-type order."""
        return iter([self._by_pt[pt] for pt in sorted(self._by_pt)])

    def __len__(self) -> int:
        return len(self._by_pt)
