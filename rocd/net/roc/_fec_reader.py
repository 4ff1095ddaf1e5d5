"""The receiving side of FECFRAME: datagrams in any order in, RTP packets out.

A source datagram yields its RTP packet at once (the receiver must not wait on FEC for
packets that arrived). Each block collects the symbols that arrive for it; whenever a
block with lost source packets gains a symbol, the codec is asked what it can rebuild, and
the rebuilt RTP packets are returned right away, so a real-time receiver can still play
them if they come before their playout time.

Rebuilding is eager: the reader has no clock, so it cannot tell a lost packet from a late
one. When repair packets overtake source packets (reordering, or a sender that interleaves)
a block may be rebuilt before its originals come; those originals are then dropped and
counted as `overtaken`, so `recovered - overtaken` is what FEC really saved.

Rules (after Roc's `fec::Reader`, §3.4 of the protocol notes):
* The geometry (K, N, symbol length) of a block is fixed by its first packet; later
  packets that disagree are dropped. LDPC source footers carry no N: it comes with the
  first repair packet. RS8M reports N = 255 for every block.
* Only a window of recent blocks is kept (`window_blocks`, counted back from the newest
  SBN seen); older blocks are dropped, and packets for them are dropped as late. A block
  dropped with source packets still missing counts as unrepaired.
* An SBN jump of more than `max_sbn_jump` blocks either way (a restarted sender, or
  garbage) forgets every block and starts over from the new SBN, as Roc does.
* Bad input is counted and dropped, never raised: the reader is fed straight from a socket.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import FecDecodeError, MalformedPacket
from ._fec_codec import BlockCodec, default_codec
from ._fecframe import (
    RS8M_MAX_BLOCK,
    FecScheme,
    parse_repair_datagram,
    parse_source_datagram,
    sbn_diff,
)

__all__ = ["FecReader", "FecReaderStats"]

DEFAULT_WINDOW_BLOCKS = 16
"""Blocks kept: 16 default blocks (18 x 5 ms) span 1.4 s, more than any sane latency."""

DEFAULT_MAX_BLOCK = 1024
"""Largest LDPC N accepted: bounds what one block may hold (N x symbol length bytes) and
the parity-check matrices built for it. RS8M blocks are at most 255 by construction."""

ROC_MAX_SBN_JUMP = 100
"""Roc's `max_sbn_jump`: a larger jump in block numbers restarts FEC reading."""


@dataclass(slots=True)
class FecReaderStats:
    """Counters of a FecReader since it was made (packets unless said otherwise)."""

    source_received: int = 0  # source datagrams accepted (first copies)
    repair_received: int = 0  # repair datagrams accepted (first copies)
    recovered: int = 0  # source packets rebuilt from repair symbols (some may be overtaken)
    unrepaired_blocks: int = 0  # blocks dropped with source packets still missing
    lost: int = 0  # source packets missing from those blocks
    malformed: int = 0  # datagrams that do not parse or give an unusable geometry
    inconsistent: int = 0  # packets whose K, N or length disagree with their block
    duplicates: int = 0  # second copies
    overtaken: int = 0  # originals that arrived after they had been rebuilt (not returned)
    late: int = 0  # packets for blocks older than the window (dropped or never seen)
    resets: int = 0  # SBN jumps that restarted the reader


class _Block:
    """What has arrived for one block; its symbols are freed once every source is in."""

    __slots__ = ("k", "length", "missing", "n", "rebuilt", "repairs", "seen", "symbols")

    def __init__(self, k: int, n: int | None, length: int) -> None:
        self.k = k
        self.n = n  # None until known (LDPC: the first repair packet tells)
        self.length = length
        self.seen: set[int] = set()  # ESIs received or rebuilt, for duplicate detection
        self.symbols: dict[int, bytes] = {}
        self.rebuilt: set[int] = set()  # rebuilt source ESIs whose original has not come
        self.missing = k  # source packets neither received nor rebuilt
        self.repairs = 0  # repair symbols held


class FecReader:
    """Turns the source and repair datagrams of one sender into RTP packets.

    The same scheme (and codec parameters) as the sender's must be used: nothing on the
    wire says which it is.
    """

    def __init__(
        self,
        scheme: FecScheme,
        *,
        codec: BlockCodec | None = None,
        window_blocks: int = DEFAULT_WINDOW_BLOCKS,
        max_block: int = DEFAULT_MAX_BLOCK,
        max_sbn_jump: int = ROC_MAX_SBN_JUMP,
    ) -> None:
        if window_blocks < 1 or max_block < 2 or max_sbn_jump < 1:
            raise ValueError("window_blocks, max_sbn_jump >= 1 and max_block >= 2 required")
        self.scheme = scheme
        self._codec = codec if codec is not None else default_codec(scheme)
        self._window = window_blocks
        self._max_block = max_block
        self._max_jump = max_sbn_jump
        self._blocks: dict[int, _Block] = {}
        self._newest: int | None = None
        self._source_n = RS8M_MAX_BLOCK if scheme is FecScheme.RS8M else None
        self.stats = FecReaderStats()

    @property
    def held_blocks(self) -> int:
        """Blocks currently kept (at most `window_blocks`)."""
        return len(self._blocks)

    def feed_source(self, datagram: bytes) -> list[bytes]:
        """RTP packets released by a source datagram: its own first, then any rebuilt ones."""
        try:
            rtp, pid = parse_source_datagram(self.scheme, datagram)
        except MalformedPacket:
            self.stats.malformed += 1
            return []
        return self.feed_source_id(rtp, pid.sbn, pid.esi, pid.k)

    def feed_source_id(self, rtp: bytes, sbn: int, esi: int, k: int) -> list[bytes]:
        """`feed_source` for a datagram whose payload ID the caller parsed already (SBN
        modulo 2^16, 0 <= ESI < K); `rtp` is the datagram without its footer."""
        if k > self._max_block:
            self.stats.malformed += 1
            return []
        return self._accept(sbn, esi, k, self._source_n, rtp)

    def feed_repair(self, datagram: bytes) -> list[bytes]:
        """Rebuilt RTP packets that a repair datagram makes available (often none)."""
        try:
            symbol, pid = parse_repair_datagram(self.scheme, datagram)
            if self.scheme is not FecScheme.RS8M and pid.n > self._max_block:
                raise MalformedPacket(f"N={pid.n} above the limit of {self._max_block}")
            self._codec.check_block(pid.k, pid.n - pid.k)
        except (MalformedPacket, ValueError):
            self.stats.malformed += 1
            return []
        return self._accept(pid.sbn, pid.esi, pid.k, pid.n, symbol)

    def flush(self) -> None:
        """Forget every block, counting those left incomplete (end of a stream)."""
        self._drop(list(self._blocks))
        self._newest = None

    def _accept(self, sbn: int, esi: int, k: int, n: int | None, symbol: bytes) -> list[bytes]:
        if sbn != self._newest and not self._advance(sbn):
            self.stats.late += 1
            return []
        block = self._blocks.get(sbn)
        if block is None:
            block = self._blocks[sbn] = _Block(k, n, len(symbol))
        elif (
            block.k != k
            or block.length != len(symbol)
            or (n is not None and block.n is not None and block.n != n)
        ):
            self.stats.inconsistent += 1
            return []
        if esi in block.seen:
            if esi in block.rebuilt:
                block.rebuilt.discard(esi)
                self.stats.overtaken += 1
            else:
                self.stats.duplicates += 1
            return []
        block.seen.add(esi)
        is_source = esi < k
        if is_source:
            self.stats.source_received += 1
            out = [symbol]
        else:
            self.stats.repair_received += 1
            out = []
            if block.n is None:
                block.n = n
        if block.missing == 0:
            return out  # complete: late repair symbols are of no use
        block.symbols[esi] = symbol
        if is_source:
            block.missing -= 1
            if block.missing == 0:
                block.symbols.clear()
                return out
        else:
            block.repairs += 1
        if block.repairs and block.n is not None:
            out.extend(self._repair(block, block.n))
        return out

    def _repair(self, block: _Block, n: int) -> list[bytes]:
        """Source packets the block's symbols now determine (ESI order), recorded as rebuilt."""
        try:
            rebuilt = self._codec.recover(block.k, n, block.symbols)
        except FecDecodeError:
            return []  # geometry refused by the codec; the block ends unrepaired
        out = []
        for esi in sorted(rebuilt):
            if esi in block.seen:
                continue
            block.seen.add(esi)
            block.rebuilt.add(esi)
            block.symbols[esi] = rebuilt[esi]
            block.missing -= 1
            out.append(rebuilt[esi])
        self.stats.recovered += len(out)
        if block.missing == 0:
            block.symbols.clear()
        return out

    def _advance(self, sbn: int) -> bool:
        """Move the window for a packet of block `sbn`; False if that block is too old."""
        if self._newest is None:
            self._newest = sbn
            return True
        ahead = sbn_diff(sbn, self._newest)
        if abs(ahead) > self._max_jump:
            self.stats.resets += 1
            self._drop(list(self._blocks))
            self._newest = sbn
            return True
        if ahead > 0:
            self._newest = sbn
            self._drop([b for b in self._blocks if sbn_diff(sbn, b) >= self._window])
            return True
        return -ahead < self._window

    def _drop(self, sbns: list[int]) -> None:
        for sbn in sbns:
            block = self._blocks.pop(sbn)
            if block.missing:
                self.stats.unrepaired_blocks += 1
                self.stats.lost += block.missing
