/* focalkit CPU kernels: the Python entry points of the eager fast path (focalkit/_fastpath.py).
 *
 * The kernels are plain C on raw pointers, loaded with ctypes by focalkit/kernels/cpu.py. A ctypes
 * call costs microseconds in argument conversion alone (~2.6 us for fk_softmax_labels, a fifth of
 * PyTorch's whole cross-entropy forward at (32, 10)), and the per-call cost of a loss on a small
 * batch is what decides whether it shows in a training step. So the same shared library is also a
 * Python extension module (this file, compiled into it): a few METH_FASTCALL functions that take
 * the pointers and sizes as Python ints, run the same exported kernels, and do in C the small steps
 * the fast path did in Python:
 *
 *   - the reduction of the float64 sum to the float32 loss, rounded as the tensor ops of the general
 *     path round it: sum -> (float)total; mean -> (float)((double)(float)total / den) with
 *     den = (float)max(count, 1) (IEEE division of float32 operands in double, rounded once to
 *     float32, equals the float32 division);
 *   - the range check of float targets (values in [0, 1], NaN fails) that validate_args asks for:
 *     counted by the softmax pass as it reads the class probabilities, and for the sigmoid's
 *     dense targets in one read before the pass (multi-threaded when large);
 *   - the backward's scaling of the saved gradient by the incoming gradient over the denominator,
 *     in place: float32 g * f, bfloat16 round(float(g) * f), f = (float)(grad_out / den), as
 *     PyTorch's mul_ with a Python scalar computes it.
 *
 * Each kernel function returns (loss, den, nbad): the reduced float32 loss as a Python float, the
 * denominator (0.0 for "sum"), and the number of bad targets (labels outside [0, C) that are not
 * ignore_index, or float targets outside [0, 1]); nbad > 0 means the loss is not valid and the
 * caller takes the general path, which raises the validation error.
 *
 * Pointers are the tensors' data_ptr(); the caller (focalkit/kernels/cpu.py) guarantees dtypes,
 * shapes and contiguity. Without this module (a build that only ctypes can load), cpu.py provides
 * the same functions over ctypes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

double fk_sigmoid_dense(const void *x, int xcode, const float *t, int64_t n, float alpha,
                        int has_alpha, float gamma, int has_ignore, float ignore, float ls,
                        float *loss_out, void *grad_out, int64_t *count, int nthreads);
double fk_softmax_labels(const void *x, int xcode, const int64_t *y, int64_t N, int64_t C,
                         int64_t inner, const float *alpha, float gamma, int64_t ignore, float ls,
                         float *loss_out, void *grad_out, int64_t *count, int64_t *nbad,
                         int nthreads);
double fk_softmax_soft_nbad(const void *x, int xcode, const void *t, int tcode, int64_t N,
                            int64_t C, int64_t inner, const float *alpha, float gamma, float ls,
                            float *loss_out, void *grad_out, int64_t *count, int64_t *nbad,
                            int nthreads);

typedef union {
    float f;
    uint32_t u;
} fkp_bits;

static float fkp_bf16_to_f32(uint16_t v) {
    fkp_bits b;
    b.u = ((uint32_t)v) << 16;
    return b.f;
}

static uint16_t fkp_f32_to_bf16(float f) { /* round to nearest even, NaN kept NaN (as the kernels) */
    fkp_bits b;
    b.f = f;
    uint32_t u = b.u;
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Number of values outside [0, 1] (NaN included) of a float32 array (the sigmoid's dense
 * targets); one read, on `nthreads` threads from 65,536 values (the kernels' threshold). */
static int64_t fkp_count_outside_unit(const float *t, int64_t n, int nthreads) {
    int64_t bad = 0;
    int nt = n >= 65536 && nthreads > 1 ? nthreads : 1;
#pragma omp parallel for num_threads(nt) reduction(+ : bad) schedule(static) if (nt > 1)
    for (int64_t i = 0; i < n; i++) bad += !(t[i] >= 0.0f && t[i] <= 1.0f);
    return bad;
}

/* The float32 loss of a float64 sum, as the general path's tensor ops round it (see the header). */
static PyObject *fkp_result(double total, int64_t count, int mean, int64_t nbad) {
    if (nbad) return Py_BuildValue("(ddL)", NAN, 0.0, (long long)nbad);
    float ft = (float)total;
    if (!mean) return Py_BuildValue("(ddL)", (double)ft, 0.0, 0LL);
    float den = (float)(double)(count > 1 ? count : 1);
    float loss = (float)((double)ft / (double)den);
    return Py_BuildValue("(ddL)", (double)loss, (double)den, 0LL);
}

/* Run `body` with the GIL released when the work is large enough for other Python threads to gain
 * from it (the kernels' own threshold for using several threads); on small tensors releasing and
 * taking back the GIL (a futex call when other threads exist) costs more than the pass itself. */
#define FKP_RELEASE_GIL_FROM 65536
#define FKP_RUN(work, body)                                   \
    do {                                                      \
        if ((work) >= FKP_RELEASE_GIL_FROM) {                 \
            Py_BEGIN_ALLOW_THREADS body; Py_END_ALLOW_THREADS \
        } else {                                              \
            body;                                             \
        }                                                     \
    } while (0)

/* Argument parsing: each helper returns 0 and sets a Python error on failure. */
static int fkp_ptr(PyObject *o, void **out) {
    if (o == Py_None) {
        *out = NULL;
        return 1;
    }
    *out = PyLong_AsVoidPtr(o);
    return !PyErr_Occurred();
}

static int fkp_i64(PyObject *o, int64_t *out) {
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) return 0;
    *out = (int64_t)v;
    return 1;
}

static int fkp_f64(PyObject *o, double *out) {
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) return 0;
    *out = v;
    return 1;
}

static int fkp_nargs(Py_ssize_t nargs, Py_ssize_t want, const char *name) {
    if (nargs == want) return 1;
    PyErr_Format(PyExc_TypeError, "%s takes %zd arguments, got %zd", name, want, nargs);
    return 0;
}

/* softmax_labels(x, xcode, y, n, c, inner, gamma, ignore, ls, grad, nthreads, mean) */
static PyObject *fkp_softmax_labels(PyObject *self, PyObject *const *a, Py_ssize_t nargs) {
    void *x, *y, *grad;
    int64_t xcode, n, c, inner, ignore, nthreads, mean, count = 0, nbad = 0;
    double gamma, ls;
    if (!fkp_nargs(nargs, 12, "softmax_labels") || !fkp_ptr(a[0], &x) || !fkp_i64(a[1], &xcode)
        || !fkp_ptr(a[2], &y) || !fkp_i64(a[3], &n) || !fkp_i64(a[4], &c) || !fkp_i64(a[5], &inner)
        || !fkp_f64(a[6], &gamma) || !fkp_i64(a[7], &ignore) || !fkp_f64(a[8], &ls)
        || !fkp_ptr(a[9], &grad) || !fkp_i64(a[10], &nthreads) || !fkp_i64(a[11], &mean))
        return NULL;
    double total = 0.0;
    if (n * c * inner > 0) {
        FKP_RUN(n * c * inner,
                total = fk_softmax_labels(x, (int)xcode, (const int64_t *)y, n, c, inner, NULL,
                                          (float)gamma, ignore, (float)ls, NULL, grad, &count,
                                          &nbad, (int)nthreads));
    }
    return fkp_result(total, count, (int)mean, nbad);
}

/* softmax_soft(x, xcode, t, tcode, n, c, inner, gamma, ls, grad, nthreads, mean, check) */
static PyObject *fkp_softmax_soft(PyObject *self, PyObject *const *a, Py_ssize_t nargs) {
    void *x, *t, *grad;
    int64_t xcode, tcode, n, c, inner, nthreads, mean, check, count = 0, nbad = 0;
    double gamma, ls;
    if (!fkp_nargs(nargs, 13, "softmax_soft") || !fkp_ptr(a[0], &x) || !fkp_i64(a[1], &xcode)
        || !fkp_ptr(a[2], &t) || !fkp_i64(a[3], &tcode) || !fkp_i64(a[4], &n) || !fkp_i64(a[5], &c)
        || !fkp_i64(a[6], &inner) || !fkp_f64(a[7], &gamma) || !fkp_f64(a[8], &ls)
        || !fkp_ptr(a[9], &grad) || !fkp_i64(a[10], &nthreads) || !fkp_i64(a[11], &mean)
        || !fkp_i64(a[12], &check))
        return NULL;
    double total = 0.0;
    int64_t numel = n * c * inner;
    if (numel > 0) /* the pass counts the targets outside [0, 1] as it reads them */
        FKP_RUN(numel, total = fk_softmax_soft_nbad(x, (int)xcode, t, (int)tcode, n, c, inner, NULL,
                                                    (float)gamma, (float)ls, NULL, grad, &count,
                                                    &nbad, (int)nthreads));
    if (!check) nbad = 0;
    return fkp_result(total, count, (int)mean, nbad);
}

/* sigmoid_dense(x, xcode, t, numel, alpha, has_alpha, gamma, ls, grad, nthreads, mean, check);
 * t is float32 */
static PyObject *fkp_sigmoid_dense(PyObject *self, PyObject *const *a, Py_ssize_t nargs) {
    void *x, *t, *grad;
    int64_t xcode, numel, has_alpha, nthreads, mean, check, count = 0, nbad = 0;
    double alpha, gamma, ls;
    if (!fkp_nargs(nargs, 12, "sigmoid_dense") || !fkp_ptr(a[0], &x) || !fkp_i64(a[1], &xcode)
        || !fkp_ptr(a[2], &t) || !fkp_i64(a[3], &numel) || !fkp_f64(a[4], &alpha)
        || !fkp_i64(a[5], &has_alpha) || !fkp_f64(a[6], &gamma) || !fkp_f64(a[7], &ls)
        || !fkp_ptr(a[8], &grad) || !fkp_i64(a[9], &nthreads) || !fkp_i64(a[10], &mean)
        || !fkp_i64(a[11], &check))
        return NULL;
    double total = 0.0;
    FKP_RUN(numel, {
        if (check) nbad = fkp_count_outside_unit((const float *)t, numel, (int)nthreads);
        if (!nbad && numel > 0)
            total = fk_sigmoid_dense(x, (int)xcode, (const float *)t, numel, (float)alpha,
                                     (int)has_alpha, (float)gamma, 0, 0.0f, (float)ls, NULL, grad,
                                     &count, (int)nthreads);
    });
    return fkp_result(total, count, (int)mean, nbad);
}

/* scale(g, code, numel, grad_out, den): g *= (float)(grad_out / den) in place (den 0: no division);
 * float32 (code 0) or bfloat16 (1) */
static PyObject *fkp_scale(PyObject *self, PyObject *const *a, Py_ssize_t nargs) {
    void *g;
    int64_t code, numel;
    double go, den;
    if (!fkp_nargs(nargs, 5, "scale") || !fkp_ptr(a[0], &g) || !fkp_i64(a[1], &code)
        || !fkp_i64(a[2], &numel) || !fkp_f64(a[3], &go) || !fkp_f64(a[4], &den))
        return NULL;
    float f = (float)(den != 0.0 ? go / den : go);
    if (code == 0) {
        float *p = (float *)g;
        for (int64_t i = 0; i < numel; i++) p[i] = p[i] * f;
    } else {
        uint16_t *p = (uint16_t *)g;
        for (int64_t i = 0; i < numel; i++) p[i] = fkp_f32_to_bf16(fkp_bf16_to_f32(p[i]) * f);
    }
    return PyFloat_FromDouble((double)f);
}

static PyMethodDef fkp_methods[] = {
    {"softmax_labels", (PyCFunction)(void (*)(void))fkp_softmax_labels, METH_FASTCALL,
     "softmax_labels(x, xcode, y, n, c, inner, gamma, ignore, ls, grad, nthreads, mean) -> (loss, den, nbad)"},
    {"softmax_soft", (PyCFunction)(void (*)(void))fkp_softmax_soft, METH_FASTCALL,
     "softmax_soft(x, xcode, t, tcode, n, c, inner, gamma, ls, grad, nthreads, mean, check) -> (loss, den, nbad)"},
    {"sigmoid_dense", (PyCFunction)(void (*)(void))fkp_sigmoid_dense, METH_FASTCALL,
     "sigmoid_dense(x, xcode, t, numel, alpha, has_alpha, gamma, ls, grad, nthreads, mean, check) -> (loss, den, nbad)"},
    {"scale", (PyCFunction)(void (*)(void))fkp_scale, METH_FASTCALL,
     "scale(g, code, numel, grad_out, den) -> f: g *= f = (float)(grad_out / den) in place"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fkp_module = {
    PyModuleDef_HEAD_INIT, "_focal_cpu",
    "focalkit's CPU kernels: the eager fast path's entry points (see _focal_cpu_py.c)", -1,
    fkp_methods,
};

PyMODINIT_FUNC PyInit__focal_cpu(void) { return PyModule_Create(&fkp_module); }
