"""LDPC-Staircase (RFC 5170), byte-identical to Roc Toolkit 0.4 / OpenFEC.

Neither N1 nor the PRNG seed is on the wire: Roc fixes N1 = 7 and seed = 1297501556, and
K and N come from the payload IDs, so both ends rebuild the same parity-check matrix H.
H has R rows; each row is one equation "XOR of its symbols = 0" over source symbols chosen
by the RFC 5170 PRNG (N1 per source column, spread evenly) plus a staircase on the repair
symbols (row i holds repair i and repair i-1). Encoding walks down the staircase; decoding
first peels equations with one unknown, then runs GF(2) elimination on whatever is left,
so it rebuilds every lost source symbol that the received symbols determine.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import _ldpc_native
from ._errors import FecDecodeError

__all__ = ["LDPC_N1", "LDPC_SEED", "LdpcStaircaseCodec"]

LDPC_N1 = 7
"""Ones per source column of H, as Roc configures OpenFEC."""

LDPC_SEED = 1297501556
"""The PRNG seed Roc gives OpenFEC."""

ML_MAX_UNKNOWNS = 64
"""Lost source symbols that peeling leaves and the numpy decoder's Gaussian elimination
still takes on (one numpy pass per pivot). Beyond this (only in large blocks that lost a
large share) the rest stay lost: it keeps the largest block within a few ms. The
compiled core has no such cap."""

_LDPC_MAX_BLOCK = 0xFFFF  # N is a 16-bit field
_PRNG_MODULUS = 0x7FFFFFFF  # 2^31 - 1


class _Prng:
    """RFC 5170's "minimal standard" Park-Miller generator, with OpenFEC's scaling to maxv."""

    def __init__(self, seed: int) -> None:
        self._state = seed

    def rand(self, maxv: int) -> int:
        """A value in 0..maxv-1, computed in doubles exactly as the C code does."""
        self._state = self._state * 16807 % _PRNG_MODULUS
        return int(float(self._state) * float(maxv) / float(_PRNG_MODULUS))


@dataclass(frozen=True, slots=True)
class _Matrix:
    """H for one (K, R): rows as ESI bit masks, plus the tables encoding and decoding use."""

    row_masks: tuple[int, ...]  # bit e set <=> ESI e is in the row (sources and staircase)
    gather: npt.NDArray[np.intp]  # source indices of all rows, concatenated row by row
    starts: npt.NDArray[np.intp]  # where each row begins in `gather`
    sources: npt.NDArray[np.uint8]  # (R, K) 0/1: the source part of H, for decoding


def _source_rows(k: int, r: int, n1: int, seed: int) -> list[set[int]]:
    """The source part of H (row -> source indices), following RFC 5170 step by step."""
    prng = _Prng(seed)
    total = n1 * k
    choices = [t % r for t in range(total)]  # every row N1*K/R times: an even spread
    first = 0  # choices[:first] are used up
    rows: list[set[int]] = [set() for _ in range(r)]
    for col in range(k):
        taken: set[int] = set()
        for _ in range(n1):
            i = first
            while i < total and choices[i] in taken:
                i += 1
            if i < total:
                while True:
                    i = first + prng.rand(total - first)
                    if choices[i] not in taken:
                        break
                taken.add(choices[i])
                choices[i] = choices[first]
                first += 1
            else:  # no unused choice fits this column: any free row
                while True:
                    row = prng.rand(r)
                    if row not in taken:
                        break
                taken.add(row)
        for row in taken:
            rows[row].add(col)
    # Every row gets at least two source symbols (one when K = 1).
    for row_set in rows:
        if not row_set:
            row_set.add(prng.rand(k))
        if len(row_set) == 1 and k > 1:
            (only,) = row_set
            while True:
                col = prng.rand(k)
                if col != only:
                    break
            row_set.add(col)
    return rows


@functools.lru_cache(maxsize=16)
def _matrix(k: int, r: int, n1: int, seed: int) -> _Matrix:
    rows = [sorted(s) for s in _source_rows(k, r, n1, seed)]
    masks = []
    for i, cols in enumerate(rows):
        mask = 0
        for e in [*cols, k + i] + ([k + i - 1] if i else []):
            mask |= 1 << e
        masks.append(mask)
    gather = np.fromiter((c for cols in rows for c in cols), dtype=np.intp)
    lengths = [len(cols) for cols in rows]
    starts = np.cumsum([0, *lengths[:-1]], dtype=np.intp)
    sources = np.zeros((r, k), dtype=np.uint8)
    sources[np.repeat(np.arange(r), lengths), gather] = 1
    return _Matrix(tuple(masks), gather, starts, sources)


def _words(symbols: Sequence[bytes], length: int) -> npt.NDArray[np.uint64]:
    """Symbols as rows of 64-bit words (zero-padded to a multiple of 8 bytes) for fast XOR."""
    width = -(-length // 8)
    joined = b"".join(symbols)
    if length % 8 == 0:
        return np.frombuffer(joined, dtype=np.uint64).reshape(len(symbols), width)
    out = np.zeros((len(symbols), width), dtype=np.uint64)
    out.view(np.uint8)[:, :length] = np.frombuffer(joined, dtype=np.uint8).reshape(-1, length)
    return out


def _unwords(words: npt.NDArray[np.uint64], length: int) -> list[bytes]:
    raw = words.view(np.uint8)[:, :length].tobytes()
    return [raw[i : i + length] for i in range(0, len(raw), length)]


class LdpcStaircaseCodec:
    """The LDPC-Staircase erasure code with Roc's parameters (N1 and seed overridable).

    Decoding runs in the compiled core when it is built (`_ldpc_native`), else in numpy;
    `native` forces one (True needs the library).
    """

    def __init__(
        self, n1: int = LDPC_N1, seed: int = LDPC_SEED, *, native: bool | None = None
    ) -> None:
        if n1 < 1:
            raise ValueError(f"N1 must be positive, got {n1}")
        if not 0 < seed < _PRNG_MODULUS:
            raise ValueError(f"the PRNG seed must be in 1..2^31-2, got {seed}")
        if native and not _ldpc_native.available():
            raise ValueError("the compiled LDPC decoder is not built")
        self.n1 = n1
        self.seed = seed
        self.native = _ldpc_native.available() if native is None else native

    def check_block(self, k: int, n_repair: int) -> None:
        if k < 1 or k + n_repair > _LDPC_MAX_BLOCK:
            raise ValueError(f"LDPC needs 1 <= K and K + R <= 65535, got K={k}, R={n_repair}")
        if n_repair < self.n1:
            # OpenFEC refuses these parameters (and the RFC construction would not end).
            raise ValueError(f"LDPC-Staircase needs R >= N1 = {self.n1}, got R={n_repair}")

    def encode(self, source: Sequence[bytes], n_repair: int) -> list[bytes]:
        k = len(source)
        self.check_block(k, n_repair)
        length = len(source[0])
        if length == 0 or any(len(s) != length for s in source):
            raise ValueError("LDPC source symbols must be non-empty and of one length")
        m = _matrix(k, n_repair, self.n1, self.seed)
        words = _words(source, length)
        # Row i without its staircase part, then the staircase: repair_i ^= repair_{i-1}.
        parity = np.bitwise_xor.reduceat(words[m.gather], m.starts, axis=0)
        np.bitwise_xor.accumulate(parity, axis=0, out=parity)
        return _unwords(parity, length)

    def decode(self, k: int, n: int, symbols: Mapping[int, bytes]) -> list[bytes]:
        recovered = self.recover(k, n, symbols)
        out = []
        for esi in range(k):
            got = symbols.get(esi)
            if got is None:
                got = recovered.get(esi)
                if got is None:
                    raise FecDecodeError(f"LDPC block K={k}, N={n}: source ESI {esi} undetermined")
            out.append(got)
        return out

    def recover(self, k: int, n: int, symbols: Mapping[int, bytes]) -> dict[int, bytes]:
        length = self._check(k, n, symbols)
        missing = [esi for esi in range(k) if esi not in symbols]
        # Without a single repair symbol every equation keeps an unknown repair symbol.
        repairs = sorted(esi - k for esi in symbols if esi >= k)
        if not missing or not repairs:
            return {}
        m = _matrix(k, n - k, self.n1, self.seed)
        return _decode(m, k, length, symbols, missing, repairs, native=self.native)

    def _check(self, k: int, n: int, symbols: Mapping[int, bytes]) -> int:
        """The symbol length; FecDecodeError for a geometry or input this code cannot take."""
        if not 0 < k < n <= _LDPC_MAX_BLOCK or n - k < self.n1:
            raise FecDecodeError(f"LDPC block with K={k}, N={n} (N1={self.n1})")
        lengths = {len(s) for s in symbols.values()}
        if len(lengths) > 1 or 0 in lengths:
            raise FecDecodeError(f"symbols of lengths {sorted(lengths)} in one block")
        for esi in symbols:
            if not 0 <= esi < n:
                raise FecDecodeError(f"ESI {esi} outside a block of N={n}")
        return lengths.pop() if lengths else 0


def _decode(
    m: _Matrix,
    k: int,
    length: int,
    symbols: Mapping[int, bytes],
    missing: list[int],
    repairs: list[int],
    *,
    native: bool = False,
) -> dict[int, bytes]:
    """The lost source symbols that the received ones determine (maximum-likelihood).

    The staircase is solved away first: summing the rows from just after one received
    repair symbol up to the row of the next received one cancels every lost repair symbol
    between them, so each received repair symbol gives one equation over source symbols
    only (E equations, the U lost sources unknown). Those are peeled in vectorised rounds
    (an equation with one unknown left gives it away); what peeling leaves, if at most
    `ML_MAX_UNKNOWNS`, goes through Gaussian elimination on an independent subset of the
    equations. `native`: the compiled core does peeling and elimination (no cap). Cost:
    O(R x K) bytes for the equations plus O(E x U) per peeling round, and payload XORs
    proportional to the equations actually used.
    """
    rep = np.asarray(repairs, dtype=np.intp)
    starts = np.empty_like(rep)
    starts[0] = 0
    starts[1:] = rep[:-1] + 1
    eq_sources = np.bitwise_xor.reduceat(m.sources[: rep[-1] + 1], starts, axis=0)
    if native:
        return _ldpc_native.decode(eq_sources, k, length, symbols, repairs)
    miss = np.asarray(missing, dtype=np.intp)
    coef = eq_sources[:, miss]  # (E, U): the unknown part of each equation
    live = np.flatnonzero(coef.any(axis=1))
    if not live.size:
        return {}
    coef = coef[live]
    u_count = len(missing)
    # Symbolic peeling, one vectorised round at a time.
    work = coef.copy()
    solved_by = np.full(u_count, -1, dtype=np.intp)
    rounds: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]] = []
    while True:
        single = np.flatnonzero(work.sum(axis=1, dtype=np.intp) == 1)
        if not single.size:
            break
        us, first = np.unique(work[single].argmax(axis=1), return_index=True)
        eqs = single[first]
        solved_by[us] = eqs
        rounds.append((us, eqs))
        work[:, us] = 0
    residual = np.flatnonzero(solved_by < 0)
    basis: list[int] = []
    if 0 < residual.size <= ML_MAX_UNKNOWNS:
        basis = _independent_rows(work[:, residual])
    if not rounds and not basis:
        return {}
    # Payloads: unknowns are filled in dependency order into `found`.
    src_known = np.ones(k, dtype=bool)
    src_known[miss] = False
    found = np.zeros((u_count, -(-length // 8)), dtype=np.uint64)
    system = _System(eq_sources, coef, live, rep, src_known, symbols, k, length)
    for us, eqs in rounds:
        found[us] = system.values(found, eqs, us)
    determined = [int(u) for us, _ in rounds for u in us]
    if basis:
        rows = np.asarray(basis, dtype=np.intp)
        values = system.values(found, rows, None, exclude=residual)
        bits = _pack(work[np.asarray(basis, dtype=np.intp)][:, residual])
        for col, value in _gauss_jordan(bits, values):
            u = int(residual[col])
            found[u] = value
            determined.append(u)
    determined.sort()
    raw = _unwords(found[determined], length)
    return {missing[u]: raw[i] for i, u in enumerate(determined)}


class _System:
    """The reduced equations of one decode, and how to evaluate them on payloads."""

    def __init__(
        self,
        eq_sources: npt.NDArray[np.uint8],
        coef: npt.NDArray[np.uint8],
        live: npt.NDArray[np.intp],
        rep: npt.NDArray[np.intp],
        src_known: npt.NDArray[np.bool_],
        symbols: Mapping[int, bytes],
        k: int,
        length: int,
    ) -> None:
        self.eq_sources = eq_sources
        self.coef = coef
        self.live = live
        self.rep = rep
        self.src_known = src_known
        self.symbols = symbols
        self.k = k
        self.length = length

    def values(
        self,
        found: npt.NDArray[np.uint64],
        rows: npt.NDArray[np.intp],
        targets: npt.NDArray[np.intp] | None,
        *,
        exclude: npt.NDArray[np.intp] | None = None,
    ) -> npt.NDArray[np.uint64]:
        """XOR of every term of the equations `rows` (rows of `coef`) except the unknown
        `targets[i]` of row i (or the unknowns `exclude`): the value of that unknown, or
        the right-hand side left for the unknowns excluded. Unknown terms are read from
        `found`; only the received symbols the rows name are copied."""
        n = rows.size
        k = self.k
        eq = self.live[rows]
        known = self.eq_sources[eq] & self.src_known  # (n, K): received sources per row
        counts = known.sum(axis=1, dtype=np.intp) + 1 + (eq > 0)
        r_src, c_src = np.nonzero(known)
        esis = np.empty(int(counts.sum()), dtype=np.intp)
        offsets = np.zeros(n, dtype=np.intp)
        np.cumsum(counts[:-1], out=offsets[1:])
        # Row i's terms: its received sources (row-major from nonzero), then its repairs.
        src_counts = counts - 1 - (eq > 0)
        src_start = np.cumsum(src_counts) - src_counts  # first nonzero of each row
        slot = offsets[r_src] + np.arange(r_src.size) - src_start[r_src]
        esis[slot] = c_src
        ends = offsets + counts
        esis[ends - 1 - (eq > 0)] = k + self.rep[eq]
        prev = np.flatnonzero(eq > 0)
        esis[ends[prev] - 1] = k + self.rep[eq[prev] - 1]
        symbols = self.symbols
        words = _words([symbols[e] for e in esis.tolist()], self.length)
        # Every row holds its own repair symbol, so no segment is empty.
        out = _xor_segments(words, offsets)
        unknown = self.coef[rows].copy()
        if targets is not None:
            unknown[np.arange(n), targets] = 0
        if exclude is not None:
            unknown[:, exclude] = 0
        r_unk, c_unk = np.nonzero(unknown)
        if r_unk.size:
            has = np.unique(r_unk)
            starts = np.searchsorted(r_unk, has)
            out[has] ^= _xor_segments(found[c_unk], starts)
        return out


def _xor_segments(
    words: npt.NDArray[np.uint64], offsets: npt.NDArray[np.intp]
) -> npt.NDArray[np.uint64]:
    """XOR of the rows of `words` in each segment [offsets[i], offsets[i+1]) (non-empty).

    `reduceat` along rows is several times slower than `reduce` on long segments, so a
    few long segments are reduced one by one.
    """
    n = offsets.size
    if n > 32 and words.shape[0] < 16 * n:
        return np.bitwise_xor.reduceat(words, offsets, axis=0)
    out = np.empty((n, words.shape[1]), dtype=words.dtype)
    bounds = [*offsets.tolist(), words.shape[0]]
    for i in range(n):
        np.bitwise_xor.reduce(words[bounds[i] : bounds[i + 1]], axis=0, out=out[i])
    return out


def _pack(sub: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """Rows of a 0/1 matrix as bit rows of 64-bit words (column c: word c // 64, bit c % 64)."""
    rows, cols = sub.shape
    padded = np.zeros((rows, -(-cols // 64) * 64), dtype=np.uint8)
    padded[:, :cols] = sub
    return np.packbits(padded, axis=1, bitorder="little").view(np.uint64)


def _has(bits: npt.NDArray[np.uint64], col: int) -> npt.NDArray[np.bool_]:
    """Which bit rows hold column `col`."""
    has: npt.NDArray[np.bool_] = (bits[:, col >> 6] >> np.uint64(col & 63)) & np.uint64(1) != 0
    return has


def _independent_rows(sub: npt.NDArray[np.uint8]) -> list[int]:
    """Indices of rows of the 0/1 matrix `sub` that span its rows (GF(2) echelon form on
    bits only: no payload is touched)."""
    bits = _pack(sub)
    free: npt.NDArray[np.bool_] = np.asarray(bits.any(axis=1))
    chosen = []
    for c in range(sub.shape[1]):
        cand = np.flatnonzero(_has(bits, c) & free)
        if not cand.size:
            continue
        p = int(cand[0])
        chosen.append(p)
        free[p] = False
        if cand.size > 1:
            bits[cand[1:]] ^= bits[p]
    return chosen


def _gauss_jordan(
    bits: npt.NDArray[np.uint64], values: npt.NDArray[np.uint64]
) -> list[tuple[int, npt.NDArray[np.uint64]]]:
    """Solve independent GF(2) equations (bit row `bits[i]`: which unknowns; `values[i]`:
    their XOR): (unknown, value) for every unknown they pin down."""
    free = np.ones(len(bits), dtype=bool)
    pivots: dict[int, int] = {}  # column -> row
    for c in range(bits.shape[1] * 64):
        has = _has(bits, c)
        cand = np.flatnonzero(has & free)
        if not cand.size:
            continue
        p = int(cand[0])
        free[p] = False
        pivots[c] = p
        others = np.flatnonzero(has)
        others = others[others != p]
        if others.size:
            bits[others] ^= bits[p]
            values[others] ^= values[p]
    out = []
    for c, row in pivots.items():
        single = np.zeros(bits.shape[1], dtype=np.uint64)
        single[c >> 6] = np.uint64(1 << (c & 63))
        if np.array_equal(bits[row], single):
            out.append((c, values[row]))
    return out
