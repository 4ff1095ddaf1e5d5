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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._errors import FecDecodeError

__all__ = ["LDPC_N1", "LDPC_SEED", "LdpcStaircaseCodec"]

LDPC_N1 = 7
"""Ones per source column of H, as Roc configures OpenFEC."""

LDPC_SEED = 1297501556
"""The PRNG seed Roc gives OpenFEC."""

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
    col_rows: tuple[tuple[int, ...], ...]  # for each ESI, the rows holding it
    gather: npt.NDArray[np.intp]  # source indices of all rows, concatenated row by row
    starts: npt.NDArray[np.intp]  # where each row begins in `gather`


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
    col_rows: list[list[int]] = [[] for _ in range(k + r)]
    for i, cols in enumerate(rows):
        esis = [*cols, k + i] + ([k + i - 1] if i else [])
        mask = 0
        for e in esis:
            mask |= 1 << e
            col_rows[e].append(i)
        masks.append(mask)
    gather = np.fromiter((c for cols in rows for c in cols), dtype=np.intp)
    starts = np.cumsum([0] + [len(cols) for cols in rows[:-1]], dtype=np.intp)
    return _Matrix(tuple(masks), tuple(tuple(x) for x in col_rows), gather, starts)


def _bits(mask: int) -> list[int]:
    """Positions of the set bits of `mask`, lowest first."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


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
    """The LDPC-Staircase erasure code with Roc's parameters (N1 and seed overridable)."""

    def __init__(self, n1: int = LDPC_N1, seed: int = LDPC_SEED) -> None:
        if n1 < 1:
            raise ValueError(f"N1 must be positive, got {n1}")
        if not 0 < seed < _PRNG_MODULUS:
            raise ValueError(f"the PRNG seed must be in 1..2^31-2, got {seed}")
        self.n1 = n1
        self.seed = seed

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
        if not missing or len(symbols) + len(missing) == k:
            return {}
        m = _matrix(k, n - k, self.n1, self.seed)
        steps, determined = _solve(m, n, symbols.keys(), missing)
        if not steps:
            return {}
        known = list(symbols)
        pos = {esi: i for i, esi in enumerate(known)}
        words = np.zeros((len(known) + len(steps), -(-length // 8)), dtype=np.uint64)
        words[: len(known)] = _words([symbols[e] for e in known], length)
        for target, terms in steps:
            pos[target] = len(pos)
            words[pos[target]] = np.bitwise_xor.reduce(words[[pos[e] for e in terms]], axis=0)
        rows = [pos[e] for e in determined]
        return dict(zip(determined, _unwords(words[rows], length), strict=True))

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


def _solve(
    m: _Matrix, n: int, known: Iterable[int], missing: list[int]
) -> tuple[list[tuple[int, list[int]]], list[int]]:
    """Plan the recovery: (steps, determined source ESIs).

    Each step (target, terms) makes symbol `target` the XOR of symbols `terms`, all of which
    are received or targets of earlier steps. Only the symbol masks are worked on here, so
    an undecodable block costs no payload arithmetic.
    """
    unknown = (1 << n) - 1
    for esi in known:
        unknown &= ~(1 << esi)
    row_unknown = [mask & unknown for mask in m.row_masks]
    # Peeling: an equation with one unknown gives it away; repeat until none is left.
    plan: list[tuple[int, int]] = []  # (target ESI, mask of the other ESIs of its row)
    queue = [i for i, u in enumerate(row_unknown) if u and u & (u - 1) == 0]
    while queue:
        i = queue.pop()
        u = row_unknown[i]
        if u == 0:
            continue  # its last unknown was peeled through another row meanwhile
        esi = u.bit_length() - 1
        plan.append((esi, m.row_masks[i] & ~u))
        unknown &= ~u
        for j in m.col_rows[esi]:
            if row_unknown[j] & u:
                row_unknown[j] &= ~u
                left = row_unknown[j]
                if left and left & (left - 1) == 0:
                    queue.append(j)
    lost_sources = 0
    for esi in missing:
        lost_sources |= 1 << esi
    if lost_sources & unknown:
        plan.extend(_eliminate(m, row_unknown, unknown, lost_sources))
    # Keep only the steps that lead to a lost source symbol.
    determined_mask = 0
    for target, _ in plan:
        determined_mask |= 1 << target
    needed = lost_sources & determined_mask
    wanted = needed
    for target, terms in reversed(plan):
        if wanted >> target & 1:
            wanted |= terms & determined_mask
    steps = [(t, _bits(terms)) for t, terms in plan if wanted >> t & 1]
    return steps, _bits(needed)


def _eliminate(
    m: _Matrix, row_unknown: list[int], unknown: int, wanted: int
) -> list[tuple[int, int]]:
    """GF(2) elimination over the equations peeling left unsolved.

    Returns (target, terms) for each `wanted` unknown that the equations pin down: the XOR
    of the rows combined into "target = ..." cancels every other unknown, leaving received
    (or peeled) symbols only.
    """
    pivots: dict[int, tuple[int, int]] = {}  # pivot bit -> (unknown mask, combined rows)
    for i, u in enumerate(row_unknown):
        if u == 0:
            continue
        combo = 1 << i
        while u:
            low = (u & -u).bit_length() - 1
            if low not in pivots:
                break
            pu, pc = pivots[low]
            u ^= pu
            combo ^= pc
        if u:
            pivots[(u & -u).bit_length() - 1] = (u, combo)
    # Back-substitution, highest pivot first, so each pivot row holds no other pivot.
    order = sorted(pivots, reverse=True)
    for p in order:
        pu, pc = pivots[p]
        for q in order:
            if q < p:
                qu, qc = pivots[q]
                if qu >> p & 1:
                    pivots[q] = (qu ^ pu, qc ^ pc)
    out = []
    for p, (pu, pc) in pivots.items():
        if pu == 1 << p and wanted >> p & 1:
            terms = 0
            for i in _bits(pc):
                terms ^= m.row_masks[i] & ~unknown
            out.append((p, terms))
    return out
