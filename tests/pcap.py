"""A small reader for the classic pcap files in tests/vectors (captured from real Roc tools).

Only what the vectors use: pcap (not pcapng), Ethernet or BSD loopback link types, IPv4, UDP.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

VECTORS = Path(__file__).parent / "vectors"

_LINK_NULL = 0
_LINK_ETHERNET = 1


@dataclass(frozen=True, slots=True)
class Datagram:
    """One captured UDP datagram."""

    time: float  # seconds since the Unix epoch
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def read_udp(path: Path) -> list[Datagram]:
    """Every IPv4/UDP datagram of a pcap file, in capture order."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    if magic == 0xA1B2C3D4:
        endian = "<"
    elif magic == 0xD4C3B2A1:
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    if linktype not in (_LINK_NULL, _LINK_ETHERNET):
        raise ValueError(f"{path}: unsupported link type {linktype}")
    out: list[Datagram] = []
    off = 24
    while off + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack_from(endian + "IIII", data, off)
        off += 16
        frame = data[off : off + incl]
        off += incl
        if linktype == _LINK_ETHERNET:
            if frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
        else:
            ip = frame[4:]
        if ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from(">H", ip, 2)[0]
        src_ip = ".".join(str(b) for b in ip[12:16])
        dst_ip = ".".join(str(b) for b in ip[16:20])
        udp = ip[ihl:total]
        sport, dport, ulen = struct.unpack_from(">HHH", udp)
        out.append(Datagram(sec + usec / 1e6, (src_ip, sport), (dst_ip, dport), bytes(udp[8:ulen])))
    return out


def by_port(path: Path, port: int) -> list[bytes]:
    """Payloads of the datagrams sent to `port`, in capture order."""
    return [d.payload for d in read_udp(path) if d.dst[1] == port]


# Ports used by the captures (see tests/vectors/README.md).
SOURCE_PORT = 22001
REPAIR_PORT = 22002
CONTROL_PORT = 22003
