/* The compiled core of the LDPC-Staircase decoder (built by scripts/setup.sh through
 * `_ldpc_native.build()`; _ldpc.py falls back to numpy without it).
 *
 * The same algorithm as _ldpc.py's numpy decoder: the reduced system (one equation per
 * received repair symbol, over source symbols only), peeling, then Gauss-Jordan
 * elimination on what is left, on payloads of `words` 64-bit words. Elimination is a
 * sequential loop, which numpy can only run one pivot per call: here it is 2-6 times
 * faster, so it takes on every unknown instead of numpy's ML_MAX_UNKNOWNS.
 *
 *   eq_src   E x K bytes (0/1): the source part of each reduced equation
 *   known    K pointers to source symbols (NULL: lost)
 *   rep_a    E pointers: the equation's own repair symbol
 *   rep_b    E pointers: the previous received repair symbol (NULL for the first)
 *   out      K x words: rebuilt sources; done[K] set for those rebuilt
 * Returns the number of sources rebuilt.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void xor_into(uint64_t *dst, const uint64_t *src, int words) {
    for (int i = 0; i < words; i++) dst[i] ^= src[i];
}

int ldpc_decode(int E, int K, int words, const uint8_t *eq_src, const uint64_t **known,
                const uint64_t **rep_a, const uint64_t **rep_b, uint64_t *out, uint8_t *done) {
    int U = 0;
    int *col = malloc(sizeof(int) * K); /* source -> unknown index, or -1 */
    int *unk = malloc(sizeof(int) * K); /* unknown index -> source */
    for (int s = 0; s < K; s++) {
        col[s] = known[s] ? -1 : U;
        if (!known[s]) unk[U++] = s;
    }
    int W = (U + 63) / 64;
    uint64_t *bits = calloc((size_t)E * (W ? W : 1), sizeof(uint64_t));
    uint64_t *rhs = calloc((size_t)E * words, sizeof(uint64_t));
    int *count = calloc(E, sizeof(int));
    for (int e = 0; e < E; e++) {
        uint64_t *r = rhs + (size_t)e * words;
        const uint8_t *row = eq_src + (size_t)e * K;
        for (int s = 0; s < K; s++) {
            if (!row[s]) continue;
            if (known[s]) {
                xor_into(r, known[s], words);
            } else {
                bits[(size_t)e * W + col[s] / 64] |= 1ULL << (col[s] % 64);
                count[e]++;
            }
        }
        xor_into(r, rep_a[e], words);
        if (rep_b[e]) xor_into(r, rep_b[e], words);
    }
    /* Peeling: an equation with one unknown gives it away. */
    uint8_t *solved = calloc(U ? U : 1, 1);
    int progress = 1;
    while (progress) {
        progress = 0;
        for (int e = 0; e < E; e++) {
            if (count[e] != 1) continue;
            uint64_t *b = bits + (size_t)e * W;
            int u = -1;
            for (int w = 0; w < W; w++)
                if (b[w]) { u = w * 64 + __builtin_ctzll(b[w]); break; }
            uint64_t *x = rhs + (size_t)e * words;
            memcpy(out + (size_t)unk[u] * words, x, sizeof(uint64_t) * words);
            solved[u] = 1;
            done[unk[u]] = 1;
            for (int f = 0; f < E; f++) {
                uint64_t *bf = bits + (size_t)f * W;
                if (bf[u / 64] >> (u % 64) & 1) {
                    bf[u / 64] &= ~(1ULL << (u % 64));
                    count[f]--;
                    if (f != e) xor_into(rhs + (size_t)f * words, x, words);
                }
            }
            progress = 1;
        }
    }
    /* Gauss-Jordan on the rest. */
    int *pivot_row = malloc(sizeof(int) * (U ? U : 1));
    uint8_t *used = calloc(E ? E : 1, 1);
    for (int u = 0; u < U; u++) {
        pivot_row[u] = -1;
        if (solved[u]) continue;
        int p = -1;
        for (int e = 0; e < E; e++)
            if (!used[e] && (bits[(size_t)e * W + u / 64] >> (u % 64) & 1)) { p = e; break; }
        if (p < 0) continue;
        used[p] = 1;
        pivot_row[u] = p;
        for (int e = 0; e < E; e++) {
            if (e == p || !(bits[(size_t)e * W + u / 64] >> (u % 64) & 1)) continue;
            xor_into(bits + (size_t)e * W, bits + (size_t)p * W, W);
            xor_into(rhs + (size_t)e * words, rhs + (size_t)p * words, words);
        }
    }
    for (int u = 0; u < U; u++) {
        int p = pivot_row[u];
        if (p < 0) continue;
        uint64_t *b = bits + (size_t)p * W;
        int single = 1;
        for (int w = 0; w < W; w++) {
            uint64_t want = (w == u / 64) ? 1ULL << (u % 64) : 0;
            if (b[w] != want) { single = 0; break; }
        }
        if (single) {
            memcpy(out + (size_t)unk[u] * words, rhs + (size_t)p * words, sizeof(uint64_t) * words);
            done[unk[u]] = 1;
        }
    }
    int n = 0;
    for (int s = 0; s < K; s++) n += done[s];
    free(col); free(unk); free(bits); free(rhs); free(count); free(solved);
    free(pivot_row); free(used);
    return n;
}
