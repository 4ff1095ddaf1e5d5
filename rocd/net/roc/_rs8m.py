"""Reed-Solomon over GF(2^8) ("RS8M"), byte-identical to Roc Toolkit 0.4 / OpenFEC.

Roc uses Rizzo's systematic Vandermonde code: field polynomial 0x11D, evaluation points
{0, a^0, a^1, ...}, generator G = V * inverse(top K rows of V). zfec builds exactly this
matrix, so its C arithmetic does the work. Row e of G depends only on K and e, never on
the number of repair symbols, which is why Roc's receiver can assume N = 255: here every
zfec object is made for m = 255 and shared by all blocks with the same K.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import zfec

from ._errors import FecDecodeError
from ._fecframe import RS8M_MAX_BLOCK

__all__ = ["Rs8mCodec"]


@functools.lru_cache(maxsize=32)
def _encoder(k: int) -> zfec.Encoder:
    return zfec.Encoder(k, RS8M_MAX_BLOCK)


@functools.lru_cache(maxsize=32)
def _decoder(k: int) -> zfec.Decoder:
    return zfec.Decoder(k, RS8M_MAX_BLOCK)


def _symbol_length(symbols: Mapping[int, bytes]) -> int:
    lengths = {len(s) for s in symbols.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise FecDecodeError(f"symbols of lengths {sorted(lengths)} in one block")
    return lengths.pop()


class Rs8mCodec:
    """The RS8M erasure code: any K of the K + R symbols of a block rebuild it (K + R <= 255)."""

    def check_block(self, k: int, n_repair: int) -> None:
        if k < 1 or n_repair < 0 or k + n_repair > RS8M_MAX_BLOCK:
            raise ValueError(f"RS8M needs 1 <= K and K + R <= 255, got K={k}, R={n_repair}")

    def encode(self, source: Sequence[bytes], n_repair: int) -> list[bytes]:
        k = len(source)
        self.check_block(k, n_repair)
        if len({len(s) for s in source}) != 1 or not source[0]:
            raise ValueError("RS8M source symbols must be non-empty and of one length")
        if n_repair == 0:
            return []
        wanted = tuple(range(k, k + n_repair))
        return list(_encoder(k).encode(tuple(source), wanted))

    def decode(self, k: int, n: int, symbols: Mapping[int, bytes]) -> list[bytes]:
        self._check(k, n, symbols)
        if len(symbols) < k:
            raise FecDecodeError(f"RS8M needs {k} symbols, got {len(symbols)}")
        if all(esi in symbols for esi in range(k)):
            return [symbols[esi] for esi in range(k)]
        # Any K distinct symbols do; prefer source symbols (they cost nothing to "decode").
        chosen = sorted(symbols)[:k]
        return list(_decoder(k).decode([symbols[esi] for esi in chosen], chosen))

    def recover(self, k: int, n: int, symbols: Mapping[int, bytes]) -> dict[int, bytes]:
        self._check(k, n, symbols)
        # An MDS code: fewer than K symbols determine no lost source symbol at all.
        if len(symbols) < k:
            return {}
        missing = [esi for esi in range(k) if esi not in symbols]
        if not missing:
            return {}
        decoded = self.decode(k, n, symbols)
        return {esi: decoded[esi] for esi in missing}

    @staticmethod
    def _check(k: int, n: int, symbols: Mapping[int, bytes]) -> None:
        if not 0 < k <= n <= RS8M_MAX_BLOCK:
            raise FecDecodeError(f"RS8M block with K={k}, N={n}")
        if symbols:
            _symbol_length(symbols)
        for esi in symbols:
            if not 0 <= esi < n:
                raise FecDecodeError(f"ESI {esi} outside a block of N={n}")
