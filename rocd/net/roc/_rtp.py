"""RTP packets (RFC 3550 §5.1) as Roc sends and accepts them.

Roc writes a bare 12-byte header (V=2, no CSRC, no extension, marker 0) and uses RTP
padding to keep every packet of a stream the same length, which FEC needs. On input it
accepts CSRCs, a header extension and padding; so do we. The extension is kept (not just
skipped, as Roc does) so that re-serialising a parsed packet gives back the same bytes.

`RtpPacket` is a msgspec Struct: measured fastest to build of the candidates (slots
dataclass, frozen dataclass), see bench/rtp.py.
"""

from __future__ import annotations

import struct

import msgspec

from ._errors import MalformedPacket
from ._types import Buffer

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
MAX_CSRCS = 15
MAX_PADDING = 255

_HEADER = struct.Struct(">BBHII")
_EXT_HEADER = struct.Struct(">HH")
_CSRC_STRUCTS = tuple(struct.Struct(f">{n}I") for n in range(MAX_CSRCS + 1))
# Padding as Roc writes it: zero bytes, the last one holding the pad count (1..255).
_PADDING = (b"", *(bytes(n - 1) + bytes((n,)) for n in range(1, MAX_PADDING + 1)))


class RtpExtension(msgspec.Struct, frozen=True, gc=False):
    """An RTP header extension (RFC 3550 §5.3.1): a profile-defined id and 32-bit words."""

    profile: int  # 16 bits, "defined by profile"
    data: bytes  # length is a multiple of 4


class RtpPacket(msgspec.Struct, frozen=True, gc=False):
    """One RTP packet.

    `timestamp` counts samples per channel at the rate of the payload encoding.
    `padding` is the number of RTP padding bytes after the payload (0 = none, else
    1..255, P bit set); they are not part of `payload`.
    """

    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    padding: int = 0
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None

    @property
    def header_size(self) -> int:
        """Bytes before the payload: fixed header, CSRCs and header extension."""
        size = RTP_HEADER_SIZE + 4 * len(self.csrcs)
        if self.extension is not None:
            size += 4 + len(self.extension.data)
        return size

    @property
    def size(self) -> int:
        """Length of the serialized packet in bytes."""
        return self.header_size + len(self.payload) + self.padding

    @classmethod
    def parse(cls, data: Buffer) -> RtpPacket:
        """Parse one RTP packet from untrusted bytes; MalformedPacket if it is not one."""
        n = len(data)
        if n < RTP_HEADER_SIZE:
            raise MalformedPacket(f"RTP packet of {n} bytes is shorter than its header")
        b0, b1, seq, timestamp, ssrc = _HEADER.unpack_from(data)
        if b0 == 0x80:  # the common case: Roc's bare header
            payload = data[RTP_HEADER_SIZE:]
            if type(payload) is not bytes:
                payload = bytes(payload)
            return cls(b1 & 0x7F, seq, timestamp, ssrc, payload, b1 > 0x7F)
        if b0 >> 6 != RTP_VERSION:
            raise MalformedPacket(f"RTP version {b0 >> 6}, expected {RTP_VERSION}")
        off = RTP_HEADER_SIZE
        csrcs: tuple[int, ...] = ()
        cc = b0 & 0x0F
        if cc:
            if off + 4 * cc > n:
                raise MalformedPacket(f"RTP packet of {n} bytes too short for {cc} CSRCs")
            csrcs = _CSRC_STRUCTS[cc].unpack_from(data, off)
            off += 4 * cc
        extension = None
        if b0 & 0x10:
            if off + 4 > n:
                raise MalformedPacket("RTP packet too short for its header extension")
            profile, words = _EXT_HEADER.unpack_from(data, off)
            off += 4
            end = off + 4 * words
            if end > n:
                raise MalformedPacket(
                    f"RTP header extension of {4 * words} bytes overruns the packet"
                )
            extension = RtpExtension(profile, bytes(data[off:end]))
            off = end
        end = n
        padding = 0
        if b0 & 0x20:
            padding = data[n - 1] if n > off else 0
            if not 1 <= padding <= n - off:
                raise MalformedPacket(
                    f"RTP pad count {padding} outside 1..{n - off} (bytes after the header)"
                )
            end = n - padding
        return cls(
            b1 & 0x7F,
            seq,
            timestamp,
            ssrc,
            bytes(data[off:end]),
            b1 > 0x7F,
            padding,
            csrcs,
            extension,
        )

    def serialize(self) -> bytes:
        """The packet on the wire; ValueError if a field does not fit its bit width."""
        pt = self.payload_type
        if pt & ~0x7F:
            raise ValueError(f"payload type must be in 0..127, got {pt}")
        b1 = pt | 0x80 if self.marker else pt
        csrcs = self.csrcs
        extension = self.extension
        padding = self.padding
        try:
            if not csrcs and extension is None and not padding:
                return _HEADER.pack(0x80, b1, self.seq, self.timestamp, self.ssrc) + self.payload
            if not 0 <= padding <= MAX_PADDING:
                raise ValueError(f"RTP padding must be in 0..{MAX_PADDING}, got {padding}")
            cc = len(csrcs)
            if cc > MAX_CSRCS:
                raise ValueError(f"at most {MAX_CSRCS} CSRCs fit, got {cc}")
            b0 = 0x80 | cc | (0x20 if padding else 0) | (0x10 if extension is not None else 0)
            parts = [_HEADER.pack(b0, b1, self.seq, self.timestamp, self.ssrc)]
            if cc:
                parts.append(_CSRC_STRUCTS[cc].pack(*csrcs))
            if extension is not None:
                words, rest = divmod(len(extension.data), 4)
                if rest:
                    raise ValueError("RTP header extension data must be whole 32-bit words")
                parts.append(_EXT_HEADER.pack(extension.profile, words))
                parts.append(extension.data)
            parts.append(self.payload)
            parts.append(_PADDING[padding])
            return b"".join(parts)
        except struct.error as exc:
            raise ValueError(f"RTP field out of range: {exc}") from None
