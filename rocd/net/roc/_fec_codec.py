"""The seam between FEC block handling and the erasure codes (RS8M, LDPC-Staircase).

A codec works on one block of equal-length symbols. A source symbol is a whole RTP packet
(header, payload, padding; without the FECFRAME footer), so a decoded symbol is re-parsed
as RTP. ESIs 0..K-1 name source symbols, K..N-1 repair symbols.
"""

from collections.abc import Mapping, Sequence
from typing import Protocol

from ._fecframe import FecScheme
from ._ldpc import LdpcStaircaseCodec
from ._rs8m import Rs8mCodec

__all__ = ["BlockCodec", "default_codec"]


class BlockCodec(Protocol):
    """An erasure code over one block; implementations are pure and reusable across blocks."""

    def check_block(self, k: int, n_repair: int) -> None:
        """Raise ValueError unless blocks of `k` source and `n_repair` repair symbols encode.

        A sender calls this when it picks a block size, before the first source packet of
        the block leaves, so an unusable size never reaches the wire half-sent.
        """
        ...

    def encode(self, source: Sequence[bytes], n_repair: int) -> list[bytes]:
        """Repair symbols ESI K..K+n_repair-1 for the K equal-length `source` symbols."""
        ...

    def decode(self, k: int, n: int, symbols: Mapping[int, bytes]) -> list[bytes]:
        """All K source symbols of a block of N from the received `symbols` (ESI -> bytes).

        Raises FecDecodeError when the received symbols are not enough (or not consistent:
        mixed lengths, ESIs out of range).
        """
        ...

    def recover(self, k: int, n: int, symbols: Mapping[int, bytes]) -> dict[int, bytes]:
        """The missing source symbols (ESI -> bytes) that the received `symbols` determine.

        Unlike `decode` this is not all-or-nothing: a sparse code (LDPC) can often rebuild
        some lost packets of a block that cannot be fully decoded, and a real-time receiver
        plays whatever comes back in time. Returns {} when nothing can be rebuilt yet;
        raises FecDecodeError only for inconsistent input or a geometry the code refuses.
        """
        ...


def default_codec(scheme: FecScheme) -> BlockCodec:
    """The codec Roc pairs with `scheme`, with Roc's parameters (N1 = 7, seed for LDPC)."""
    if scheme is FecScheme.RS8M:
        return Rs8mCodec()
    return LdpcStaircaseCodec()
