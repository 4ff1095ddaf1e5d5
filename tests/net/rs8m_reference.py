"""A slow, plain-Python Reed-Solomon GF(2^8) encoder written from the Roc construction.

It is an oracle for the fast codec: field 0x11D with generator 2, Vandermonde rows at the
points {0, a^0, a^1, ...}, G = V * inverse(top K rows of V), repair = G rows K.. times the
source symbols. Nothing here is shared with rocd.net.roc.
"""

from __future__ import annotations

from collections.abc import Sequence

EXP = [0] * 510
LOG = [0] * 256
_x = 1
for _i in range(255):
    EXP[_i] = _x
    LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D
for _i in range(255, 510):
    EXP[_i] = EXP[_i - 255]


def gmul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def ginv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(256)")
    return EXP[255 - LOG[a]]


def vandermonde_row(i: int, k: int) -> list[int]:
    if i == 0:
        return [1] + [0] * (k - 1)
    return [EXP[((i - 1) * c) % 255] for c in range(k)]


def invert(matrix: list[list[int]]) -> list[list[int]]:
    """Gauss-Jordan inverse over GF(2^8)."""
    n = len(matrix)
    a = [row[:] + [int(r == c) for c in range(n)] for r, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if a[r][col])
        a[col], a[pivot] = a[pivot], a[col]
        scale = ginv(a[col][col])
        a[col] = [gmul(scale, v) for v in a[col]]
        for r in range(n):
            if r != col and a[r][col]:
                f = a[r][col]
                a[r] = [v ^ gmul(f, p) for v, p in zip(a[r], a[col], strict=True)]
    return [row[n:] for row in a]


def generator_row(e: int, k: int, top_inverse: list[list[int]]) -> list[int]:
    v = vandermonde_row(e, k)
    return [_dot(v, [top_inverse[r][c] for r in range(k)]) for c in range(k)]


def _dot(a: Sequence[int], b: Sequence[int]) -> int:
    acc = 0
    for x, y in zip(a, b, strict=True):
        acc ^= gmul(x, y)
    return acc


def encode(source: Sequence[bytes], n_repair: int) -> list[bytes]:
    """Repair symbols ESI K..K+n_repair-1 of the K equal-length source symbols."""
    k = len(source)
    top_inverse = invert([vandermonde_row(i, k) for i in range(k)])
    out = []
    for e in range(k, k + n_repair):
        row = generator_row(e, k, top_inverse)
        out.append(bytes(_dot(row, [s[b] for s in source]) for b in range(len(source[0]))))
    return out


def point(i: int) -> int:
    """Evaluation point of row i: 0, then a^0, a^1, ..."""
    return 0 if i == 0 else EXP[(i - 1) % 255]


def generator_row_lagrange(e: int, k: int) -> list[int]:
    """Row e of G in closed form: v(x_e) * inverse(Vtop) is the Lagrange basis at x_e.

    O(K^2) instead of a K x K inversion, so blocks up to K + R = 255 stay quick.
    """
    xs = [point(i) for i in range(k)]
    xe = point(e)
    row = []
    for j in range(k):
        num = den = 1
        for m in range(k):
            if m != j:
                num = gmul(num, xe ^ xs[m])
                den = gmul(den, xs[j] ^ xs[m])
        row.append(gmul(num, ginv(den)))
    return row


def encode_lagrange(source: Sequence[bytes], n_repair: int) -> list[bytes]:
    k = len(source)
    out = []
    for e in range(k, k + n_repair):
        row = generator_row_lagrange(e, k)
        out.append(bytes(_dot(row, [s[b] for s in source]) for b in range(len(source[0]))))
    return out
