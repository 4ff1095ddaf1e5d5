"""The receiving side of FECFRAME: datagrams in any order in, rebuilt RTP packets out.

A source datagram's own RTP packet is played by the caller whatever the FEC reader makes
of it: FEC only adds packets, it never holds one back. Each block collects the symbols
that arrive for it and is decoded at most once, when decoding can succeed; the rebuilt
RTP packets are returned right away, so a real-time receiver can still play them.

Every datagram is hostile: a repair packet carries no SSRC and can be forged from the
sender's address by anyone on the path. So the reader keeps what a packet can buy small
and bounded (ROC_PROTOCOL.md §3.4 gives Roc's own rules, which these tighten):

* Geometry. The first source packet fixes the session's K and symbol length, the first
  repair packet that agrees with them, for a block the stream's source packets opened,
  fixes N (RS8M: always 255), within the limits
  (`max_block` symbols, `max_block_bytes` per block). A packet whose geometry disagrees
  is counted (`inconsistent`) and dropped before anything is stored or decoded.
* Window. Only source packets move the block window, and the caller feeds only those
  that passed the session's RTP checks (SSRC, payload type, sequence and timestamp
  jumps). A source packet must also agree with the stream's numbering: a block holds
  consecutive sequence numbers (ESI 0 first), so block `newest + d` starts between `d`
  and `d x K` sequence numbers after block `newest`; a packet that disagrees (or is older
  than the window) is counted `misaligned` and not used for FEC. Only when `2 x K` such
  packets come in a row (a sender that really renumbered its blocks, or changed its
  geometry) does the reader start over from them (`resets`). A repair packet never moves
  the window: outside [newest - window + 1, newest + 2] it is counted (`late`,
  `outside_window`) and dropped.
* Decoding. A block is decoded at most once: RS8M as soon as it holds K symbols (it then
  always succeeds), LDPC once its symbols are in: all N of them, or a later block started
  and two audio periods (or half a block of source packets) went by, so the repair
  symbols a sender sends in the same burst still count (it may rebuild part of a block).
  Repair symbols that come for a block already decoded are dropped (`stragglers`). A
  decode costs at most `MAX_DECODE_WORK` (blocks that would cost more are left as they
  are, `too_costly`), and a `FecBudget` shared by a receiver's sessions caps the work of
  one audio period; a decode that does not fit waits for the next period (`deferred`,
  run by `poll`).
* Memory: at most `window_blocks` blocks (fewer for large blocks: `window_bytes`), each
  at most one block's symbols, freed as soon as the block is decoded or complete.

Bad input is counted and dropped, never raised: the reader is fed straight from a socket.
"""

from __future__ import annotations

import struct
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
from ._wrap import seq_diff

__all__ = ["FecBudget", "FecReader", "FecReaderStats"]

DEFAULT_WINDOW_BLOCKS = 16
"""Blocks kept: 16 default blocks (18 x 5 ms) span 1.4 s, more than any sane latency."""

DEFAULT_MAX_BLOCK = 1024
"""Largest LDPC N accepted (RS8M blocks are at most 255 by construction)."""

DEFAULT_MAX_BLOCK_BYTES = 1 << 20
"""Largest block accepted, in symbol bytes (N x length; RS8M: K x length): 40 times Roc's
default block (28 x 896 bytes)."""

DEFAULT_WINDOW_BYTES = 4 << 20
"""Symbol bytes the window may hold: large blocks get fewer than `window_blocks` (>= 2)."""

MAX_DECODE_WORK = 3_000_000
"""Work units one decode may take (about 2 ms here, quiet): RS8M K x lost x length
GF(2^8) products (zfec), LDPC 2 x N x length (1 MiB, the largest block, fits). Roc's
default block costs at most 162,000 (RS8M, 10 lost)."""

AHEAD_BLOCKS = 2
"""How far past the newest block a repair packet may open one (interleaved senders)."""

_LDPC_COST = 2
_RTP_SEQ = struct.Struct(">H")


class FecBudget:
    """Decode work allowed per audio period, shared by the sessions of one receiver.

    The receiver `refill`s it at each output period; a decode `take`s its cost first and
    waits for a later period when the rest of this one is too small.
    """

    __slots__ = ("left", "per_period", "spent")

    def __init__(self, per_period: int = MAX_DECODE_WORK) -> None:
        if per_period < 1:
            raise ValueError(f"per_period must be >= 1, got {per_period}")
        self.per_period = per_period
        self.left = per_period
        self.spent = 0  # work units taken since the budget was made

    def refill(self) -> None:
        self.left = self.per_period

    def take(self, cost: int) -> bool:
        """Spend `cost` units if this period has them left."""
        if cost > self.left:
            return False
        self.left -= cost
        self.spent += cost
        return True


@dataclass(slots=True)
class FecReaderStats:
    """Counters of a FecReader since it was made (packets unless said otherwise)."""

    source_received: int = 0  # source datagrams taken into a block (first copies)
    repair_received: int = 0  # repair datagrams taken into a block (first copies)
    recovered: int = 0  # source packets rebuilt from repair symbols (some may be overtaken)
    unrepaired_blocks: int = 0  # blocks dropped with source packets still missing
    lost: int = 0  # source packets missing from those blocks
    malformed: int = 0  # datagrams that do not parse or give an unusable geometry
    inconsistent: int = 0  # packets whose K, N or length disagree with the session's
    misaligned: int = 0  # source packets whose block number disagrees with their seq
    duplicates: int = 0  # second copies
    overtaken: int = 0  # originals that arrived after they had been rebuilt
    late: int = 0  # packets for blocks older than the window
    outside_window: int = 0  # repair packets for blocks beyond the window (never move it)
    stragglers: int = 0  # repair symbols for blocks already decoded
    resets: int = 0  # times the reader started over (a sender that renumbered its blocks)
    decodes: int = 0  # decodes run (at most one per block)
    decode_failures: int = 0  # decodes that rebuilt nothing
    deferred: int = 0  # decodes put off to a later audio period by the budget
    too_costly: int = 0  # blocks left undecoded: more work than one decode may take


class _Block:
    """What has arrived for one block; its symbols are freed once it is decoded or whole."""

    __slots__ = (
        "closing",
        "closing_packets",
        "closing_periods",
        "decoded",
        "missing",
        "pending",
        "rebuilt",
        "repairs",
        "seen",
        "sourced",
        "symbols",
    )

    def __init__(self, k: int) -> None:
        self.seen: set[int] = set()  # ESIs received or rebuilt, for duplicate detection
        self.symbols: dict[int, bytes] = {}
        self.rebuilt: set[int] = set()  # rebuilt source ESIs whose original has not come
        self.missing = k  # source packets neither received nor rebuilt
        self.repairs = 0  # repair symbols held
        self.decoded = False  # decoding ran (or was ruled out): never again
        self.pending = False  # waiting for budget
        self.sourced = False  # a source packet of the stream opened or joined it
        self.closing = False  # a later block started (LDPC: decode soon)
        self.closing_periods = 0  # audio periods since then
        self.closing_packets = 0  # source packets since then


class FecReader:
    """Rebuilds the lost source packets of one sender from its repair datagrams.

    The same scheme (and codec parameters) as the sender's must be used: nothing on the
    wire says which it is. `budget` (shared by a receiver's sessions) caps the decode work
    of one audio period; without one, only `MAX_DECODE_WORK` per decode applies.
    """

    def __init__(
        self,
        scheme: FecScheme,
        *,
        codec: BlockCodec | None = None,
        window_blocks: int = DEFAULT_WINDOW_BLOCKS,
        max_block: int = DEFAULT_MAX_BLOCK,
        max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES,
        window_bytes: int = DEFAULT_WINDOW_BYTES,
        budget: FecBudget | None = None,
    ) -> None:
        if window_blocks < 1 or max_block < 2 or max_block_bytes < 2 or window_bytes < 2:
            raise ValueError("window_blocks >= 1, max_block, max_block_bytes >= 2 required")
        self.scheme = scheme
        self._codec = codec if codec is not None else default_codec(scheme)
        self._rs8m = scheme is FecScheme.RS8M
        self._max_window = window_blocks
        self._window = window_blocks
        self._window_bytes = window_bytes
        self._max_block = RS8M_MAX_BLOCK if self._rs8m else max_block
        self._max_block_bytes = max_block_bytes
        self.budget = budget
        self.stats = FecReaderStats()
        self._blocks: dict[int, _Block] = {}
        self._pending: list[int] = []  # SBNs waiting for budget, oldest first
        self._closing: list[int] = []  # LDPC SBNs to decode at the next packet or period
        # The session's geometry: K and symbol length from the first source packet, N from
        # the first repair packet that agrees (RS8M: 255).
        self._k: int | None = None
        self._length = 0
        self._n: int | None = RS8M_MAX_BLOCK if self._rs8m else None
        self._newest: int | None = None  # SBN of the newest block
        self._newest_base = 0  # extended seq of ESI 0 of the newest block
        self._streak = 0  # misaligned or mismatching source packets in a row
        self._own_seq: int | None = None  # `feed_source`'s own seq extension

    @property
    def held_blocks(self) -> int:
        """Blocks currently kept (at most the window)."""
        return len(self._blocks)

    @property
    def geometry(self) -> tuple[int, int, int] | None:
        """(K, N, symbol length) the session's blocks must have; None before any is known
        (N is 0 until the first LDPC repair packet)."""
        if self._k is None:
            return None
        return self._k, self._n or 0, self._length

    @property
    def newest_block(self) -> int | None:
        """SBN of the newest block (moved by source packets only)."""
        return self._newest

    @property
    def window_blocks(self) -> int:
        """Blocks the window spans for the session's geometry."""
        return self._window

    @property
    def held_symbols(self) -> int:
        """Symbols held over all blocks (memory: times the symbol length)."""
        return sum(len(b.symbols) for b in self._blocks.values())

    # -- packets in -----------------------------------------------------------------------

    def feed_source(self, datagram: bytes) -> list[bytes]:
        """A source datagram on its own (no RTP checks before): its RTP packet first (unless
        it is a second copy of one given out already), then any packets rebuilt. Its
        sequence number is read from the RTP header."""
        try:
            rtp, pid = parse_source_datagram(self.scheme, datagram)
        except MalformedPacket:
            self.stats.malformed += 1
            return []
        if len(rtp) < 4:
            self.stats.malformed += 1
            return []
        seq = _RTP_SEQ.unpack_from(rtp, 2)[0]
        high = self._own_seq
        ext = seq if high is None else high + seq_diff(seq, high)
        if high is None or ext > high:
            self._own_seq = ext
        copies = self.stats.duplicates + self.stats.overtaken
        rebuilt = self.feed_source_id(rtp, pid.sbn, pid.esi, pid.k, ext)
        if self.stats.duplicates + self.stats.overtaken != copies:
            return rebuilt  # a second copy of a packet already given out
        return [rtp, *rebuilt]

    def feed_source_id(self, rtp: bytes, sbn: int, esi: int, k: int, ext_seq: int) -> list[bytes]:
        """Packets rebuilt thanks to a source packet that passed the session's RTP checks
        (`ext_seq`: its extended sequence number; payload ID already parsed: SBN modulo
        2^16, 0 <= ESI < K; `rtp`: the datagram without its footer). The packet itself is
        the caller's to play, whatever happens here."""
        stats = self.stats
        if self._k is None:
            if not self._learn(k, len(rtp)):
                return []
        elif k != self._k or len(rtp) != self._length:
            stats.inconsistent += 1
            return self._mismatch(rtp, sbn, esi, k, ext_seq)
        base = ext_seq - esi
        newest = self._newest
        if newest is None:
            self._newest, self._newest_base = sbn, base
            d = 0
        else:
            d = sbn_diff(sbn, newest)
            db = base - self._newest_base
            kk = self._k
            assert kk is not None
            if d > 0:
                aligned = d <= db <= d * kk
            elif d < 0:
                aligned = d * kk <= db <= d and -d < self._window
            else:
                aligned = db == 0
            if not aligned:
                if d < 0 and -d >= self._window and d * kk <= db <= d:
                    stats.late += 1  # a real but old packet: no use to FEC any more
                    self._streak = 0
                    return []
                stats.misaligned += 1
                return self._mismatch(rtp, sbn, esi, k, ext_seq)
        self._streak = 0
        # LDPC blocks marked closing by an earlier packet of a later block: their repair
        # symbols (sent right after their last source packet) have had time to come.
        out = self._decode_closing(period=False) if self._closing else []
        if d > 0:
            self._newest, self._newest_base = sbn, base
            self._drop([b for b in self._blocks if sbn_diff(sbn, b) >= self._window])
            if not self._rs8m:
                self._mark_closing(sbn)
        block = self._blocks.get(sbn)
        if block is None:
            block = self._blocks[sbn] = _Block(k)
        out += self._add(sbn, block, esi, rtp, is_source=True)
        return out

    def feed_repair(self, datagram: bytes) -> list[bytes]:
        """Packets rebuilt thanks to a repair datagram from the session's address (often
        none). It never moves the window; one that disagrees with the session is dropped
        before anything is stored or decoded."""
        stats = self.stats
        try:
            symbol, pid = parse_repair_datagram(self.scheme, datagram)
        except MalformedPacket:
            stats.malformed += 1
            return []
        newest = self._newest
        if self._k is None or newest is None:
            stats.outside_window += 1  # no source packet yet: nothing to repair
            return []
        if pid.k != self._k or len(symbol) != self._length:
            stats.inconsistent += 1
            return []
        d = sbn_diff(pid.sbn, newest)
        if self._n is None:
            # N is learned only in a block the stream's own source packets opened, so a
            # forged repair packet for any other block cannot set it.
            opened = self._blocks.get(pid.sbn)
            if opened is None or not opened.sourced:
                stats.outside_window += 1
                return []
            if not self._learn_n(pid.n):
                return []
        elif pid.n != self._n:
            stats.inconsistent += 1
            return []
        if d > AHEAD_BLOCKS:
            stats.outside_window += 1
            return []
        if -d >= self._window:
            stats.late += 1
            return []
        block = self._blocks.get(pid.sbn)
        if block is None:
            block = self._blocks[pid.sbn] = _Block(self._k)
        elif block.decoded:
            stats.stragglers += 1
            return []
        return self._add(pid.sbn, block, pid.esi, symbol, is_source=False)

    def poll(self) -> list[bytes]:
        """Run the decodes that waited for budget, as far as this period's budget goes
        (the receiver calls this once per audio period, after refilling the budget), and
        those of LDPC blocks that a later block closed."""
        out = self._decode_closing(period=True) if self._closing else []
        while self._pending:
            sbn = self._pending[0]
            block = self._blocks.get(sbn)
            if block is None or block.decoded or not block.pending:
                self._pending.pop(0)
                continue
            rebuilt = self._decode(sbn, block)
            if block.pending:
                break  # still no budget
            self._pending.pop(0)
            out += rebuilt
        return out

    def flush(self) -> None:
        """Forget every block, counting those left incomplete (end of a stream)."""
        self._drop(list(self._blocks))
        self._newest = None
        self._pending.clear()
        self._closing.clear()

    # -- internals --------------------------------------------------------------------------

    def _learn(self, k: int, length: int) -> bool:
        """Take K and the symbol length from a source packet, within the limits."""
        size = length * (k if self._rs8m else 1)
        if not 0 < k < self._max_block or size > self._max_block_bytes or length == 0:
            self.stats.malformed += 1
            return False
        self._k, self._length = k, length
        if self._rs8m:
            self._set_window(k * length)
        return True

    def _learn_n(self, n: int) -> bool:
        """Take LDPC N from the first repair packet that agrees with K and the length."""
        k = self._k
        assert k is not None
        try:
            if n > self._max_block or n * self._length > self._max_block_bytes:
                raise ValueError(f"N={n} above the limits")
            self._codec.check_block(k, n - k)
        except ValueError:
            self.stats.malformed += 1
            return False
        self._n = n
        self._set_window(n * self._length)
        return True

    def _set_window(self, block_bytes: int) -> None:
        self._window = max(2, min(self._max_window, self._window_bytes // block_bytes))
        if self._newest is not None:
            newest = self._newest
            self._drop([b for b in self._blocks if sbn_diff(newest, b) >= self._window])

    def _mismatch(self, rtp: bytes, sbn: int, esi: int, k: int, ext_seq: int) -> list[bytes]:
        """A source packet that passed the RTP checks but not the FEC ones. Many in a row
        mean the sender renumbered its blocks or changed their geometry: start over."""
        self._streak += 1
        if self._streak < 2 * (self._k or 1):
            return []
        self.stats.resets += 1
        self._streak = 0
        self.flush()
        self._k = None
        self._n = RS8M_MAX_BLOCK if self._rs8m else None
        self._window = self._max_window
        return self.feed_source_id(rtp, sbn, esi, k, ext_seq)

    def _add(
        self, sbn: int, block: _Block, esi: int, symbol: bytes, *, is_source: bool
    ) -> list[bytes]:
        stats = self.stats
        if esi in block.seen:
            if esi in block.rebuilt:
                block.rebuilt.discard(esi)
                stats.overtaken += 1
            else:
                stats.duplicates += 1
            return []
        block.seen.add(esi)
        if is_source:
            stats.source_received += 1
            block.sourced = True
        else:
            stats.repair_received += 1
        if block.missing == 0 or block.decoded:
            return []  # whole, or decoded already: the symbol is of no use
        block.symbols[esi] = symbol
        if is_source:
            block.missing -= 1
            if block.missing == 0:
                block.symbols.clear()
                return []
        else:
            block.repairs += 1
        if self._ready(sbn, block):
            return self._decode(sbn, block)
        return []

    def _ready(self, sbn: int, block: _Block) -> bool:
        """Whether the block should be decoded now (it can succeed, and will not get
        better): RS8M with K symbols; LDPC once its symbols are in."""
        if block.decoded or block.pending or block.repairs == 0 or block.missing == 0:
            return False
        k = self._k
        assert k is not None
        assert self._newest is not None
        if self._rs8m:
            return len(block.symbols) >= k
        if len(block.seen) >= (self._n or 0):
            return True
        # A later block started, and then two audio periods or half a block of source
        # packets went by: every datagram sent in the same burst has been read by then
        # (a link drains its sockets one after the other, once a period).
        return block.closing and (
            block.closing_periods >= 2 or block.closing_packets >= max(2, k // 2)
        )

    def _mark_closing(self, newest: int) -> None:
        """A later block started: older LDPC blocks will get no more symbols once the
        burst it came in has been read (see `_ready`)."""
        for sbn, block in self._blocks.items():
            if sbn_diff(newest, sbn) > 0 and not block.closing:
                block.closing = True
                if block.missing and not block.decoded:
                    self._closing.append(sbn)

    def _decode_closing(self, *, period: bool) -> list[bytes]:
        """Age the closing blocks by one source packet (or one audio `period`) and decode
        those whose time came; the others (no repair symbol yet) keep waiting."""
        out: list[bytes] = []
        keep: list[int] = []
        for sbn in self._closing:
            block = self._blocks.get(sbn)
            if block is None or block.decoded or not block.missing:
                continue
            if period:
                block.closing_periods += 1
            else:
                block.closing_packets += 1
            if self._ready(sbn, block):
                out += self._decode(sbn, block)
            elif not block.pending:
                keep.append(sbn)
        self._closing = keep
        return out

    def _cost(self, block: _Block) -> int:
        k = self._k
        assert k is not None
        if self._rs8m:
            return k * block.missing * self._length
        return _LDPC_COST * (self._n or 0) * self._length

    def _decode(self, sbn: int, block: _Block) -> list[bytes]:
        """Decode the block once (budget permitting); the rebuilt packets, ESI order."""
        stats = self.stats
        cost = self._cost(block)
        if cost > MAX_DECODE_WORK:
            stats.too_costly += 1
            block.decoded = True
            block.symbols.clear()
            return []
        budget = self.budget
        if budget is not None and not budget.take(cost):
            if not block.pending:
                block.pending = True
                stats.deferred += 1
                self._pending.append(sbn)
            return []
        block.pending = False
        block.decoded = True
        stats.decodes += 1
        k, n = self._k, self._n
        assert k is not None
        assert n is not None
        try:
            rebuilt = self._codec.recover(k, n, block.symbols)
        except FecDecodeError:
            rebuilt = {}
        block.symbols.clear()  # decoded once: nothing more will be done with them
        out = []
        for esi in sorted(rebuilt):
            if esi in block.seen:
                continue
            block.seen.add(esi)
            block.rebuilt.add(esi)
            block.missing -= 1
            out.append(rebuilt[esi])
        if not out:
            stats.decode_failures += 1
        stats.recovered += len(out)
        return out

    def _drop(self, sbns: list[int]) -> None:
        for sbn in sbns:
            block = self._blocks.pop(sbn)
            if block.missing:
                self.stats.unrepaired_blocks += 1
                self.stats.lost += block.missing
