/* focalkit CPU kernels: focal loss and its analytic gradient in one pass (OpenMP).
 *
 * Plain C on raw pointers, no Python or torch headers: the module is loaded with ctypes by
 * focalkit/kernels/cpu.py, which documents the math and the kernel contract. All arithmetic is
 * float32; partial sums (per block of elements / positions) are float64, added in a
 * fixed order after the parallel loop: deterministic whatever the thread count and scheduling. Logits are float32 (code 0) or bfloat16 (code 1, stored as uint16).
 *
 * Exported (all return the float64 loss sum; *count receives the number of non-ignored elements
 * or positions):
 *   fk_sigmoid_dense  (x, xcode, t, n, alpha, has_alpha, gamma, has_ignore, ignore, ls,
 *                      loss_out, grad_out, count, nthreads)
 *   fk_sigmoid_labels (x, xcode, y, N, C, inner, alpha, has_alpha, gamma, has_ignore, ignore, ls,
 *                      loss_out, grad_out, count, nthreads)
 *   fk_softmax_labels (x, xcode, y, N, C, inner, alpha_vec, gamma, ignore, ls,
 *                      loss_out, grad_out, count, nbad, nthreads)   (nbad: labels outside [0, C))
 * loss_out / grad_out may be NULL (no per-element loss / no gradient).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define EXPORT __attribute__((visibility("default")))

static inline float bf16_to_f32(uint16_t v) {
    union { uint32_t u; float f; } c;
    c.u = ((uint32_t)v) << 16;
    return c.f;
}

static inline uint16_t f32_to_bf16(float f) { /* round to nearest even, NaN kept NaN */
    union { uint32_t u; float f; } c;
    c.f = f;
    if ((c.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((c.u >> 16) | 0x40u);
    uint32_t lsb = (c.u >> 16) & 1u;
    c.u += 0x7fffu + lsb;
    return (uint16_t)(c.u >> 16);
}

/* log1p(e) for e in (0, 1], vectorizable (glibc has no SIMD log1pf): a Taylor polynomial below
 * 0.0625 (relative error < 1e-9), log(1 + e) above (where 1 + e rounds by < 1e-6 relative). */
static inline float log1p_unit(float e) {
    float s = e * (1.0f - e * (1.0f / 2 - e * (1.0f / 3 - e * (1.0f / 4 - e * (1.0f / 5 - e * (1.0f / 6
              - e * (1.0f / 7 - e * (1.0f / 8))))))));
    return e < 0.0625f ? s : logf(1.0f + e);
}

/* q ** gamma for q in [0, 1], gamma >= 0, with 0 ** 0 = 1. */
static inline float pow_mod(float q, float gamma, int gkind) {
    switch (gkind) {
    case 0: return 1.0f;
    case 1: return q;
    case 2: return q * q;
    default: return q > 0.0f ? expf(gamma * logf(q)) : 0.0f;
    }
}

static inline int gamma_kind(float gamma) {
    if (gamma == 0.0f) return 0;
    if (gamma == 1.0f) return 1;
    if (gamma == 2.0f) return 2;
    return 3;
}

static int threads_for(int64_t work, int nthreads) {
    if (nthreads < 1) nthreads = 1;
    if (work < 65536) return 1;
    return nthreads;
}

#define LOADX(ptr, code, i) ((code) == 0 ? ((const float *)(ptr))[i] : bf16_to_f32(((const uint16_t *)(ptr))[i]))

/* ---------------------------------------------------------------- sigmoid, shared block step */
/* Elements are processed in blocks of BLK: the caller fills float buffers with the logits, the
 * (smoothed) targets and the validity mask (1 or 0), and sig_block computes the loss and the
 * gradient of each element with branch-free code that the compiler vectorizes (one variant per
 * common gamma, so q ** gamma is a multiply, not exp(gamma log q)). */
#define BLK 1024

#define SIG_BLOCK(NAME, MOD)                                                                   \
    static float NAME(const float *restrict xs, const float *restrict ts, const float *restrict vs, \
                      float *restrict ls_, float *restrict gs, int64_t m, float a, float ascale,   \
                      float gamma) {                                                           \
        float sum = 0.0f;                                                                      \
        for (int64_t i = 0; i < m; i++) {                                                      \
            float x = xs[i], t = ts[i];                                                        \
            float e = expf(-fabsf(x));                                                         \
            float inv = 1.0f / (1.0f + e);                                                     \
            float p = x >= 0.0f ? inv : e * inv;                                               \
            float pn = x >= 0.0f ? e * inv : inv;                                              \
            float ce = fmaxf(x, 0.0f) - x * t + log1p_unit(e);                                 \
            float q = p * (1.0f - t) + pn * t;                                                 \
            float at = (a * t + (1.0f - a) * (1.0f - t)) * ascale * vs[i];                     \
            float mod = MOD;                                                                   \
            float ratio = q > 1e-30f ? p * pn / q : 0.0f; /* |error| < gamma q^(1+gamma) */                                        \
            float l = at * mod * ce;                                                           \
            gs[i] = at * mod * ((p - t) + gamma * ratio * (1.0f - 2.0f * t) * ce);             \
            ls_[i] = l;                                                                        \
            sum += l;                                                                          \
        }                                                                                      \
        return sum;                                                                            \
    }

SIG_BLOCK(sig_block_g0, 1.0f)
SIG_BLOCK(sig_block_g1, q)
SIG_BLOCK(sig_block_g2, q * q)
SIG_BLOCK(sig_block_gx, q > 0.0f ? expf(gamma * logf(q)) : 0.0f)

typedef float (*sig_block_fn)(const float *, const float *, const float *, float *, float *,
                              int64_t, float, float, float);

static sig_block_fn sig_block_for(float gamma) {
    switch (gamma_kind(gamma)) {
    case 0: return sig_block_g0;
    case 1: return sig_block_g1;
    case 2: return sig_block_g2;
    default: return sig_block_gx;
    }
}

static inline void load_block(const void *x, int xcode, int64_t off, int64_t m, float *restrict out) {
    if (xcode == 0) {
        memcpy(out, (const float *)x + off, (size_t)m * sizeof(float));
    } else {
        const uint16_t *xb = (const uint16_t *)x + off;
        for (int64_t i = 0; i < m; i++) out[i] = bf16_to_f32(xb[i]);
    }
}

static inline void store_block(void *g, int xcode, int64_t off, int64_t m, const float *restrict in) {
    if (xcode == 0) {
        memcpy((float *)g + off, in, (size_t)m * sizeof(float));
    } else {
        uint16_t *gb = (uint16_t *)g + off;
        for (int64_t i = 0; i < m; i++) gb[i] = f32_to_bf16(in[i]);
    }
}

/* ---------------------------------------------------------------- sigmoid, dense targets */
EXPORT double fk_sigmoid_dense(const void *x, int xcode, const float *t, int64_t n, float alpha,
                               int has_alpha, float gamma, int has_ignore, float ignore, float ls,
                               float *loss_out, void *grad_out, int64_t *count, int nthreads) {
    const sig_block_fn step = sig_block_for(gamma);
    const float a = has_alpha ? alpha : 0.5f;
    const float ascale = has_alpha ? 1.0f : 2.0f; /* alpha None: alpha_t = 2 * 0.5 = 1 exactly */
    const int64_t nblocks = (n + BLK - 1) / BLK;
    double total = 0.0; int64_t ctotal = 0;
    int nt = threads_for(n, nthreads);
    double *part = (double *)malloc(sizeof(double) * (size_t)(nblocks + 1));
#pragma omp parallel num_threads(nt) reduction(+ : ctotal)
    {
        float xs[BLK], ts[BLK], vs[BLK], lb[BLK], gb[BLK];
#pragma omp for schedule(dynamic, 16)
        for (int64_t b = 0; b < nblocks; b++) {
            int64_t lo = b * BLK, m = lo + BLK < n ? BLK : n - lo;
            load_block(x, xcode, lo, m, xs);
            int64_t cnt = 0;
            for (int64_t i = 0; i < m; i++) {
                float ti = t[lo + i];
                int valid = !(has_ignore && ti == ignore);
                vs[i] = valid ? 1.0f : 0.0f;
                ts[i] = valid ? ti * (1.0f - ls) + 0.5f * ls : 0.0f;
                cnt += valid;
            }
            part[b] = step(xs, ts, vs, lb, gb, m, a, ascale, gamma);
            ctotal += cnt;
            if (loss_out) memcpy(loss_out + lo, lb, (size_t)m * sizeof(float));
            if (grad_out) store_block(grad_out, xcode, lo, m, gb);
        }
    }
    for (int64_t b = 0; b < nblocks; b++) total += part[b]; /* fixed order: deterministic */
    free(part);
    *count = ctotal;
    return total;
}

/* ---------------------------------------------------------------- sigmoid, class indices */
/* x is (N, C, inner) contiguous; y is (N, inner) int64. Element (n, c, i) has target
 * t = (y[n, i] == c); positions with y == ignore are dropped (all C elements). The one-hot is
 * built one block at a time in a stack buffer, never materialized. */
EXPORT double fk_sigmoid_labels(const void *x, int xcode, const int64_t *y, int64_t N, int64_t C,
                                int64_t inner, float alpha, int has_alpha, float gamma,
                                int has_ignore, int64_t ignore, float ls, float *loss_out,
                                void *grad_out, int64_t *count, int nthreads) {
    const sig_block_fn step = sig_block_for(gamma);
    const float a = has_alpha ? alpha : 0.5f;
    const float ascale = has_alpha ? 1.0f : 2.0f;
    const float tpos = 1.0f - 0.5f * ls, tneg = 0.5f * ls;
    const int64_t n = N * C * inner;
    const int64_t nblocks = (n + BLK - 1) / BLK;
    double total = 0.0; int64_t ctotal = 0;
    int nt = threads_for(n, nthreads);
    double *part = (double *)malloc(sizeof(double) * (size_t)(nblocks + 1));
#pragma omp parallel num_threads(nt) reduction(+ : ctotal)
    {
        float xs[BLK], ts[BLK], vs[BLK], lb[BLK], gb[BLK];
#pragma omp for schedule(dynamic, 16)
        for (int64_t b = 0; b < nblocks; b++) {
            int64_t lo = b * BLK, m = lo + BLK < n ? BLK : n - lo;
            load_block(x, xcode, lo, m, xs);
            int64_t cnt = 0;
            /* walk the block in runs of constant (n, c): element e = (nn * C + c) * inner + i */
            int64_t e = lo, k = 0;
            while (inner == 1 && k < m) { /* (rows, C): runs over the classes of one row */
                int64_t nn = e / C, c0 = e % C;
                int64_t run = C - c0 < m - k ? C - c0 : m - k;
                int64_t yn = y[nn];
                int valid = !(has_ignore && yn == ignore);
                float vv = valid ? 1.0f : 0.0f;
                for (int64_t j = 0; j < run; j++) {
                    vs[k + j] = vv;
                    ts[k + j] = valid && yn == c0 + j ? tpos : tneg;
                }
                cnt += valid ? run : 0;
                k += run; e += run;
            }
            while (k < m) {
                int64_t plane = e / inner, i = e % inner;
                int64_t nn = plane / C, c = plane % C;
                int64_t run = inner - i < m - k ? inner - i : m - k;
                const int64_t *yr = y + nn * inner + i;
                for (int64_t j = 0; j < run; j++) {
                    int64_t yj = yr[j];
                    int valid = !(has_ignore && yj == ignore);
                    vs[k + j] = valid ? 1.0f : 0.0f;
                    ts[k + j] = valid && yj == c ? tpos : tneg;
                    cnt += valid;
                }
                k += run; e += run;
            }
            part[b] = step(xs, ts, vs, lb, gb, m, a, ascale, gamma);
            ctotal += cnt;
            if (loss_out) memcpy(loss_out + lo, lb, (size_t)m * sizeof(float));
            if (grad_out) store_block(grad_out, xcode, lo, m, gb);
        }
    }
    for (int64_t b = 0; b < nblocks; b++) total += part[b]; /* fixed order: deterministic */
    free(part);
    *count = ctotal;
    return total;
}


/* ---------------------------------------------------------------- softmax, class indices */
/* x is (N, C, inner) contiguous, softmax over C; y is (N, inner) int64. Positions are processed
 * in tiles of up to TILE along inner so that the C strided rows of a tile stay in cache. */
#define TILE 256


/* (N, C) rows: the classes are contiguous, so each row is one vectorized pass per step. */
static double softmax_rows(const void *x, int xcode, const int64_t *y, int64_t N, int64_t C,
                           const float *alpha, float gamma, int64_t ignore, float ls,
                           float *loss_out, void *grad_out, int64_t *count, int64_t *nbad,
                           int nthreads) {
    const int gkind = gamma_kind(gamma);
    const float lsc = ls / (float)C, lsy = 1.0f - ls;
    double total = 0.0; int64_t ctotal = 0, bad = 0;
    int nt = threads_for(N * C, nthreads);
    double *part = (double *)malloc(sizeof(double) * (size_t)(N + 1));
#pragma omp parallel num_threads(nt) reduction(+ : ctotal, bad)
    {
        float *xs = (float *)malloc(sizeof(float) * (size_t)(3 * C + 1));
        float *gs = xs + C, *wh = xs + 2 * C;
#pragma omp for schedule(dynamic, 32)
        for (int64_t n = 0; n < N; n++) {
            load_block(x, xcode, n * C, C, xs);
            float mx = xs[0];
            for (int64_t c = 1; c < C; c++) mx = xs[c] > mx ? xs[c] : mx;
            float se = 0.0f;
            for (int64_t c = 0; c < C; c++) se += expf(xs[c] - mx);
            const float lse = mx + logf(se);
            int64_t yk = y[n];
            int valid = yk != ignore, inrange = yk >= 0 && yk < C;
            bad += valid && !inrange;
            valid = valid && inrange;
            ctotal += valid;
            float l = 0.0f;
            if (!valid) {
                for (int64_t c = 0; c < C; c++) gs[c] = 0.0f;
            } else if (ls == 0.0f) {
                float lp = xs[yk] - lse;
                if (lp > 0.0f) lp = 0.0f;
                float om = -expm1f(lp);
                float w = alpha ? alpha[yk] : 1.0f;
                float mod = pow_mod(om, gamma, gkind);
                float ratio = om > 1e-30f ? lp / om : -1.0f;
                float coef = w * mod * (gamma * expf(lp) * ratio - 1.0f);
                l = -w * mod * lp;
                for (int64_t c = 0; c < C; c++) gs[c] = -coef * expf(xs[c] - lse);
                gs[yk] += coef;
            } else {
                float ssum = 0.0f;
                for (int64_t c = 0; c < C; c++) {
                    float lp = xs[c] - lse;
                    lp = lp > 0.0f ? 0.0f : lp;
                    float w = (alpha ? alpha[c] : 1.0f) * ((c == yk ? lsy : 0.0f) + lsc);
                    float om = -expm1f(lp);
                    float mod = om > 0.0f ? (gkind == 2 ? om * om : powf(om, gamma)) : (gamma == 0.0f ? 1.0f : 0.0f);
                    float ratio = om > 1e-30f ? lp / om : -1.0f;
                    float h = mod * (gamma * expf(lp) * ratio - 1.0f);
                    l -= w > 0.0f ? w * mod * lp : 0.0f;
                    wh[c] = w > 0.0f ? w * h : 0.0f;
                    ssum += wh[c];
                }
                for (int64_t c = 0; c < C; c++) gs[c] = wh[c] - expf(xs[c] - lse) * ssum;
            }
            part[n] = l;
            if (loss_out) loss_out[n] = l;
            if (grad_out) store_block(grad_out, xcode, n * C, C, gs);
        }
        free(xs);
    }
    for (int64_t n = 0; n < N; n++) total += part[n];
    free(part);
    *count = ctotal;
    *nbad = bad;
    return total;
}

EXPORT double fk_softmax_labels(const void *x, int xcode, const int64_t *y, int64_t N, int64_t C,
                                int64_t inner, const float *alpha, float gamma, int64_t ignore,
                                float ls, float *loss_out, void *grad_out, int64_t *count,
                                int64_t *nbad, int nthreads) {
    const int gkind = gamma_kind(gamma);
    if (inner == 1) return softmax_rows(x, xcode, y, N, C, alpha, gamma, ignore, ls, loss_out,
                                        grad_out, count, nbad, nthreads);
    const int64_t ntile = (inner + TILE - 1) / TILE;
    const int64_t units = N * ntile;
    double total = 0.0; int64_t ctotal = 0, bad = 0;
    int nt = threads_for(N * C * inner, nthreads);
    const float lsc = ls / (float)C, lsy = 1.0f - ls;
    double *part = (double *)malloc(sizeof(double) * (size_t)(units + 1));
#pragma omp parallel num_threads(nt) reduction(+ : ctotal, bad)
    {
        float mx[TILE], se[TILE], lse[TILE], coef[TILE], ssum[TILE];
        int64_t yy[TILE];
        float *wh = NULL;
        if (ls > 0.0f) wh = (float *)malloc(sizeof(float) * (size_t)C * TILE);
        /* the tile's logits as float32 (xt) and exp(x - max) (ex), reused by every step: one
         * exp per element, not two; gt holds the gradient before a bfloat16 store */
        float *xt = (float *)malloc(sizeof(float) * (size_t)C * TILE * 3);
        float *ex = xt + C * TILE, *gt = ex + C * TILE;
        float inv[TILE];
#pragma omp for schedule(dynamic, 4)
        for (int64_t u = 0; u < units; u++) {
            int64_t nn = u / ntile, tile = u % ntile;
            int64_t i0 = tile * TILE, i1 = i0 + TILE < inner ? i0 + TILE : inner;
            int64_t B = i1 - i0;
            int64_t xb = nn * C * inner + i0; /* element (nn, c, i0 + k) at xb + c * inner + k */
            const int64_t *yr = y + nn * inner + i0;
            for (int64_t c = 0; c < C; c++) load_block(x, xcode, xb + c * inner, B, xt + c * TILE);
            for (int64_t k = 0; k < B; k++) { mx[k] = xt[k]; se[k] = 0.0f; }
            for (int64_t c = 1; c < C; c++) {
                const float *xr = xt + c * TILE;
                for (int64_t k = 0; k < B; k++) mx[k] = xr[k] > mx[k] ? xr[k] : mx[k];
            }
            for (int64_t c = 0; c < C; c++) {
                const float *xr = xt + c * TILE;
                float *er = ex + c * TILE;
                for (int64_t k = 0; k < B; k++) {
                    er[k] = expf(xr[k] - mx[k]);
                    se[k] += er[k];
                }
            }
            for (int64_t k = 0; k < B; k++) inv[k] = 1.0f / se[k];
            double s = 0.0; int64_t cnt = 0;
            for (int64_t k = 0; k < B; k++) {
                lse[k] = mx[k] + logf(se[k]);
                int64_t yk = yr[k];
                int valid = yk != ignore;
                int inrange = yk >= 0 && yk < C;
                bad += valid && !inrange; /* out-of-range labels: reported, treated as ignored */
                valid = valid && inrange;
                yy[k] = valid ? yk : -1;
                cnt += valid;
            }
            if (ls == 0.0f) {
                /* Hard labels: only the target class enters the loss. */
                for (int64_t k = 0; k < B; k++) {
                    coef[k] = 0.0f;
                    int64_t yk = yy[k];
                    if (yk < 0) { if (loss_out) loss_out[nn * inner + i0 + k] = 0.0f; continue; }
                    float lp = xt[yk * TILE + k] - lse[k];
                    if (lp > 0.0f) lp = 0.0f;
                    float om = -expm1f(lp);
                    float w = alpha ? alpha[yk] : 1.0f;
                    float mod = pow_mod(om, gamma, gkind);
                    float l = -w * mod * lp;
                    float ratio = om > 1e-30f ? lp / om : -1.0f; /* log(1-om)/om = -1 in fp32 */
                    float h = mod * (gamma * expf(lp) * ratio - 1.0f);
                    coef[k] = w * h;
                    s += l;
                    if (loss_out) loss_out[nn * inner + i0 + k] = l;
                }
                if (grad_out) {
                    /* dloss/dx_j = coef * ([j == y] - p_j) */
                    for (int64_t c = 0; c < C; c++) {
                        int64_t off = xb + c * inner;
                        const float *er = ex + c * TILE;
                        float *gr = xcode == 0 ? (float *)grad_out + off : gt;
                        for (int64_t k = 0; k < B; k++)
                            gr[k] = coef[k] * ((yy[k] == c ? 1.0f : 0.0f) - er[k] * inv[k]);
                        if (xcode != 0) store_block(grad_out, xcode, off, B, gt);
                    }
                }
            } else {
                /* Label smoothing: every class has weight w_c = alpha_c * t_c. */
                float lsum[TILE];
                for (int64_t k = 0; k < B; k++) { ssum[k] = 0.0f; lsum[k] = 0.0f; }
                for (int64_t c = 0; c < C; c++) {
                    float ac = alpha ? alpha[c] : 1.0f;
                    for (int64_t k = 0; k < B; k++) {
                        float lp = xt[c * TILE + k] - lse[k];
                        if (lp > 0.0f) lp = 0.0f;
                        float tc = (yy[k] == c ? lsy : 0.0f) + lsc;
                        float w = yy[k] < 0 ? 0.0f : ac * tc;
                        float om = -expm1f(lp);
                        float mod = pow_mod(om, gamma, gkind);
                        float ratio = om > 1e-30f ? lp / om : -1.0f; /* log(1-om)/om = -1 in fp32 */
                        float h = mod * (gamma * expf(lp) * ratio - 1.0f);
                        float term = w > 0.0f ? w * mod * lp : 0.0f;
                        float whc = w > 0.0f ? w * h : 0.0f;
                        lsum[k] -= term;
                        ssum[k] += whc;
                        wh[c * TILE + k] = whc;
                    }
                }
                for (int64_t k = 0; k < B; k++) {
                    s += lsum[k];
                    if (loss_out) loss_out[nn * inner + i0 + k] = lsum[k];
                }
                if (grad_out) {
                    for (int64_t c = 0; c < C; c++) {
                        int64_t off = xb + c * inner;
                        const float *er = ex + c * TILE;
                        float *gr = xcode == 0 ? (float *)grad_out + off : gt;
                        for (int64_t k = 0; k < B; k++)
                            gr[k] = wh[c * TILE + k] - er[k] * inv[k] * ssum[k];
                        if (xcode != 0) store_block(grad_out, xcode, off, B, gt);
                    }
                }
            }
            part[u] = s; ctotal += cnt;
        }
        free(wh);
        free(xt);
    }
    for (int64_t u = 0; u < units; u++) total += part[u];
    free(part);
    *count = ctotal;
    *nbad = bad;
    return total;
}

EXPORT int fk_abi_version(void) { return 1; }

EXPORT int fk_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
