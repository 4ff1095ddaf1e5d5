"""FEC blocks for the tests: the captured Roc traffic grouped by SBN, and random ones."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from rocd.net.roc import FecScheme, parse_repair_datagram, parse_source_datagram
from tests.pcap import REPAIR_PORT, SOURCE_PORT, VECTORS, read_udp

CAPTURES = {FecScheme.RS8M: "rs8m_default.pcap", FecScheme.LDPC_STAIRCASE: "ldpc_default.pcap"}


@dataclass
class CapturedBlock:
    sbn: int
    source: list[bytes] = field(default_factory=list)  # RTP packets, ESI order
    repair: list[bytes] = field(default_factory=list)  # repair symbols, ESI order


def captured_datagrams(scheme: FecScheme) -> list[tuple[bool, bytes]]:
    """(is_repair, datagram) for every FEC datagram of the capture, in capture order."""
    return [
        (d.dst[1] == REPAIR_PORT, d.payload)
        for d in read_udp(VECTORS / CAPTURES[scheme])
        if d.dst[1] in (SOURCE_PORT, REPAIR_PORT)
    ]


def captured_blocks(scheme: FecScheme) -> list[CapturedBlock]:
    """The blocks of the capture in sending order (the last one may be incomplete)."""
    blocks: dict[int, CapturedBlock] = {}
    for is_repair, datagram in captured_datagrams(scheme):
        if is_repair:
            symbol, rpid = parse_repair_datagram(scheme, datagram)
            block = blocks.setdefault(rpid.sbn, CapturedBlock(rpid.sbn))
            assert rpid.esi == rpid.k + len(block.repair)
            block.repair.append(symbol)
        else:
            rtp, pid = parse_source_datagram(scheme, datagram)
            block = blocks.setdefault(pid.sbn, CapturedBlock(pid.sbn))
            assert pid.esi == len(block.source)
            block.source.append(rtp)
    return list(blocks.values())


def random_block(rng: random.Random, k: int, length: int) -> list[bytes]:
    """K random source symbols of `length` bytes."""
    return [rng.randbytes(length) for _ in range(k)]
