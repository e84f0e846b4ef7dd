/* focalkit CPU kernels: focal loss and its analytic gradient in one pass (OpenMP).
 *
 * Plain C on raw pointers, no Python or torch headers: the module is loaded with ctypes by
 * focalkit/kernels/cpu.py, which documents the math and the kernel contract. All arithmetic is
 * float32; partial sums (per block of elements / positions) are float64, added in a fixed order
 * after the parallel loop: deterministic whatever the thread count and scheduling. Logits are
 * float32 (code 0) or bfloat16 (code 1, stored as uint16). The kernels are in _focal_cpu_impl.h.
 *
 * Exported (all return the float64 loss sum; *count receives the number of non-ignored elements
 * or positions; labels are int64, compared with `ignore` in int64):
 *   fk_sigmoid_dense  (x, xcode, t, n, alpha, has_alpha, gamma, has_ignore, ignore, ls,
 *                      loss_out, grad_out, count, nthreads)
 *   fk_sigmoid_labels (x, xcode, y, N, C, inner, alpha, has_alpha, gamma, has_ignore, ignore, ls,
 *                      loss_out, grad_out, count, nbad, nthreads)   (nbad: labels outside [0, C])
 *   fk_softmax_labels (x, xcode, y, N, C, inner, alpha_vec, gamma, ignore, ls,
 *                      loss_out, grad_out, count, nbad, nthreads)   (nbad: labels outside [0, C))
 * loss_out / grad_out may be NULL (no per-element loss / no gradient).
 */
#define FK_ISA base
#include "_focal_cpu_impl.h"

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

EXPORT double fk_sigmoid_dense(const void *x, int xcode, const float *t, int64_t n, float alpha,
                               int has_alpha, float gamma, int has_ignore, float ignore, float ls,
                               float *loss_out, void *grad_out, int64_t *count, int nthreads) {
    return fk_sigmoid_dense_base(x, xcode, t, n, alpha, has_alpha, gamma, has_ignore, ignore, ls,
                                 loss_out, grad_out, count, nthreads);
}

EXPORT double fk_sigmoid_labels(const void *x, int xcode, const int64_t *y, int64_t N, int64_t C,
                                int64_t inner, float alpha, int has_alpha, float gamma,
                                int has_ignore, int64_t ignore, float ls, float *loss_out,
                                void *grad_out, int64_t *count, int64_t *nbad, int nthreads) {
    return fk_sigmoid_labels_base(x, xcode, y, N, C, inner, alpha, has_alpha, gamma, has_ignore,
                                  ignore, ls, loss_out, grad_out, count, nbad, nthreads);
}

EXPORT double fk_softmax_labels(const void *x, int xcode, const int64_t *y, int64_t N, int64_t C,
                                int64_t inner, const float *alpha, float gamma, int64_t ignore,
                                float ls, float *loss_out, void *grad_out, int64_t *count,
                                int64_t *nbad, int nthreads) {
    return fk_softmax_labels_base(x, xcode, y, N, C, inner, alpha, gamma, ignore, ls, loss_out,
                                  grad_out, count, nbad, nthreads);
}

/* 2: fk_sigmoid_labels reports out-of-range labels (nbad) */
EXPORT int fk_abi_version(void) { return 2; }

EXPORT int fk_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
