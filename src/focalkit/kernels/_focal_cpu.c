/* focalkit CPU kernels: focal loss and its analytic gradient in one pass (OpenMP).
 *
 * Plain C on raw pointers, no Python or torch headers: the module is loaded with ctypes by
 * focalkit/kernels/cpu.py, which documents the math and the kernel contract. All arithmetic is
 * float32; partial sums (per block of elements / positions) are float64, added in a fixed order
 * after the parallel loop: deterministic whatever the thread count and scheduling. Logits are
 * float32 (code 0) or bfloat16 (code 1, stored as uint16).
 *
 * The kernels themselves are in _focal_cpu_impl.h, compiled once per instruction set: the baseline
 * here (any x86-64 CPU, or any other architecture), AVX2 + FMA in _focal_cpu_avx2.c and AVX-512 in
 * _focal_cpu_avx512.c (GCC on x86-64). This file exports one entry point per kernel that calls the
 * best variant the running CPU supports, so one build runs anywhere at the best speed available.
 *
 * Exported (the kernels return the float64 loss sum; *count receives the number of non-ignored
 * elements or positions; labels are int64, compared with `ignore` in int64):
 *   fk_sigmoid_dense  (x, xcode, t, n, alpha, has_alpha, gamma, has_ignore, ignore, ls,
 *                      loss_out, grad_out, count, nthreads)
 *   fk_sigmoid_labels (x, xcode, y, N, C, inner, alpha, has_alpha, gamma, has_ignore, ignore, ls,
 *                      loss_out, grad_out, count, nbad, nthreads)   (nbad: labels outside [0, C])
 *   fk_softmax_labels (x, xcode, y, N, C, inner, alpha_vec, gamma, ignore, ls,
 *                      loss_out, grad_out, count, nbad, nthreads)   (nbad: labels outside [0, C))
 *   fk_softmax_soft   (x, xcode, t, tcode, N, C, inner, alpha_vec, gamma, ls,
 *                      loss_out, grad_out, count, nthreads)   (t: class probabilities, x's layout)
 *   fk_softmax_soft_nbad (... count, nbad, nthreads): the same, nbad = targets outside [0, 1]
 *   fk_sigmoid_dense_family, fk_sigmoid_labels_family, fk_softmax_labels_family,
 *   fk_softmax_soft_family: the same with a trailing `const fk_family *fam`, the member of the focal
 *                      family (_focal_cpu_family.h: Poly-1, piecewise gamma, asymmetric, quality,
 *                      varifocal); fk_sigmoid_labels_family also takes `const float *scores`
 *                      (N, inner) before it: the target value of each position's labelled class
 *                      (NULL: 1). The plain entry points run the plain passes, as before.
 *   fk_cpu_isa() -> the variant in use (0 baseline, 1 AVX2+FMA, 2 AVX-512)
 *   fk_cpu_isa_supported(level) -> whether this build and CPU can run that variant
 *   fk_set_cpu_isa(level) -> use the best variant at most `level` (-1: the best); returns it
 * loss_out / grad_out may be NULL (no per-element loss / no gradient).
 */
#define FK_ISA base
#include "_focal_cpu_impl.h"

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FK_X86_VARIANTS 1
#define FK_DECLARE(isa)                                                                        \
    double fk_sigmoid_dense_##isa(const void *, int, const float *, int64_t, float, int, float, \
                                  int, float, float, float *, void *, int64_t *, int);         \
    double fk_sigmoid_labels_##isa(const void *, int, const int64_t *, int64_t, int64_t,       \
                                   int64_t, float, int, float, int, int64_t, float, float *,   \
                                   void *, int64_t *, int64_t *, int);                         \
    double fk_softmax_labels_##isa(const void *, int, const int64_t *, int64_t, int64_t,       \
                                   int64_t, const float *, float, int64_t, float, float *,     \
                                   void *, int64_t *, int64_t *, int);                         \
    double fk_softmax_soft_##isa(const void *, int, const void *, int, int64_t, int64_t,       \
                                 int64_t, const float *, float, float, float *, void *,        \
                                 int64_t *, int);                                              \
    double fk_softmax_soft_nbad_##isa(const void *, int, const void *, int, int64_t, int64_t,  \
                                      int64_t, const float *, float, float, float *, void *,   \
                                      int64_t *, int64_t *, int);                              \
    double fk_sigmoid_dense_family_##isa(const void *, int, const float *, int64_t, float, int,  \
                                         float, int, float, float, float *, void *, int64_t *,   \
                                         int, const fk_family *);                                \
    double fk_sigmoid_labels_family_##isa(const void *, int, const int64_t *, int64_t, int64_t, \
                                          int64_t, float, int, float, int, int64_t, float,       \
                                          float *, void *, int64_t *, int64_t *, int,            \
                                          const float *, const fk_family *);                     \
    double fk_softmax_labels_family_##isa(const void *, int, const int64_t *, int64_t, int64_t, \
                                          int64_t, const float *, float, int64_t, float,         \
                                          float *, void *, int64_t *, int64_t *, int,            \
                                          const fk_family *);                                    \
    double fk_softmax_soft_family_##isa(const void *, int, const void *, int, int64_t, int64_t, \
                                        int64_t, const float *, float, float, float *, void *,   \
                                        int64_t *, int, const fk_family *);
FK_DECLARE(avx2)
FK_DECLARE(avx512)
#endif

typedef double (*fk_sigmoid_dense_fn)(const void *, int, const float *, int64_t, float, int, float,
                                      int, float, float, float *, void *, int64_t *, int);
typedef double (*fk_sigmoid_labels_fn)(const void *, int, const int64_t *, int64_t, int64_t,
                                       int64_t, float, int, float, int, int64_t, float, float *,
                                       void *, int64_t *, int64_t *, int);
typedef double (*fk_softmax_labels_fn)(const void *, int, const int64_t *, int64_t, int64_t,
                                       int64_t, const float *, float, int64_t, float, float *,
                                       void *, int64_t *, int64_t *, int);
typedef double (*fk_softmax_soft_fn)(const void *, int, const void *, int, int64_t, int64_t,
                                     int64_t, const float *, float, float, float *, void *,
                                     int64_t *, int);
typedef double (*fk_softmax_soft_nbad_fn)(const void *, int, const void *, int, int64_t, int64_t,
                                          int64_t, const float *, float, float, float *, void *,
                                          int64_t *, int64_t *, int);

typedef double (*fk_sigmoid_dense_family_fn)(const void *, int, const float *, int64_t, float, int,
                                             float, int, float, float, float *, void *, int64_t *,
                                             int, const fk_family *);
typedef double (*fk_sigmoid_labels_family_fn)(const void *, int, const int64_t *, int64_t, int64_t,
                                              int64_t, float, int, float, int, int64_t, float,
                                              float *, void *, int64_t *, int64_t *, int,
                                              const float *, const fk_family *);
typedef double (*fk_softmax_labels_family_fn)(const void *, int, const int64_t *, int64_t, int64_t,
                                              int64_t, const float *, float, int64_t, float,
                                              float *, void *, int64_t *, int64_t *, int,
                                              const fk_family *);
typedef double (*fk_softmax_soft_family_fn)(const void *, int, const void *, int, int64_t, int64_t,
                                            int64_t, const float *, float, float, float *, void *,
                                            int64_t *, int, const fk_family *);

typedef struct {
    fk_sigmoid_dense_fn sigmoid_dense;
    fk_sigmoid_labels_fn sigmoid_labels;
    fk_softmax_labels_fn softmax_labels;
    fk_softmax_soft_fn softmax_soft;
    fk_sigmoid_dense_family_fn sigmoid_dense_family;
    fk_sigmoid_labels_family_fn sigmoid_labels_family;
    fk_softmax_labels_family_fn softmax_labels_family;
    fk_softmax_soft_family_fn softmax_soft_family;
    fk_softmax_soft_nbad_fn softmax_soft_nbad;
} fk_variant;

#define FK_VARIANT(isa)                                                                        \
    {fk_sigmoid_dense_##isa, fk_sigmoid_labels_##isa, fk_softmax_labels_##isa,                 \
     fk_softmax_soft_##isa, fk_sigmoid_dense_family_##isa, fk_sigmoid_labels_family_##isa,     \
     fk_softmax_labels_family_##isa, fk_softmax_soft_family_##isa, fk_softmax_soft_nbad_##isa}

static const fk_variant fk_variants[] = {
    FK_VARIANT(base),
#ifdef FK_X86_VARIANTS
    FK_VARIANT(avx2),
    FK_VARIANT(avx512),
#endif
};
#define FK_NVARIANTS ((int)(sizeof(fk_variants) / sizeof(fk_variants[0])))

EXPORT int fk_cpu_isa_supported(int level) {
    if (level < 0 || level >= FK_NVARIANTS) return 0;
    if (level == 0) return 1;
#ifdef FK_X86_VARIANTS
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return 0;
    if (level == 1) return 1;
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
           && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#else
    return 0;
#endif
}

static int fk_best_isa(void) {
    int level = FK_NVARIANTS - 1;
    while (level > 0 && !fk_cpu_isa_supported(level)) level--;
    return level;
}

/* The variant in use; -1 until the first call (a race here is benign: every thread picks the same). */
static volatile int fk_level = -1;

static const fk_variant *fk_pick(void) {
    int level = fk_level;
    if (level < 0) fk_level = level = fk_best_isa();
    return &fk_variants[level];
}

EXPORT int fk_cpu_isa(void) {
    fk_pick();
    return fk_level;
}

EXPORT int fk_set_cpu_isa(int level) { /* the best variant at most `level` (-1: the best) */
    if (level < 0 || level >= FK_NVARIANTS) level = FK_NVARIANTS - 1;
    while (level > 0 && !fk_cpu_isa_supported(level)) level--;
    fk_level = level;
    return level;
}

EXPORT double fk_sigmoid_dense(const void *x, int xcode, const float *t, int64_t n, float alpha,
                               int has_alpha, float gamma, int has_ignore, float ignore, float ls,
                               float *loss_out, void *grad_out, int64_t *count, int nthreads) {
    return fk_pick()->sigmoid_dense(x, xcode, t, n, alpha, has_alpha, gamma, has_ignore, ignore, ls,
                                    loss_out, grad_out, count, nthreads);
}

EXPORT double fk_sigmoid_labels(const void *x, int xcode, const int64_t *y, int64_t N, int64_t C,
                                int64_t inner, float alpha, int has_alpha, float gamma,
                                int has_ignore, int64_t ignore, float ls, float *loss_out,
                                void *grad_out, int64_t *count, int64_t *nbad, int nthreads) {
    return fk_pick()->sigmoid_labels(x, xcode, y, N, C, inner, alpha, has_alpha, gamma, has_ignore,
                                     ignore, ls, loss_out, grad_out, count, nbad, nthreads);
}

EXPORT double fk_softmax_labels(const void *x, int xcode, const int64_t *y, int64_t N, int64_t C,
                                int64_t inner, const float *alpha, float gamma, int64_t ignore,
                                float ls, float *loss_out, void *grad_out, int64_t *count,
                                int64_t *nbad, int nthreads) {
    return fk_pick()->softmax_labels(x, xcode, y, N, C, inner, alpha, gamma, ignore, ls, loss_out,
                                     grad_out, count, nbad, nthreads);
}

EXPORT double fk_softmax_soft(const void *x, int xcode, const void *t, int tcode, int64_t N,
                              int64_t C, int64_t inner, const float *alpha, float gamma, float ls,
                              float *loss_out, void *grad_out, int64_t *count, int nthreads) {
    return fk_pick()->softmax_soft(x, xcode, t, tcode, N, C, inner, alpha, gamma, ls, loss_out,
                                   grad_out, count, nthreads);
}

EXPORT double fk_softmax_soft_nbad(const void *x, int xcode, const void *t, int tcode, int64_t N,
                                   int64_t C, int64_t inner, const float *alpha, float gamma,
                                   float ls, float *loss_out, void *grad_out, int64_t *count,
                                   int64_t *nbad, int nthreads) {
    return fk_pick()->softmax_soft_nbad(x, xcode, t, tcode, N, C, inner, alpha, gamma, ls,
                                        loss_out, grad_out, count, nbad, nthreads);
}

EXPORT double fk_sigmoid_dense_family(const void *x, int xcode, const float *t, int64_t n,
                                      float alpha, int has_alpha, float gamma, int has_ignore,
                                      float ignore, float ls, float *loss_out, void *grad_out,
                                      int64_t *count, int nthreads, const fk_family *fam) {
    return fk_pick()->sigmoid_dense_family(x, xcode, t, n, alpha, has_alpha, gamma, has_ignore,
                                           ignore, ls, loss_out, grad_out, count, nthreads, fam);
}

EXPORT double fk_sigmoid_labels_family(const void *x, int xcode, const int64_t *y, int64_t N,
                                       int64_t C, int64_t inner, float alpha, int has_alpha,
                                       float gamma, int has_ignore, int64_t ignore, float ls,
                                       float *loss_out, void *grad_out, int64_t *count,
                                       int64_t *nbad, int nthreads, const float *scores,
                                       const fk_family *fam) {
    return fk_pick()->sigmoid_labels_family(x, xcode, y, N, C, inner, alpha, has_alpha, gamma,
                                            has_ignore, ignore, ls, loss_out, grad_out, count,
                                            nbad, nthreads, scores, fam);
}

EXPORT double fk_softmax_labels_family(const void *x, int xcode, const int64_t *y, int64_t N,
                                       int64_t C, int64_t inner, const float *alpha, float gamma,
                                       int64_t ignore, float ls, float *loss_out, void *grad_out,
                                       int64_t *count, int64_t *nbad, int nthreads,
                                       const fk_family *fam) {
    return fk_pick()->softmax_labels_family(x, xcode, y, N, C, inner, alpha, gamma, ignore, ls,
                                            loss_out, grad_out, count, nbad, nthreads, fam);
}

EXPORT double fk_softmax_soft_family(const void *x, int xcode, const void *t, int tcode, int64_t N,
                                     int64_t C, int64_t inner, const float *alpha, float gamma,
                                     float ls, float *loss_out, void *grad_out, int64_t *count,
                                     int nthreads, const fk_family *fam) {
    return fk_pick()->softmax_soft_family(x, xcode, t, tcode, N, C, inner, alpha, gamma, ls,
                                          loss_out, grad_out, count, nthreads, fam);
}

/* 2: fk_sigmoid_labels reports out-of-range labels (nbad); 3: fk_softmax_soft; 4: the *_family
 * entry points (the plain ones unchanged); 5: fk_softmax_soft_nbad (the others unchanged) */
EXPORT int fk_abi_version(void) { return 5; }

EXPORT int fk_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
