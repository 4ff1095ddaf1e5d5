"""Which lost symbols an LDPC-Staircase block can rebuild, by rank arithmetic over GF(2).

An oracle for the decoder: it works on columns of a dense H (is the lost symbol's column
independent of the other unknowns' columns?), not on equations as the decoder does.
"""

import numpy as np
import numpy.typing as npt

from rocd.net.roc import LDPC_N1, LDPC_SEED
from rocd.net.roc._ldpc import _matrix


def dense_h(k: int, r: int) -> npt.NDArray[np.uint8]:
    """H as a dense 0/1 matrix, columns indexed by ESI."""
    h = np.zeros((r, k + r), dtype=np.uint8)
    for i, mask in enumerate(_matrix(k, r, LDPC_N1, LDPC_SEED).row_masks):
        for e in range(k + r):
            h[i, e] = mask >> e & 1
    return h


def rank_gf2(a: npt.NDArray[np.uint8]) -> int:
    a = a.copy() % 2
    rank = 0
    for col in range(a.shape[1]):
        rows = np.nonzero(a[rank:, col])[0]
        if rows.size == 0:
            continue
        pivot = rank + rows[0]
        a[[rank, pivot]] = a[[pivot, rank]]
        below_or_above = np.nonzero(a[:, col])[0]
        for row in below_or_above:
            if row != rank:
                a[row] ^= a[rank]
        rank += 1
        if rank == a.shape[0]:
            break
    return rank


def determined(k: int, r: int, lost: set[int]) -> set[int]:
    """Lost source ESIs that H pins down: their column is independent of the other unknowns'."""
    h = dense_h(k, r)
    unknown = sorted(lost)
    full = rank_gf2(h[:, unknown])
    return {e for e in unknown if e < k and rank_gf2(h[:, [u for u in unknown if u != e]]) < full}
