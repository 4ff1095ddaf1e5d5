"""Frames in, constant-size RTP packets out, as Roc's packetizer and sequencer make them.

Every packet carries `samples_per_packet` samples per channel (221 for Roc's 5 ms at
44.1 kHz), so every RTP packet of a stream has one length, which FEC needs (the packet is
the FEC symbol). Sequence numbers count up by one, timestamps by the samples carried,
both from random starting points, both wrapping.

At the end of a stream (`flush`) a partial packet is dropped, as roc-send does at the end
of a file, or, with `pad_last`, completed so its length stays constant: with RTP padding
when the missing bytes fit the 8-bit pad count (<= 255), otherwise with silent samples.

Capture times: `write` takes the wall-clock capture time (ns) of its first frame; each
packet gets the capture time of its first sample, extrapolated from the newest chunk at
the encoding's rate. RTCP sender reports map RTP timestamps to these times (§6.4).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ._encoding import NS_PER_SECOND, Encoding
from ._l16 import encode_l16
from ._rtp import MAX_PADDING, RtpPacket
from ._types import Buffer
from ._wrap import seq_add, ts_add

__all__ = ["Packet", "Packetizer"]

_HEADER = struct.Struct(">BBHII")  # Roc's bare RTP header: V=2, no CSRC / extension / padding


class Packet(NamedTuple):
    """One RTP packet made by the packetizer."""

    rtp: bytes  # the serialized RTP packet (header, payload, padding)
    seq: int
    timestamp: int  # RTP timestamp of its first sample
    samples: int  # samples per channel it carries (RTP timestamp units)
    payload_bytes: int  # audio bytes, without header and padding (RTCP octet count)
    capture_ns: int  # wall-clock capture time of its first sample


class Packetizer:
    """Cuts a stream of float32 frames (n, encoding.channels) into RTP packets."""

    def __init__(
        self,
        encoding: Encoding,
        samples_per_packet: int,
        *,
        ssrc: int,
        first_seq: int,
        first_timestamp: int,
        pad_last: bool = False,
    ) -> None:
        if samples_per_packet < 1:
            raise ValueError(f"samples per packet must be >= 1, got {samples_per_packet}")
        if not 0 <= first_seq <= 0xFFFF or not 0 <= first_timestamp <= 0xFFFF_FFFF:
            raise ValueError("first sequence number / timestamp out of range")
        self.encoding = encoding
        self.samples_per_packet = samples_per_packet
        self.ssrc = ssrc  # may change on an SSRC collision (RTCP)
        self.pad_last = pad_last
        self._seq = first_seq
        self._ts = first_timestamp
        # Encoded (L16) samples waiting for a packet to fill: encoding is per sample, so a
        # chunk is encoded as it comes and packets are cut from bytes (no float copies).
        self._pending = bytearray()
        self._fill = 0
        self._position = 0  # samples per channel packetized since the stream started
        self._anchor_position = 0  # stream position of the newest chunk's first frame
        self._anchor_ns = 0  # its capture time

    @property
    def seq(self) -> int:
        """Sequence number of the next packet."""
        return self._seq

    @property
    def timestamp(self) -> int:
        """RTP timestamp of the next packet."""
        return self._ts

    @property
    def pending_samples(self) -> int:
        """Samples per channel waiting for a packet to fill."""
        return self._fill

    def write(self, frames: npt.NDArray[np.float32], capture_ns: int) -> list[Packet]:
        """The packets `frames` complete; `capture_ns` is the capture time of frames[0]."""
        channels = self.encoding.channels
        if frames.ndim != 2 or frames.shape[1] != channels:
            raise ValueError(f"frames must have shape (n, {channels}), got {frames.shape}")
        return self.write_encoded(encode_l16(frames), len(frames), capture_ns)

    def write_encoded(self, payload: Buffer, frames: int, capture_ns: int) -> list[Packet]:
        """`write` for `frames` frames already encoded (`payload`, their L16 bytes): a
        sender encodes many chunks in one go and cuts packets chunk by chunk."""
        self._anchor_position = self._position + self._fill
        self._anchor_ns = capture_ns
        pending = self._pending
        pending += payload
        spp = self.samples_per_packet
        count, rest = divmod(self._fill + frames, spp)
        self._fill = rest
        if not count:
            return []
        size = spp * self.encoding.frame_bytes
        payload = memoryview(pending)  # released before `pending` shrinks
        pack = _HEADER.pack
        pt, ssrc, seq, ts = self.encoding.payload_type, self.ssrc, self._seq, self._ts
        position = self._position
        anchor_ns = self._anchor_ns
        rate = self.encoding.rate
        offset = position - self._anchor_position
        packets = []
        for i in range(count):
            capture_ns = anchor_ns + (2 * offset * NS_PER_SECOND + rate) // (2 * rate)
            rtp = pack(0x80, pt, seq, ts, ssrc) + payload[i * size : (i + 1) * size]
            packets.append(Packet(rtp, seq, ts, spp, size, capture_ns))
            seq = (seq + 1) & 0xFFFF
            ts = (ts + spp) & 0xFFFF_FFFF
            offset += spp
        payload.release()
        del pending[: count * size]
        self._seq, self._ts = seq, ts
        self._position = position + count * spp
        return packets

    def flush(self) -> list[Packet]:
        """End the stream: the partial packet is dropped, or padded with `pad_last`."""
        fill = self._fill
        self._fill = 0
        if not fill or not self.pad_last:
            return []
        payload = bytes(self._pending)
        self._pending.clear()
        missing = (self.samples_per_packet - fill) * self.encoding.frame_bytes
        if missing <= MAX_PADDING:
            return [self._packet(payload, fill, padding=missing)]
        silence = bytes(missing)  # zero samples: L16 silence
        return [self._packet(payload + silence, self.samples_per_packet)]

    def _packet(self, payload: bytes, samples: int, padding: int = 0) -> Packet:
        seq, ts = self._seq, self._ts
        rtp = RtpPacket(
            self.encoding.payload_type, seq, ts, self.ssrc, payload, padding=padding
        ).serialize()
        offset = self._position - self._anchor_position
        rate = self.encoding.rate
        capture_ns = self._anchor_ns + (2 * offset * NS_PER_SECOND + rate) // (2 * rate)
        self._seq = seq_add(seq, 1)
        self._ts = ts_add(ts, samples)
        self._position += samples
        return Packet(rtp, seq, ts, samples, len(payload), capture_ns)
