"""FECFRAME payload IDs as Roc Toolkit 0.4 puts them on the wire (big-endian).

A source datagram is an RTP packet with a 6-byte source payload ID appended (a footer); a
repair datagram is a repair payload ID followed by the repair symbol, with no RTP header.

    RS8M source footer / repair header:  SBN:24 ESI:8 K:16            (6 bytes)
    LDPC source footer:                  SBN:16 ESI:16 K:16           (6 bytes)
    LDPC repair header:                  SBN:16 ESI:16 K:16 N:16      (8 bytes)

Roc differs from RFC 6865/6816 here: its source payload IDs carry K and sit after the RTP
packet. Its block counter is 16 bits wide even in the 24-bit RS8M field, so an RS8M sender
writes a zero top byte and a receiver takes the SBN modulo 65536. RS8M has no N field: N
reads as 255 (the largest RS8M block), while an LDPC source footer reads as N = 0 (unknown).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from ._errors import MalformedPacket

__all__ = [
    "SBN_MODULUS",
    "FecScheme",
    "RepairPayloadId",
    "SourcePayloadId",
    "build_repair_datagram",
    "build_source_datagram",
    "check_block_size",
    "pack_repair_id",
    "pack_source_id",
    "parse_repair_datagram",
    "parse_source_datagram",
    "sbn_diff",
]

SBN_MODULUS = 1 << 16
"""Block numbers wrap at 16 bits for both schemes (Roc's `blknum_t`)."""

RS8M_MAX_BLOCK = 255
"""The largest RS8M block (source + repair): GF(2^8) has 255 non-zero evaluation points."""

_ID6 = struct.Struct(">HHH")
_ID8 = struct.Struct(">HHHH")
_RS8M_ID = struct.Struct(">BHBH")  # SBN top byte, SBN low 16 bits, ESI, K


class FecScheme(enum.Enum):
    """The two FEC schemes Roc speaks; the value is the repair URI scheme (`rs8m://`)."""

    RS8M = "rs8m"
    LDPC_STAIRCASE = "ldpc"

    @property
    def source_footer_size(self) -> int:
        """Bytes of the payload ID appended to an RTP packet."""
        return 6

    @property
    def repair_header_size(self) -> int:
        """Bytes of the payload ID in front of a repair symbol."""
        return 6 if self is FecScheme.RS8M else 8

    @property
    def max_block(self) -> int:
        """The largest N (= K + R) the payload ID can express."""
        return RS8M_MAX_BLOCK if self is FecScheme.RS8M else 0xFFFF


@dataclass(frozen=True, slots=True)
class SourcePayloadId:
    """Where a source packet sits: block `sbn`, index `esi` (0..K-1) in a block of `k`."""

    sbn: int
    esi: int
    k: int


@dataclass(frozen=True, slots=True)
class RepairPayloadId:
    """Where a repair symbol sits: `esi` in K..N-1 of block `sbn` (RS8M: `n` is 255)."""

    sbn: int
    esi: int
    k: int
    n: int


def sbn_diff(a: int, b: int) -> int:
    """Signed distance a - b between two 16-bit block numbers, in -32768..32767."""
    return (a - b + 0x8000) % SBN_MODULUS - 0x8000


def check_block_size(scheme: FecScheme, k: int, n_repair: int) -> None:
    """Raise ValueError unless a block of `k` source and `n_repair` repair symbols fits the wire.

    The codec may have its own, stricter limits (LDPC-Staircase needs R >= N1).
    """
    if k < 1:
        raise ValueError(f"a FEC block needs at least one source packet, got K={k}")
    if n_repair < 0:
        raise ValueError(f"negative repair count R={n_repair}")
    if k + n_repair > scheme.max_block:
        raise ValueError(
            f"{scheme.name} blocks hold at most {scheme.max_block} packets, got K+R={k + n_repair}"
        )


def _check_fields(scheme: FecScheme, sbn: int, esi: int, k: int) -> None:
    if not 0 <= sbn < SBN_MODULUS:
        raise ValueError(f"SBN {sbn} out of 16-bit range")
    if not 0 < k <= scheme.max_block:
        raise ValueError(f"K={k} out of range for {scheme.name}")
    if not 0 <= esi < scheme.max_block:
        raise ValueError(f"ESI {esi} out of range for {scheme.name}")


def _pack_id(scheme: FecScheme, sbn: int, esi: int, k: int) -> bytes:
    if scheme is FecScheme.RS8M:
        return _RS8M_ID.pack(0, sbn, esi, k)
    return _ID6.pack(sbn, esi, k)


def pack_source_id(scheme: FecScheme, sbn: int, esi: int, k: int) -> bytes:
    """The source payload ID (the footer) without the checks of `build_source_datagram`:
    for a writer whose fields are in range by construction (struct.error otherwise)."""
    return _pack_id(scheme, sbn, esi, k)


def pack_repair_id(scheme: FecScheme, sbn: int, esi: int, k: int, n: int) -> bytes:
    """The repair payload ID (the header), unchecked as `pack_source_id`."""
    if scheme is FecScheme.RS8M:
        return _RS8M_ID.pack(0, sbn, esi, k)
    return _ID8.pack(sbn, esi, k, n)


def _unpack_id(scheme: FecScheme, raw: bytes | memoryview) -> tuple[int, int, int]:
    """(SBN modulo 2^16, ESI, K) of a 6-byte payload ID."""
    if scheme is FecScheme.RS8M:
        _top, sbn, esi, k = _RS8M_ID.unpack(raw)
        return sbn, esi, k
    return _ID6.unpack(raw)


def build_source_datagram(scheme: FecScheme, rtp: bytes, pid: SourcePayloadId) -> bytes:
    """The datagram carrying RTP packet `rtp` (the source symbol) as `pid`."""
    _check_fields(scheme, pid.sbn, pid.esi, pid.k)
    if not rtp:
        raise ValueError("empty source symbol")
    if pid.esi >= pid.k:
        raise ValueError(f"source ESI {pid.esi} not below K={pid.k}")
    return rtp + _pack_id(scheme, pid.sbn, pid.esi, pid.k)


def parse_source_datagram(scheme: FecScheme, datagram: bytes) -> tuple[bytes, SourcePayloadId]:
    """Split a source datagram into (RTP packet, payload ID); MalformedPacket if invalid."""
    size = scheme.source_footer_size
    if len(datagram) <= size:
        raise MalformedPacket(f"{scheme.name} source datagram of {len(datagram)} bytes")
    sbn, esi, k = _unpack_id(scheme, memoryview(datagram)[-size:])
    if k == 0 or esi >= k:
        raise MalformedPacket(f"source ESI {esi} with K={k}")
    if k > scheme.max_block:
        raise MalformedPacket(f"K={k} exceeds the {scheme.name} block limit")
    return bytes(datagram[:-size]), SourcePayloadId(sbn, esi, k)


def build_repair_datagram(scheme: FecScheme, pid: RepairPayloadId, symbol: bytes) -> bytes:
    """The datagram carrying repair `symbol` as `pid` (RS8M: `pid.n` is not sent)."""
    _check_fields(scheme, pid.sbn, pid.esi, pid.k)
    if not symbol:
        raise ValueError("empty repair symbol")
    if not pid.k <= pid.esi < pid.n <= scheme.max_block:
        raise ValueError(f"repair ESI {pid.esi} not in K..N-1 (K={pid.k}, N={pid.n})")
    if scheme is FecScheme.RS8M:
        return _pack_id(scheme, pid.sbn, pid.esi, pid.k) + symbol
    return _ID8.pack(pid.sbn, pid.esi, pid.k, pid.n) + symbol


def parse_repair_datagram(scheme: FecScheme, datagram: bytes) -> tuple[bytes, RepairPayloadId]:
    """Split a repair datagram into (repair symbol, payload ID); MalformedPacket if invalid."""
    size = scheme.repair_header_size
    if len(datagram) <= size:
        raise MalformedPacket(f"{scheme.name} repair datagram of {len(datagram)} bytes")
    if scheme is FecScheme.RS8M:
        sbn, esi, k = _unpack_id(scheme, memoryview(datagram)[:size])
        n = RS8M_MAX_BLOCK
    else:
        sbn, esi, k, n = _ID8.unpack_from(datagram)
    # N is known for both schemes here (an LDPC decoder cannot build its matrix without it),
    # so the §3.4 rules apply in full: 0 < K <= ESI < N.
    if not 0 < k <= esi < n:
        raise MalformedPacket(f"repair ESI {esi} with K={k}, N={n}")
    return bytes(datagram[size:]), RepairPayloadId(sbn, esi, k, n)
