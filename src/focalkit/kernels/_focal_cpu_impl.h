/* focalkit CPU kernels, the body: focal loss and its analytic gradient in one pass (OpenMP).
 *
 * This file is compiled once per instruction set: _focal_cpu.c includes it for the baseline
 * (plain x86-64 / any CPU), _focal_cpu_avx2.c and _focal_cpu_avx512.c under
 * `#pragma GCC target(...)`, each with FK_ISA set to a suffix for the entry points
 * (fk_sigmoid_dense_<FK_ISA>, ...). _focal_cpu.c picks one variant for the running CPU.
 *
 * Floating point: compiled without -ffast-math (its finite-only assumption drops NaN and inf) and
 * without reassociation, so the evaluation order is the one written here; reductions vectorize
 * through OpenMP simd reductions. exp/log are our own branch-free polynomials (below): the loops
 * vectorize on any libc (no libmvec symbol of a newer glibc is needed at run time) and NaN and
 * +-inf propagate as in IEEE arithmetic. No contraction (-ffp-contract=off): the variants with FMA
 * fuse the polynomial steps explicitly (FK_MADD), so their results differ from the baseline's by
 * float32 rounding, and within a variant an element's result never depends on its position.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef FK_ISA
#error "define FK_ISA before including _focal_cpu_impl.h"
#endif
#define FK_CAT2(a, b) a##_##b
#define FK_CAT(a, b) FK_CAT2(a, b)
#define FK_FN(name) FK_CAT(name, FK_ISA)

/* Every function of a variant carries its suffix: unique symbols across the variants, profiles that
 * say which one ran, and a test (tests/kernels/test_cpu_isa.py) that finds AVX instructions only in
 * functions named *_avx2 / *_avx512. */
#define fk_from_bits FK_FN(fk_from_bits)
#define fk_to_bits FK_FN(fk_to_bits)
#define fk_exp_neg FK_FN(fk_exp_neg)
#define fk_log FK_FN(fk_log)
#define fk_log1p FK_FN(fk_log1p)
#define fk_log1p_unit FK_FN(fk_log1p_unit)
#define fk_one_minus_p FK_FN(fk_one_minus_p)
#define fk_pow_mod FK_FN(fk_pow_mod)
#define fk_gamma_kind FK_FN(fk_gamma_kind)
#define fk_softmax_h FK_FN(fk_softmax_h)
#define fk_bf16_to_f32 FK_FN(fk_bf16_to_f32)
#define fk_f32_to_bf16 FK_FN(fk_f32_to_bf16)
#define fk_threads_for FK_FN(fk_threads_for)
#define fk_count_outside_unit FK_FN(fk_count_outside_unit)
#define fk_load_block FK_FN(fk_load_block)
#define fk_store_block FK_FN(fk_store_block)
#define sig_block_g0 FK_FN(sig_block_g0)
#define sig_block_g1 FK_FN(sig_block_g1)
#define sig_block_g2 FK_FN(sig_block_g2)
#define sig_block_gx FK_FN(sig_block_gx)
#define sig_block_g0_hard FK_FN(sig_block_g0_hard)
#define sig_block_g1_hard FK_FN(sig_block_g1_hard)
#define sig_block_g2_hard FK_FN(sig_block_g2_hard)
#define sig_block_gx_hard FK_FN(sig_block_gx_hard)
#define sig_block_for FK_FN(sig_block_for)
#define smooth_tile_class FK_FN(smooth_tile_class)
#define smooth_row_block FK_FN(smooth_row_block)
#define softmax_call FK_FN(softmax_call)
#define fk_flush2 FK_FN(fk_flush2)
#define softmax_poly_row FK_FN(softmax_poly_row)
#define fk_family_pw FK_FN(fk_family_pw)
#define softmax_poly_tile FK_FN(softmax_poly_tile)

/* Reductions vectorize without -ffast-math's reassociation through OpenMP's simd reductions. */
#define FK_STR(...) #__VA_ARGS__
#if defined(_OPENMP)
#define FK_SIMD_SUM(...) _Pragma(FK_STR(omp simd reduction(+ : __VA_ARGS__)))
#define FK_SIMD_MAX(v) _Pragma(FK_STR(omp simd reduction(max : v)))
#else
#define FK_SIMD_SUM(...)
#define FK_SIMD_MAX(v)
#endif

#if defined(__GNUC__)
#define FK_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define FK_ALWAYS_INLINE static inline
#endif

/* a * b + c: one fused rounding where the variant has FMA (an explicit fmaf, so the scalar and the
 * vectorized copies of a loop round alike: no -ffp-contract, whose choices may differ between
 * them and make an element's result depend on where it falls in a block), two roundings else. */
#if defined(__FMA__) || defined(__FMA4__) || defined(__aarch64__)
#define FK_MADD(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define FK_MADD(a, b, c) ((a) * (b) + (c))
#endif

/* ---------------------------------------------------------------- scalar math, vectorizable */

typedef union { float f; uint32_t u; } fk_bits;

static inline float fk_from_bits(uint32_t u) { fk_bits b; b.u = u; return b.f; }
static inline uint32_t fk_to_bits(float f) { fk_bits b; b.f = f; return b.u; }

/* e^x for x <= 0 (every use here: -|x|, x - max, gamma log q), relative error < 2.5e-7 (Cephes
 * expf: Cody-Waite reduction, degree-6 polynomial), without branches. NaN -> NaN, -inf -> 0;
 * results below FLT_MIN are subnormal (2^n is applied as 2^n1 * 2^n2, both normal). */
static inline float fk_exp_neg(float x) {
    float xc = x >= -104.0f ? x : -104.0f; /* NaN too: n stays finite, the NaN is put back last */
    /* n = round(x / ln 2): the argument of the truncation is positive, so it is a floor */
    int32_t n = (int32_t)(xc * 1.44269504088896341f + 256.5f) - 256;
    float nf = (float)n;
    float r = xc - nf * 0.693359375f; /* exact product: nf has <= 8 bits, the constant 9 */
    r = FK_MADD(nf, 2.12194440e-4f, r); /* r - nf * (-2.12e-4) */
    float p = 1.9875691500e-4f;
    p = FK_MADD(p, r, 1.3981999507e-3f);
    p = FK_MADD(p, r, 8.3334519073e-3f);
    p = FK_MADD(p, r, 4.1665795894e-2f);
    p = FK_MADD(p, r, 1.6666665459e-1f);
    p = FK_MADD(p, r, 5.0000001201e-1f);
    p = FK_MADD(p, r * r, r) + 1.0f;
    int32_t n1 = n >> 1, n2 = n - n1; /* n in [-150, 0]: both halves in [-75, 0] */
    float s1 = fk_from_bits((uint32_t)(n1 + 127) << 23);
    float s2 = fk_from_bits((uint32_t)(n2 + 127) << 23);
    float y = p * s1 * s2;
    return x == x ? y : x;
}

/* log(x), relative error < 2e-7 (Cephes logf), without branches; subnormals included.
 * log(0) = -inf, log(+inf) = +inf, NaN and x < 0 -> NaN. */
static inline float fk_log(float x) {
    int tiny = x < 1.17549435e-38f;
    float xs = tiny ? x * 8388608.0f : x; /* 2^23: subnormals become normal */
    uint32_t u = fk_to_bits(xs);
    int32_t e = (int32_t)((u >> 23) & 0xffu) - 126 - (tiny ? 23 : 0);
    float m = fk_from_bits((u & 0x007fffffu) | 0x3f000000u); /* [0.5, 1) */
    int lo = m < 0.707106781186547524f;
    e = lo ? e - 1 : e;
    float f = lo ? (m + m) - 1.0f : m - 1.0f; /* [sqrt(1/2) - 1, sqrt(2) - 1) */
    float z = f * f;
    float y = 7.0376836292e-2f;
    y = FK_MADD(y, f, -1.1514610310e-1f);
    y = FK_MADD(y, f, 1.1676998740e-1f);
    y = FK_MADD(y, f, -1.2420140846e-1f);
    y = FK_MADD(y, f, 1.4249322787e-1f);
    y = FK_MADD(y, f, -1.6668057665e-1f);
    y = FK_MADD(y, f, 2.0000714765e-1f);
    y = FK_MADD(y, f, -2.4999993993e-1f);
    y = FK_MADD(y, f, 3.3333331174e-1f);
    y = y * f * z;
    float ef = (float)e;
    y = y + ef * -2.12194440e-4f;
    y = y - 0.5f * z;
    float r = (f + y) + ef * 0.693359375f;
    r = x == 0.0f ? -INFINITY : r;
    r = x == INFINITY ? x : r;
    return (x < 0.0f || x != x) ? NAN : r;
}

/* log(1 + v) for v >= 0 (Goldberg: log(u) * v / (u - 1), u = fl(1 + v)); +inf -> +inf, NaN -> NaN. */
static inline float fk_log1p(float v) {
    float u = 1.0f + v;
    float d = u - 1.0f;
    float r = u == 1.0f ? v : fk_log(u) * (v / (d == 0.0f ? 1.0f : d));
    return v == INFINITY ? v : r;
}

/* log1p(e) for e in [0, 1] (the sigmoid's log1p(exp(-|x|))): e P(e) with P a degree-9
 * polynomial fitted to log1p(e) / e on [0, 1] (fit error 5e-9 relative; 1.9e-7 with float32
 * rounding), so the relative accuracy holds down to e = 0. NaN -> NaN. */
static inline float fk_log1p_unit(float e) {
    float p = -3.2440342474728823e-3f;
    p = FK_MADD(p, e, 1.9851503893733025e-2f);
    p = FK_MADD(p, e, -5.6959610432386400e-2f);
    p = FK_MADD(p, e, 1.0603662580251694e-1f);
    p = FK_MADD(p, e, -1.5305596590042114e-1f);
    p = FK_MADD(p, e, 1.9675940275192260e-1f);
    p = FK_MADD(p, e, -2.4954134225845337e-1f);
    p = FK_MADD(p, e, 3.3329963684082031e-1f);
    p = FK_MADD(p, e, -4.9999901652336120e-1f);
    p = FK_MADD(p, e, 1.0f);
    return e * p;
}

/* 1 - p for p = exp(lp), lp <= 0, with relative accuracy near lp = 0: -expm1(lp) by its Taylor
 * series (degree 8, relative error < 2e-8) for lp >= -0.5; below, 1 - p has no cancellation. */
static inline float fk_one_minus_p(float lp, float p) {
    float q = 1.0f / 40320;
    q = FK_MADD(q, lp, 1.0f / 5040);
    q = FK_MADD(q, lp, 1.0f / 720);
    q = FK_MADD(q, lp, 1.0f / 120);
    q = FK_MADD(q, lp, 1.0f / 24);
    q = FK_MADD(q, lp, 1.0f / 6);
    q = FK_MADD(q, lp, 1.0f / 2);
    q = FK_MADD(q, lp, 1.0f);
    return lp < -0.5f ? 1.0f - p : -(q * lp);
}

/* q ** gamma for q in [0, 1], gamma >= 0, with 0 ** 0 = 1; NaN -> NaN (for gamma > 0). */
static inline float fk_pow_mod(float q, float gamma, int gkind) {
    /* an if chain, not a switch: GCC unswitches loops on a loop-invariant gkind only for ifs */
    if (gkind == 0) return 1.0f;
    if (gkind == 1) return q;
    if (gkind == 2) return q * q;
    return q == 0.0f ? 0.0f : fk_exp_neg(gamma * fk_log(q));
}

static inline int fk_gamma_kind(float gamma) {
    if (gamma == 0.0f) return 0;
    if (gamma == 1.0f) return 1;
    if (gamma == 2.0f) return 2;
    return 3;
}

/* The focal factor of the softmax gradient, per class: h = om^gamma (gamma p log(p) / om - 1),
 * with log(p) / om := -1 at om = 0 and p log(p) := 0 at p = 0 (a class at -inf: h = -om^gamma).
 * Gamma 1 and 2 (gkind 1, 2) expand it without the division: p log(p) - om and
 * om (2 p log(p) - om); both terms have one sign (no cancellation) and the limits at om = 0 and
 * p = 0 are the same. A division per class was a third of the full-distribution passes' time
 * (soft targets, label smoothing). */
static inline float fk_softmax_h(float lp, float p, float om, float mod, float gamma, int gkind) {
    float plp = p > 0.0f ? p * lp : 0.0f;
    if (gkind == 1) return plp - om;
    if (gkind == 2) return om * (2.0f * plp - om);
    float ratio = om > 1e-30f ? lp / om : -1.0f;
    float pr = p > 0.0f ? p * ratio : 0.0f;
    return gkind == 0 ? -1.0f : mod * (gamma * pr - 1.0f);
}

static inline float fk_bf16_to_f32(uint16_t v) { return fk_from_bits(((uint32_t)v) << 16); }

static inline uint16_t fk_f32_to_bf16(float f) { /* round to nearest even, NaN kept NaN */
    uint32_t u = fk_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Values of a float array outside [0, 1] (NaN included): the soft targets' range check, counted
 * in the pass that reads them (validate_args without a separate read). */
static inline int64_t fk_count_outside_unit(const float *restrict t, int64_t n) {
    int64_t bad = 0;
    FK_SIMD_SUM(bad)
    for (int64_t i = 0; i < n; i++) bad += !(t[i] >= 0.0f && t[i] <= 1.0f);
    return bad;
}

static int fk_threads_for(int64_t work, int nthreads) {
    if (nthreads < 1) nthreads = 1;
    if (work < 65536) return 1;
    return nthreads;
}

static inline void fk_load_block(const void *x, int xcode, int64_t off, int64_t m, float *restrict out) {
    if (xcode == 0) {
        memcpy(out, (const float *)x + off, (size_t)m * sizeof(float));
    } else {
        const uint16_t *xb = (const uint16_t *)x + off;
        for (int64_t i = 0; i < m; i++) out[i] = fk_bf16_to_f32(xb[i]);
    }
}

static inline void fk_store_block(void *g, int xcode, int64_t off, int64_t m, const float *restrict in) {
    if (xcode == 0) {
        memcpy((float *)g + off, in, (size_t)m * sizeof(float));
    } else {
        uint16_t *gb = (uint16_t *)g + off;
        for (int64_t i = 0; i < m; i++) gb[i] = fk_f32_to_bf16(in[i]);
    }
}

/* ---------------------------------------------------------------- sigmoid, shared block step */
/* Elements are processed in blocks of BLK: the caller fills float buffers with the logits, the
 * (smoothed) targets and the validity mask (1 or 0), and the block step computes the loss and the
 * gradient of each element with branch-free code that the compiler vectorizes (one variant per
 * common gamma, so q ** gamma is a multiply, not exp(gamma log q)).
 *
 * ce = (1 - t) x + max(-x, 0) + log1p(e^-|x|) is BCE-with-logits in PyTorch's own arrangement, so
 * infinite logits give what F.binary_cross_entropy_with_logits gives (+inf for a confident wrong
 * prediction, NaN where PyTorch's is NaN); the gradient's focal term is taken as 0 where the ratio
 * p (1 - p) / q is 0 (no 0 * inf). Ignored elements give exactly 0 whatever their logit. */
#define BLK 1024

#define SIG_BLOCK(NAME, MOD, RATIO)                                                            \
    static float NAME(const float *restrict xs, const float *restrict ts, const float *restrict vs, \
                      float *restrict ls_, float *restrict gs, int64_t m, float a, float ascale,   \
                      float gamma) {                                                           \
        float sum = 0.0f;                                                                      \
        FK_SIMD_SUM(sum)                                                                       \
        for (int64_t i = 0; i < m; i++) {                                                      \
            float x = xs[i], t = ts[i];                                                        \
            float e = fk_exp_neg(-fabsf(x));                                                   \
            float inv = 1.0f / (1.0f + e);                                                     \
            float p = x >= 0.0f ? inv : e * inv;                                               \
            float pn = x >= 0.0f ? e * inv : inv;                                              \
            float mx = -x > 0.0f ? -x : 0.0f;                                                  \
            float l1p = fk_log1p_unit(e);                                                      \
            float ce = ((1.0f - t) * x + mx) + l1p;                                            \
            float q = p * (1.0f - t) + pn * t;                                                 \
            float at = (a * t + (1.0f - a) * (1.0f - t)) * ascale;                             \
            float mod = MOD;                                                                   \
            float ratio = RATIO;                                                               \
            float rce = ratio > 0.0f && q > 1e-30f ? ratio * ce : 0.0f;                        \
            int valid = vs[i] != 0.0f;                                                         \
            float l = valid ? at * mod * ce : 0.0f;                                            \
            gs[i] = valid ? at * mod * ((p - t) + gamma * (1.0f - 2.0f * t) * rce) : 0.0f;     \
            ls_[i] = l;                                                                        \
            sum += l;                                                                          \
        }                                                                                      \
        return sum;                                                                            \
    }

/* p (1 - p) / q in [0, 1]: divided out for soft targets (0 below q = 1e-30, where the term is
 * below gamma q^(1 + gamma)); for hard ones q is p (t = 0) or 1 - p (t = 1), so it is 1 - p or p. */
#define RATIO_SOFT (q > 1e-30f ? p * pn / q : 0.0f)
#define RATIO_HARD (t != 0.0f ? p : pn)
/* q ** gamma; for hard targets log q = -softplus(+-x) = -(max(+-x, 0) + log1p(e)) needs no log. */
#define POW_SOFT (q == 0.0f ? 0.0f : fk_exp_neg(gamma * fk_log(q)))
#define POW_HARD fk_exp_neg(gamma * -((t != 0.0f ? (x > 0.0f ? x : 0.0f) : mx) + l1p))

SIG_BLOCK(sig_block_g0, 1.0f, RATIO_SOFT)
SIG_BLOCK(sig_block_g1, q, RATIO_SOFT)
SIG_BLOCK(sig_block_g2, q * q, RATIO_SOFT)
SIG_BLOCK(sig_block_gx, POW_SOFT, RATIO_SOFT)
SIG_BLOCK(sig_block_g0_hard, 1.0f, RATIO_HARD)
SIG_BLOCK(sig_block_g1_hard, q, RATIO_HARD)
SIG_BLOCK(sig_block_g2_hard, q * q, RATIO_HARD)
SIG_BLOCK(sig_block_gx_hard, POW_HARD, RATIO_HARD)

typedef float (*sig_block_fn)(const float *, const float *, const float *, float *, float *,
                              int64_t, float, float, float);

/* The block step for gamma; `hard`: every target of the block is 0 or 1. */
static sig_block_fn sig_block_for(float gamma, int hard) {
    switch (fk_gamma_kind(gamma)) {
    case 0: return hard ? sig_block_g0_hard : sig_block_g0;
    case 1: return hard ? sig_block_g1_hard : sig_block_g1;
    case 2: return hard ? sig_block_g2_hard : sig_block_g2;
    default: return hard ? sig_block_gx_hard : sig_block_gx;
    }
}

#include "_focal_cpu_family.h"

/* The passes: a plain copy and a family copy (see _focal_cpu_sigmoid_pass.h). */
#define FK_PASS3(a, b, c) a##_##b##_##c
#define FK_PASS2(a, b, c) FK_PASS3(a, b, c)
#define FK_FAM 0
#define FK_PASS(name) FK_PASS2(name, plain, FK_ISA)
#include "_focal_cpu_sigmoid_pass.h"
#undef FK_FAM
#undef FK_PASS
#define FK_FAM 1
#define FK_PASS(name) FK_PASS2(name, family, FK_ISA)
#include "_focal_cpu_sigmoid_pass.h"
#undef FK_FAM
#undef FK_PASS

double FK_FN(fk_sigmoid_dense)(const void *x, int xcode, const float *t, int64_t n, float alpha,
                               int has_alpha, float gamma, int has_ignore, float ignore, float ls,
                               float *loss_out, void *grad_out, int64_t *count, int nthreads) {
    return FK_PASS2(sigmoid_dense_call, plain, FK_ISA)(x, xcode, t, n, alpha, has_alpha, gamma,
                                                       has_ignore, ignore, ls, loss_out, grad_out,
                                                       count, nthreads, NULL);
}

double FK_FN(fk_sigmoid_dense_family)(const void *x, int xcode, const float *t, int64_t n,
                                      float alpha, int has_alpha, float gamma, int has_ignore,
                                      float ignore, float ls, float *loss_out, void *grad_out,
                                      int64_t *count, int nthreads, const fk_family *fam) {
    return FK_PASS2(sigmoid_dense_call, family, FK_ISA)(x, xcode, t, n, alpha, has_alpha, gamma,
                                                        has_ignore, ignore, ls, loss_out,
                                                        grad_out, count, nthreads, fam);
}

/* Class indices: see sigmoid_labels_call in _focal_cpu_sigmoid_pass.h. */
double FK_FN(fk_sigmoid_labels)(const void *x, int xcode, const int64_t *y, int64_t N, int64_t C,
                                int64_t inner, float alpha, int has_alpha, float gamma,
                                int has_ignore, int64_t ignore, float ls, float *loss_out,
                                void *grad_out, int64_t *count, int64_t *nbad, int nthreads) {
    return FK_PASS2(sigmoid_labels_call, plain, FK_ISA)(x, xcode, y, N, C, inner, alpha, has_alpha,
                                                        gamma, has_ignore, ignore, ls, loss_out,
                                                        grad_out, count, nbad, nthreads, NULL,
                                                        NULL);
}

double FK_FN(fk_sigmoid_labels_family)(const void *x, int xcode, const int64_t *y, int64_t N,
                                       int64_t C, int64_t inner, float alpha, int has_alpha,
                                       float gamma, int has_ignore, int64_t ignore, float ls,
                                       float *loss_out, void *grad_out, int64_t *count,
                                       int64_t *nbad, int nthreads, const float *scores,
                                       const fk_family *fam) {
    return FK_PASS2(sigmoid_labels_call, family, FK_ISA)(x, xcode, y, N, C, inner, alpha,
                                                         has_alpha, gamma, has_ignore, ignore, ls,
                                                         loss_out, grad_out, count, nbad,
                                                         nthreads, scores, fam);
}

#include "_focal_cpu_softmax.h"
