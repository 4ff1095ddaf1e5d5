"""RTCP packets of RFC 3550 §6: SR, RR (with report blocks), SDES and BYE.

Each packet class parses its body (the bytes after the 4-byte common header, RTCP padding
already removed) from untrusted input and serializes itself with its header. The compound
datagram is handled by `_rtcp_compound`, XR by `_rtcp_xr`.

Lossless by design: everything a parser accepts comes back byte-identical from
`serialize()`, except RTCP padding (accepted, never generated) and reserved bits (read as
don't-care, written as 0). Profile-specific extensions of SR/RR and packets of unknown
type are kept as raw bytes.
"""

from __future__ import annotations

import enum
import struct

import msgspec

from ._errors import MalformedPacket

RTCP_VERSION = 2
MAX_COUNT = 31  # the 5-bit count field

PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
PT_APP = 204
PT_XR = 207

_HEADER = struct.Struct(">BBH")
_U32 = struct.Struct(">I")
_SR_INFO = struct.Struct(">IQIII")  # SSRC, NTP64, RTP ts, packet count, octet count
_REPORT_BLOCK = struct.Struct(">IIIIII")
REPORT_BLOCK_SIZE = _REPORT_BLOCK.size


def rtcp_header(packet_type: int, count: int, body_len: int) -> bytes:
    """The 4-byte common header (V=2, P=0) of a packet whose body is `body_len` bytes.

    `body_len` must be a whole number of 32-bit words; ValueError when a field overflows.
    """
    if not 0 <= count <= MAX_COUNT:
        raise ValueError(f"RTCP count must be in 0..{MAX_COUNT}, got {count}")
    words, rest = divmod(body_len, 4)
    if rest or words > 0xFFFF:
        raise ValueError(f"RTCP body of {body_len} bytes is not 0..65535 whole words")
    return _HEADER.pack(0x80 | count, packet_type, words)


def pad_to_word(data: bytes) -> bytes:
    """`data` zero-filled to a whole number of 32-bit words."""
    rest = len(data) % 4
    return data + bytes(4 - rest) if rest else data


class ReportBlock(msgspec.Struct, frozen=True):
    """Reception statistics for one source (RFC 3550 §6.4.1), 24 bytes.

    `jitter` is in RTP timestamp units; `lsr` is the NTP32 of the last SR received from
    the source and `dlsr` the NTP32 (16.16 s) delay since then, both 0 if no SR arrived.
    """

    ssrc: int
    fraction_lost: int = 0  # fixed point /256
    cumulative_lost: int = 0  # signed 24 bits
    highest_seq: int = 0  # extended: cycles << 16 | highest sequence number
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    @classmethod
    def parse_from(cls, data: bytes, offset: int) -> ReportBlock:
        """The block at `offset` (the caller checked that 24 bytes are there)."""
        ssrc, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = lost & 0xFF_FFFF
        if cumulative & 0x80_0000:
            cumulative -= 0x100_0000
        return cls(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        if not -0x80_0000 <= self.cumulative_lost <= 0x7F_FFFF:
            raise ValueError(f"cumulative lost {self.cumulative_lost} does not fit 24 bits")
        if not 0 <= self.fraction_lost <= 0xFF:
            raise ValueError(f"fraction lost {self.fraction_lost} does not fit 8 bits")
        lost = self.fraction_lost << 24 | (self.cumulative_lost & 0xFF_FFFF)
        try:
            return _REPORT_BLOCK.pack(
                self.ssrc, lost, self.highest_seq, self.jitter, self.lsr, self.dlsr
            )
        except struct.error as exc:
            raise ValueError(f"report block field out of range: {exc}") from None


def _parse_blocks(count: int, body: bytes, offset: int) -> tuple[tuple[ReportBlock, ...], bytes]:
    end = offset + count * REPORT_BLOCK_SIZE
    if end > len(body):
        raise MalformedPacket(f"RTCP body of {len(body)} bytes too short for {count} reports")
    blocks = tuple(
        ReportBlock.parse_from(body, offset + i * REPORT_BLOCK_SIZE) for i in range(count)
    )
    return blocks, body[end:]


def _serialize_blocks(reports: tuple[ReportBlock, ...]) -> bytes:
    if len(reports) > MAX_COUNT:
        raise ValueError(f"at most {MAX_COUNT} report blocks per packet, got {len(reports)}")
    return b"".join(r.serialize() for r in reports)


class SenderReport(msgspec.Struct, frozen=True):
    """SR, PT 200: the sender's clock mapping (NTP64 wall clock <-> RTP timestamp)."""

    ssrc: int
    ntp_timestamp: int  # NTP64 wall clock at which the stream's RTP clock read rtp_timestamp
    rtp_timestamp: int
    packet_count: int
    octet_count: int  # payload bytes sent, headers and padding excluded
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""  # profile-specific extension, kept as is

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> SenderReport:
        if len(body) < _SR_INFO.size:
            raise MalformedPacket(f"SR body of {len(body)} bytes is shorter than 24")
        ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(body)
        reports, extension = _parse_blocks(count, body, _SR_INFO.size)
        return cls(ssrc, ntp, rtp_ts, packets, octets, reports, extension)

    def serialize(self) -> bytes:
        try:
            info = _SR_INFO.pack(
                self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count,
                self.octet_count,
            )  # fmt: skip
        except struct.error as exc:
            raise ValueError(f"SR field out of range: {exc}") from None
        body = info + _serialize_blocks(self.reports) + pad_to_word(self.extension)
        return rtcp_header(PT_SR, len(self.reports), len(body)) + body


class ReceiverReport(msgspec.Struct, frozen=True):
    """RR, PT 201: reception statistics from a participant that is not sending."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> ReceiverReport:
        if len(body) < 4:
            raise MalformedPacket(f"RR body of {len(body)} bytes is shorter than 4")
        (ssrc,) = _U32.unpack_from(body)
        reports, extension = _parse_blocks(count, body, 4)
        return cls(ssrc, reports, extension)

    def serialize(self) -> bytes:
        try:
            head = _U32.pack(self.ssrc)
        except struct.error as exc:
            raise ValueError(f"RR SSRC out of range: {exc}") from None
        body = head + _serialize_blocks(self.reports) + pad_to_word(self.extension)
        return rtcp_header(PT_RR, len(self.reports), len(body)) + body


class SdesType(enum.IntEnum):
    """SDES item types (RFC 3550 §6.5); 0 ends a chunk's item list."""

    END = 0
    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


class SdesItem(msgspec.Struct, frozen=True):
    """One SDES item; `value` is the raw text (UTF-8 per RFC 3550), at most 255 bytes."""

    type: int
    value: bytes


class SdesChunk(msgspec.Struct, frozen=True):
    """The items describing one SSRC."""

    ssrc: int
    items: tuple[SdesItem, ...] = ()

    @classmethod
    def with_cname(cls, ssrc: int, cname: str) -> SdesChunk:
        """A chunk carrying only a CNAME, as Roc sends."""
        return cls(ssrc, (SdesItem(SdesType.CNAME, cname.encode()),))

    @property
    def cname(self) -> str | None:
        """The first CNAME item as text (undecodable bytes replaced), None if absent."""
        for item in self.items:
            if item.type == SdesType.CNAME:
                return item.value.decode("utf-8", errors="replace")
        return None

    def serialize(self) -> bytes:
        try:
            parts = [_U32.pack(self.ssrc)]
        except struct.error as exc:
            raise ValueError(f"SDES SSRC out of range: {exc}") from None
        for item in self.items:
            if not 1 <= item.type <= 0xFF:
                raise ValueError(f"SDES item type must be in 1..255, got {item.type}")
            if len(item.value) > 0xFF:
                raise ValueError(f"SDES item of {len(item.value)} bytes exceeds 255")
            parts.append(bytes((item.type, len(item.value))))
            parts.append(item.value)
        size = sum(len(p) for p in parts)
        # One null octet ends the list, more pad the chunk to a 32-bit boundary.
        parts.append(bytes(4 - size % 4))
        return b"".join(parts)


class Sdes(msgspec.Struct, frozen=True):
    """SDES, PT 202: source descriptions (Roc: one chunk with the CNAME)."""

    chunks: tuple[SdesChunk, ...] = ()

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> Sdes:
        n = len(body)
        off = 0
        chunks = []
        for _ in range(count):
            if off + 4 > n:
                raise MalformedPacket(f"SDES body of {n} bytes too short for {count} chunks")
            (ssrc,) = _U32.unpack_from(body, off)
            off += 4
            items = []
            while True:
                if off >= n:
                    raise MalformedPacket("SDES chunk has no terminating null octet")
                item_type = body[off]
                if item_type == SdesType.END:
                    off = (off + 4) & ~3  # the null octet and the padding after it
                    if off > n:
                        raise MalformedPacket("SDES chunk padding overruns the packet")
                    break
                if off + 2 > n or off + 2 + body[off + 1] > n:
                    raise MalformedPacket("SDES item overruns the packet")
                end = off + 2 + body[off + 1]
                items.append(SdesItem(item_type, body[off + 2 : end]))
                off = end
            chunks.append(SdesChunk(ssrc, tuple(items)))
        if off != n:
            raise MalformedPacket(f"{n - off} bytes after the last SDES chunk")
        return cls(tuple(chunks))

    def serialize(self) -> bytes:
        body = b"".join(c.serialize() for c in self.chunks)
        return rtcp_header(PT_SDES, len(self.chunks), len(body)) + body


class Bye(msgspec.Struct, frozen=True):
    """BYE, PT 203: these sources leave; Roc ends their receiving sessions at once."""

    ssrcs: tuple[int, ...] = ()
    reason: bytes | None = None  # at most 255 bytes of text

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> Bye:
        end = 4 * count
        if end > len(body):
            raise MalformedPacket(f"BYE body of {len(body)} bytes too short for {count} SSRCs")
        ssrcs = struct.unpack_from(f">{count}I", body)
        rest = len(body) - end
        if not rest:
            return cls(ssrcs)
        length = body[end]
        if not 0 <= rest - 1 - length <= 3:
            raise MalformedPacket(f"BYE reason of {length} bytes does not fill {rest} bytes")
        return cls(ssrcs, body[end + 1 : end + 1 + length])

    def serialize(self) -> bytes:
        if len(self.ssrcs) > MAX_COUNT:
            raise ValueError(f"at most {MAX_COUNT} SSRCs per BYE, got {len(self.ssrcs)}")
        try:
            body = struct.pack(f">{len(self.ssrcs)}I", *self.ssrcs)
        except struct.error as exc:
            raise ValueError(f"BYE SSRC out of range: {exc}") from None
        if self.reason is not None:
            if len(self.reason) > 0xFF:
                raise ValueError(f"BYE reason of {len(self.reason)} bytes exceeds 255")
            body += pad_to_word(bytes((len(self.reason),)) + self.reason)
        return rtcp_header(PT_BYE, len(self.ssrcs), len(body)) + body


class RawRtcpPacket(msgspec.Struct, frozen=True):
    """A packet of a type not decoded here (APP, feedback, ...), kept byte for byte.

    On output the body is zero-filled to a whole number of 32-bit words.
    """

    packet_type: int
    count: int  # the 5-bit count / subtype field
    body: bytes = b""

    def serialize(self) -> bytes:
        if not 0 <= self.packet_type <= 0xFF:
            raise ValueError(f"RTCP packet type must be in 0..255, got {self.packet_type}")
        body = pad_to_word(self.body)
        return rtcp_header(self.packet_type, self.count, len(body)) + body
