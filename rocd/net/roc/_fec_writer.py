"""The sending side of FECFRAME: RTP packets in, source and repair datagrams out.

Like Roc's `fec::Writer`: the packets of a block are numbered ESI 0..K-1 and leave at once
(with their footer); right after the K-th one the R repair datagrams of the block follow in
ESI order. Every RTP packet of a block must have one length (it is the FEC symbol): the
caller keeps packets equal-sized and pads with RTP padding, never by truncation.
"""

from __future__ import annotations

from typing import NamedTuple

from ._fec_codec import BlockCodec, default_codec
from ._fecframe import (
    SBN_MODULUS,
    FecScheme,
    check_block_size,
    pack_repair_id,
    pack_source_id,
)

__all__ = ["FecWriter", "FecWriterOutput"]

DEFAULT_SOURCE_PACKETS = 18
DEFAULT_REPAIR_PACKETS = 10
"""Roc's default block: 18 source + 10 repair packets (`fec::WriterConfig`)."""


class FecWriterOutput(NamedTuple):
    """What one RTP packet turns into: its source datagram, then any repair datagrams."""

    source: bytes
    repair: list[bytes]


class FecWriter:
    """Groups RTP packets into FEC blocks and makes the datagrams to send.

    `first_sbn` is the number of the first block (senders pick it at random, as Roc does);
    block numbers then count up by one and wrap at 16 bits.
    """

    def __init__(
        self,
        scheme: FecScheme,
        *,
        n_source: int = DEFAULT_SOURCE_PACKETS,
        n_repair: int = DEFAULT_REPAIR_PACKETS,
        first_sbn: int = 0,
        codec: BlockCodec | None = None,
    ) -> None:
        if not 0 <= first_sbn < SBN_MODULUS:
            raise ValueError(f"SBN {first_sbn} out of 16-bit range")
        self.scheme = scheme
        self._codec = codec if codec is not None else default_codec(scheme)
        self._check(n_source, n_repair)
        self._next_size = (n_source, n_repair)
        self._k, self._r = n_source, n_repair
        self._sbn = first_sbn
        self._block: list[bytes] = []

    @property
    def sbn(self) -> int:
        """Number of the block the next packet goes into."""
        return self._sbn

    @property
    def block_size(self) -> tuple[int, int]:
        """(K, R) of the block being filled, or of the next one when none is open."""
        return (self._k, self._r) if self._block else self._next_size

    def set_block_size(self, n_source: int, n_repair: int) -> None:
        """Use K = `n_source`, R = `n_repair` from the next block on (ValueError if unusable)."""
        self._check(n_source, n_repair)
        self._next_size = (n_source, n_repair)

    def write(self, rtp: bytes) -> FecWriterOutput:
        """The datagrams for one RTP packet: its source datagram, plus R repair datagrams
        when it completes a block. ValueError if its length differs from the block's."""
        if not rtp:
            raise ValueError("empty RTP packet")
        block = self._block
        if not block:
            self._k, self._r = self._next_size
        elif len(rtp) != len(block[0]):
            raise ValueError(
                f"RTP packet of {len(rtp)} bytes in a block of {len(block[0])}-byte "
                "symbols: pad packets to one length"
            )
        # Payload IDs are in range by construction: K and R were checked when set, the SBN
        # wraps at 16 bits and the ESI stays below K.
        esi = len(block)
        k, sbn, scheme = self._k, self._sbn, self.scheme
        source = rtp + pack_source_id(scheme, sbn, esi, k)
        block.append(rtp)
        if esi + 1 < k:
            return FecWriterOutput(source, [])
        r = self._r
        symbols = self._codec.encode(block, r)
        repair = [
            pack_repair_id(scheme, sbn, k + i, k, k + r) + sym for i, sym in enumerate(symbols)
        ]
        self._end_block()
        return FecWriterOutput(source, repair)

    def flush(self) -> None:
        """End the open block early; it gets no repair (a stream end or pause)."""
        if self._block:
            self._end_block()

    def _end_block(self) -> None:
        self._block = []
        self._sbn = (self._sbn + 1) % SBN_MODULUS

    def _check(self, k: int, r: int) -> None:
        check_block_size(self.scheme, k, r)
        self._codec.check_block(k, r)
