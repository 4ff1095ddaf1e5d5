"""The seam between FEC block handling and the erasure codes (RS8M, LDPC-Staircase).

A codec works on one block of equal-length symbols. A source symbol is a whole RTP packet
(header, payload, padding; without the FECFRAME footer), so a decoded symbol is re-parsed
as RTP. ESIs 0..K-1 name source symbols, K..N-1 repair symbols.
"""

from collections.abc import Mapping, Sequence
from typing import Protocol


class BlockCodec(Protocol):
    """An erasure code over one block; implementations are pure and reusable across blocks."""

    def encode(self, source: Sequence[bytes], n_repair: int) -> list[bytes]:
        """Repair symbols ESI K..K+n_repair-1 for the K equal-length `source` symbols."""
        ...

    def decode(self, k: int, n: int, symbols: Mapping[int, bytes]) -> list[bytes]:
        """All K source symbols of a block of N from the received `symbols` (ESI -> bytes).

        Raises FecDecodeError when the received symbols are not enough (or not consistent:
        mixed lengths, ESIs out of range).
        """
        ...
