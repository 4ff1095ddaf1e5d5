"""Compound RTCP datagrams: a sequence of RTCP packets in one UDP datagram (RFC 3550 §6.1).

Every packet's length field is checked against the datagram before anything is read.
RTCP padding (P bit, last byte = pad count) is accepted on any packet of the compound,
not only the last; we never generate it (Roc misparses it, ROC_PROTOCOL.md §13.9).
The RFC's rule that a compound starts with SR or RR is not enforced on input: callers
look for the packets they need. Types not decoded here come back as `RawRtcpPacket`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from ._errors import MalformedPacket
from ._rtcp import (
    PT_BYE,
    PT_RR,
    PT_SDES,
    PT_SR,
    PT_XR,
    RTCP_VERSION,
    Bye,
    RawRtcpPacket,
    ReceiverReport,
    Sdes,
    SenderReport,
)
from ._rtcp_xr import ExtendedReport
from ._types import Buffer

RtcpPacket = SenderReport | ReceiverReport | Sdes | Bye | ExtendedReport | RawRtcpPacket

_HEADER = struct.Struct(">BBH")
_PARSERS: dict[int, Callable[[int, bytes], RtcpPacket]] = {
    PT_SR: SenderReport.parse_body,
    PT_RR: ReceiverReport.parse_body,
    PT_SDES: Sdes.parse_body,
    PT_BYE: Bye.parse_body,
    PT_XR: ExtendedReport.parse_body,
}


def parse_rtcp(data: Buffer) -> list[RtcpPacket]:
    """The packets of one compound RTCP datagram; MalformedPacket if any is invalid."""
    if type(data) is not bytes:
        data = bytes(data)
    n = len(data)
    if n == 0:
        raise MalformedPacket("empty RTCP datagram")
    packets: list[RtcpPacket] = []
    off = 0
    while off < n:
        if off + 4 > n:
            raise MalformedPacket(f"{n - off} bytes after the last RTCP packet")
        b0, packet_type, words = _HEADER.unpack_from(data, off)
        if b0 >> 6 != RTCP_VERSION:
            raise MalformedPacket(f"RTCP version {b0 >> 6}, expected {RTCP_VERSION}")
        end = off + 4 + 4 * words
        if end > n:
            raise MalformedPacket(
                f"RTCP packet of {4 + 4 * words} bytes overruns the {n}-byte datagram"
            )
        body_end = end
        if b0 & 0x20:
            pad = data[end - 1] if words else 0
            if not 1 <= pad <= 4 * words:
                raise MalformedPacket(f"RTCP pad count {pad} outside 1..{4 * words}")
            body_end -= pad
        count = b0 & 0x1F
        body = data[off + 4 : body_end]
        parser = _PARSERS.get(packet_type)
        packets.append(parser(count, body) if parser else RawRtcpPacket(packet_type, count, body))
        off = end
    return packets


def serialize_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """One compound datagram holding `packets` in order (no padding)."""
    return b"".join(p.serialize() for p in packets)
