/* A variable-ratio windowed-sinc resampler for planar float32 audio (see
 * _resample_native.py for why it exists and how Python drives it).
 *
 * The filter is a table of phases + 1 rows of `taps` coefficients; row p holds the
 * kernel for a fractional input position p / phases, and a position between two rows
 * takes the linear blend of both. The output frame at input position t = i + f is
 *     y = sum_k x[i - taps/2 + 1 + k] * h_f[k],   k = 0 .. taps - 1
 * so every inner loop runs over contiguous floats and the compiler vectorises it.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RS_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RS_CLONES
#endif

/* One output frame: blend rows `row` and `row + taps` by `a` into the kernel and take one
 * dot product per channel plane at `at` (the first tap's input index). Mono and stereo
 * blend the kernel in the same loop as the products (no scratch round trip). */
static inline __attribute__((always_inline)) void
rs_frame(const float *restrict row, int taps, float a, const float *const *planes, int channels,
         ptrdiff_t at, float *restrict out, float *restrict coef)
{
    const float *restrict next = row + taps;
    if (channels == 2) {
        const float *restrict l = planes[0] + at;
        const float *restrict r = planes[1] + at;
        float sl = 0.0f, sr = 0.0f;
        for (int k = 0; k < taps; k++) {
            float c = row[k] + a * (next[k] - row[k]);
            sl += l[k] * c;
            sr += r[k] * c;
        }
        out[0] = sl;
        out[1] = sr;
        return;
    }
    if (channels == 1) {
        const float *restrict x = planes[0] + at;
        float s = 0.0f;
        for (int k = 0; k < taps; k++)
            s += x[k] * (row[k] + a * (next[k] - row[k]));
        out[0] = s;
        return;
    }
    for (int k = 0; k < taps; k++)
        coef[k] = row[k] + a * (next[k] - row[k]);
    for (int c = 0; c < channels; c++) {
        const float *restrict x = planes[c] + at;
        float sum = 0.0f;
        for (int k = 0; k < taps; k++)
            sum += x[k] * coef[k];
        out[c] = sum;
    }
}

/* The planes hold `available` input frames of `channels` channels; `base + frac` is the
 * input position of the next output frame, `step` the input frames per output frame that
 * the last block ended with. The position is split so that dropping consumed frames only
 * moves `base`: `rs_need` and `rs_read` then sum the same doubles from the same `frac` and
 * agree to the bit on where a block ends. */
typedef struct {
    const float *table; /* (phases + 1) rows of taps */
    int taps, phases, channels;
    float **planes;     /* channels pointers into one allocation of channels * cap */
    ptrdiff_t cap, available;
    ptrdiff_t base;     /* whole input frames */
    double frac, step;  /* 0 <= frac < 1 between blocks */
    float *scratch;     /* taps floats (more than two channels) */
} rs_state;

/* Input position, from `base`, of the last frame of a block of n (see rs_read). One copy
 * of it, outside the AVX2 clone, serves rs_need and rs_read: -fassociative-math lets the
 * compiler sum this loop in another order in each, and they must agree to the bit. */
static __attribute__((noinline, noclone)) double rs_last(double frac, double step0, double step1, int n)
{
    double slope = n > 0 ? (step1 - step0) / n : 0.0;
    for (int i = 0; i + 1 < n; i++)
        frac += step0 + slope * (i + 0.5);
    return frac;
}

static int rs_alloc(rs_state *st, ptrdiff_t cap)
{
    float *block = calloc((size_t)cap * st->channels, sizeof(float));
    if (block == NULL)
        return -1;
    for (int c = 0; c < st->channels; c++) {
        if (st->planes[c] != NULL)
            memcpy(block + (size_t)c * cap, st->planes[c], (size_t)st->available * sizeof(float));
    }
    free(st->planes[0]);
    for (int c = 0; c < st->channels; c++)
        st->planes[c] = block + (size_t)c * cap;
    st->cap = cap;
    return 0;
}

void rs_free(rs_state *st)
{
    if (st == NULL)
        return;
    if (st->planes != NULL)
        free(st->planes[0]);
    free(st->planes);
    free(st->scratch);
    free(st);
}

/* A resampler at `step` input frames per output frame; the taps / 2 - 1 frames before the
 * first input frame are zeros (the first output frame is centred on the first input). */
rs_state *rs_new(const float *table, int taps, int phases, int channels, double step)
{
    rs_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->table = table;
    st->taps = taps;
    st->phases = phases;
    st->channels = channels;
    st->planes = calloc((size_t)channels, sizeof(float *));
    st->scratch = calloc((size_t)taps, sizeof(float));
    if (st->planes == NULL || st->scratch == NULL || rs_alloc(st, 4096 + (ptrdiff_t)taps) != 0) {
        rs_free(st);
        return NULL;
    }
    st->available = taps / 2 - 1;
    st->base = taps / 2 - 1;
    st->frac = 0.0;
    st->step = step;
    return st;
}

/* Input frames the next block of `n` frames (its step ramping to `step1`) needs beyond
 * those held. */
ptrdiff_t rs_need(const rs_state *st, int n, double step1)
{
    ptrdiff_t last = st->base + (ptrdiff_t)rs_last(st->frac, st->step, step1, n);
    ptrdiff_t need = last + st->taps / 2 + 1 - st->available;
    return need > 0 ? need : 0;
}

/*
 * Append `k` interleaved input frames `in`, then write `n` interleaved output frames to
 * `out`. The step ramps linearly from the last block's to `step1`: output i uses
 * step + (step1 - step) * (i + 0.5) / n, so the block consumes n * (step + step1) / 2
 * input frames. Returns 0; -1 (nothing written) when the input held, with `in`, is short
 * of the block (`rs_need` says how much it needs); -2 when memory ran out.
 */
RS_CLONES
int rs_read(rs_state *st, const float *in, ptrdiff_t k, float *out, int n, double step1)
{
    int taps = st->taps, half = taps / 2, channels = st->channels;
    if (k > 0) {
        /* Drop what no tap reaches any more, then grow if that is not room enough. */
        ptrdiff_t drop = st->base - (half - 1);
        if (drop > 0) {
            st->available -= drop;
            for (int c = 0; c < channels; c++)
                memmove(st->planes[c], st->planes[c] + drop,
                        (size_t)st->available * sizeof(float));
            st->base -= drop;
        }
        if (st->available + k > st->cap && rs_alloc(st, 2 * (st->available + k)) != 0)
            return -2;
        for (int c = 0; c < channels; c++) {
            float *restrict dst = st->planes[c] + st->available;
            const float *restrict src = in + c;
            for (ptrdiff_t i = 0; i < k; i++)
                dst[i] = src[i * channels];
        }
        st->available += k;
    }
    double t = st->frac, step0 = st->step;
    ptrdiff_t base = st->base;
    if (base + (ptrdiff_t)rs_last(t, step0, step1, n) + half >= st->available)
        return -1;
    double slope = n > 0 ? (step1 - step0) / n : 0.0;
    const float *const *planes = (const float *const *)st->planes;
    int phases = st->phases;
    for (int i = 0; i < n; i++) {
        ptrdiff_t whole = (ptrdiff_t)t;
        double scaled = (t - (double)whole) * phases;
        whole += base;
        if (whole + half >= st->available) /* the loop's own sum is an ulp past rs_last's */
            whole = st->available - half - 1;
        int p = (int)scaled;
        if (p >= phases)
            p = phases - 1;
        rs_frame(st->table + (size_t)p * taps, taps, (float)(scaled - p), planes, channels,
                 whole - half + 1, out + (size_t)i * channels, st->scratch);
        t += step0 + slope * (i + 0.5);
    }
    ptrdiff_t whole = (ptrdiff_t)t;
    st->base = base + whole;
    st->frac = t - (double)whole; /* exact */
    st->step = step1;
    return 0;
}
