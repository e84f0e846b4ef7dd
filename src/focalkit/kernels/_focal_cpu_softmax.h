/* ---------------------------------------------------------------- softmax */
/* Log-sum-exp, per position: with m = max_c x_c, z_c = x_c - m (exact), the terms e_c = exp(z_c)
 * are split into the maximal ones (z_c == 0, counted: neq) and the tail (their sum), and
 *     log p_c = z_c - log1p(tail + (neq - 1)),   p_c = e_c / (neq + tail).
 * Nothing of size |m| is added back, so log p and p keep float32's relative accuracy at any
 * offset of the logits (1e4 + randn included), and log p of a confident class is -log1p(tail), not
 * a rounded log(1 + tail). The target class's 1 - p is -expm1(log p) (fk_one_minus_p), and its
 * gradient component coef * (1 - p_y) uses it, not 1 - p_y by subtraction.
 *
 * Non-finite logits: NaN, +inf, or all -inf in a position give NaN for its loss and gradient
 * (as F.cross_entropy), a -inf logit with a positive target weight gives +inf; a -inf logit of a
 * class with zero target weight (a masked class) leaves the loss and the gradient finite. Ignored
 * positions give exactly 0 whatever their logits. */
#define TILE 256
/* Sums over the classes are float32 in blocks of FK_SUMBLK classes (per position of a map) or of
 * 8 * FK_SUMBLK (along a contiguous row, where each vector lane then adds 16-32 terms, and the
 * block's horizontal sum is paid once per 256 classes, not per 32), added up in float64: adding
 * many small terms one by one (label smoothing adds ls / C about C times) would drift by up to
 * C / lanes float32 roundings, and by a different amount for each vector width. */
#define FK_SUMBLK 32

static inline void fk_flush2(double *restrict a, float *restrict fa, double *restrict b,
                             float *restrict fb, int64_t n) {
    for (int64_t k = 0; k < n; k++) {
        a[k] += fa[k]; b[k] += fb[k];
        fa[k] = 0.0f; fb[k] = 0.0f;
    }
}

/* The targets of a softmax call: class indices y (int64, `ignore` drops a position) or class
 * probabilities t of the logits' layout (float32, tcode 0, or bfloat16, tcode 1; y is NULL). */
typedef struct {
    const int64_t *y;
    int64_t ignore;
    const void *t;
    int tcode;
} fk_softmax_targets;

/* Classes [c0, c1) of one row with the full target distribution: w_c h_c into wh, and the block's
 * sums of w_c h_c and of the loss terms w_c om_c^gamma log p_c into sl[0], sl[1]. Always inlined with
 * a constant gkind, so that each copy of the loop vectorizes. */
FK_ALWAYS_INLINE void smooth_row_block(const float *restrict xs, const float *restrict ex,
                                       const float *restrict tr, const float *restrict alpha,
                                       float *restrict wh, int64_t c0, int64_t c1, float mx,
                                       float lse, float inv, float lsy, float lsc, float gamma,
                                       int gkind, const float *restrict pw, float *restrict sl) {
    float sb = 0.0f, lb = 0.0f;
    FK_SIMD_SUM(sb, lb)
    for (int64_t c = c0; c < c1; c++) {
        float lp = (xs[c] - mx) - lse;
        float p = ex[c] * inv;
        float om = fk_one_minus_p(lp, p);
        float w = alpha[c] * (tr[c] * lsy + lsc);
        /* gkind 4: a piecewise gamma at p_c (the family), pw = its thresholds and values */
        float g = gkind == 4 ? fk_pw_gamma(pw, pw + FK_MAX_TH, p) : gamma;
        float mod = gkind == 4 ? fk_pow_g(om, fk_log(om), g) : fk_pow_mod(om, gamma, gkind);
        float h = fk_softmax_h(lp, p, om, mod, g, gkind == 4 ? 3 : gkind);
        float whc = w > 0.0f ? w * h : 0.0f;
        lb += w > 0.0f ? w * mod * lp : 0.0f; /* 0 log 0 := 0 for a zero weight */
        wh[c] = whc;
        sb += whc;
    }
    sl[0] = sb;
    sl[1] = lb;
}

/* A piecewise gamma of the family into pw (thresholds, then values): 1, or 0 for a float gamma.
 * The passes then use gkind 4 (gamma per class), else the plain kind of the float gamma. */
static int fk_family_pw(const fk_family *fam, float *pw) {
    for (int k = 0; k <= 2 * FK_MAX_TH; k++) pw[k] = 0.0f;
    if (fam == NULL || !(fam->th[0] < INFINITY)) return 0;
    for (int k = 0; k < FK_MAX_TH; k++) pw[k] = fam->th[k];
    for (int k = 0; k <= FK_MAX_TH; k++) pw[FK_MAX_TH + k] = fam->gv[k];
    return 1;
}

/* The Poly-1 term of one position with the full target distribution t_c (smoothed): with
 * p_t = sum_c t_c p_c and 1 - p_t = sum_c t_c (1 - p_c) + (1 - sum_c t_c) (no cancellation when
 * the targets sum to 1), loss += eps (1 - p_t)^(g_t + 1) and, with K = eps (g_t + 1)(1 - p_t)^g_t,
 * dloss/dx_j += K p_j (p_t - t_j): folded into the gradient's w_j h_j - p_j S as
 * wh_j -= K t_j p_j and S -= K p_t. */
static void softmax_poly_row(const float *xs, const float *ex, const float *tr, int64_t C, float mx,
                             float lse, float inv, float lsy, float lsc, float eps, const float *pw,
                             int pwise, float gamma, float *wh, float *ssum, float *l) {
    double omt_d = 0.0, pt_d = 0.0, ts_d = 0.0;
    for (int64_t c = 0; c < C; c++) {
        float lp = (xs[c] - mx) - lse, p = ex[c] * inv, tc = tr[c] * lsy + lsc;
        omt_d += tc * fk_one_minus_p(lp, p);
        pt_d += tc * p;
        ts_d += tc;
    }
    float omt = (float)(omt_d + (1.0 - ts_d)), pt = (float)pt_d;
    omt = omt < 0.0f ? 0.0f : omt; /* rounding below 0; NaN stays NaN */
    float g = pwise ? fk_pw_gamma(pw, pw + FK_MAX_TH, pt) : gamma;
    float mod = fk_pow_g(omt, fk_log(omt), g);
    float K = eps * (g + 1.0f) * mod;
    *l += eps * (mod * omt);
    for (int64_t c = 0; c < C; c++) wh[c] -= K * (tr[c] * lsy + lsc) * (ex[c] * inv);
    *ssum -= K * pt;
}

/* softmax_poly_row for a tile of B positions (class c of position k at c * TILE + k); ignored
 * positions (yy < 0) get nothing. acc1 / acc2 are scratch. */
static void softmax_poly_tile(const float *xt, const float *ex, const float *tt, const float *mx,
                              const float *lse, const float *inv, const int64_t *yy, int64_t C,
                              int64_t B, float lsy, float lsc, float eps, const float *pw,
                              int pwise, float gamma, float *wh, float *ssum, float *lsum,
                              double *acc1, double *acc2) {
    double ts[TILE];
    for (int64_t k = 0; k < B; k++) { acc1[k] = 0.0; acc2[k] = 0.0; ts[k] = 0.0; }
    for (int64_t c = 0; c < C; c++) {
        for (int64_t k = 0; k < B; k++) {
            int64_t i = c * TILE + k;
            float lp = (xt[i] - mx[k]) - lse[k], p = ex[i] * inv[k], tc = tt[i] * lsy + lsc;
            acc1[k] += tc * fk_one_minus_p(lp, p);
            acc2[k] += tc * p;
            ts[k] += tc;
        }
    }
    float K[TILE];
    for (int64_t k = 0; k < B; k++) {
        float omt = (float)(acc1[k] + (1.0 - ts[k])), pt = (float)acc2[k];
        omt = omt < 0.0f ? 0.0f : omt;
        float g = pwise ? fk_pw_gamma(pw, pw + FK_MAX_TH, pt) : gamma;
        float mod = fk_pow_g(omt, fk_log(omt), g);
        K[k] = yy[k] < 0 ? 0.0f : eps * (g + 1.0f) * mod;
        lsum[k] += yy[k] < 0 ? 0.0f : eps * (mod * omt);
        ssum[k] -= K[k] * pt;
    }
    for (int64_t c = 0; c < C; c++)
        for (int64_t k = 0; k < B; k++) {
            int64_t i = c * TILE + k;
            wh[i] -= K[k] * (tt[i] * lsy + lsc) * (ex[i] * inv[k]);
        }
}

/* One class c of a tile of B positions with label smoothing or soft targets: the loss terms and
 * w_c h_c, w_c = alpha_c (t_c (1 - ls) + ls / C) (0 at ignored positions, yy < 0). Always inlined
 * with a constant gkind, so that each copy of the loop vectorizes. */
FK_ALWAYS_INLINE void smooth_tile_class(const float *restrict xr, const float *restrict er,
                                        const float *restrict tr, const float *restrict mx,
                                        const float *restrict lse, const float *restrict inv,
                                        const int64_t *restrict yy, float ac, float lsy, float lsc,
                                        float gamma, int gkind, const float *restrict pw,
                                        float *restrict lsum,
                                        float *restrict ssum, float *restrict whr, int64_t B) {
    for (int64_t k = 0; k < B; k++) {
        float lp = (xr[k] - mx[k]) - lse[k];
        float p = er[k] * inv[k];
        float om = fk_one_minus_p(lp, p);
        float w = yy[k] < 0 ? 0.0f : ac * (tr[k] * lsy + lsc);
        float g = gkind == 4 ? fk_pw_gamma(pw, pw + FK_MAX_TH, p) : gamma;
        float mod = gkind == 4 ? fk_pow_g(om, fk_log(om), g) : fk_pow_mod(om, gamma, gkind);
        float h = fk_softmax_h(lp, p, om, mod, g, gkind == 4 ? 3 : gkind);
        float whc = w > 0.0f ? w * h : 0.0f;
        lsum[k] -= w > 0.0f ? w * mod * lp : 0.0f; /* 0 log 0 := 0 for a zero weight */
        ssum[k] += whc;
        whr[k] = whc;
    }
}


/* The passes: a plain copy and a family copy (see _focal_cpu_softmax_pass.h). */
/* FK_PASS2 / FK_PASS3: defined in _focal_cpu_impl.h */
#define FK_FAM 0
#define FK_PASS(name) FK_PASS2(name, plain, FK_ISA)
#include "_focal_cpu_softmax_pass.h"
#undef FK_FAM
#undef FK_PASS
#define FK_FAM 1
#define FK_PASS(name) FK_PASS2(name, family, FK_ISA)
#include "_focal_cpu_softmax_pass.h"
#undef FK_FAM
#undef FK_PASS
#define softmax_rows_plain FK_PASS2(softmax_rows, plain, FK_ISA)
#define softmax_maps_plain FK_PASS2(softmax_maps, plain, FK_ISA)
#define softmax_rows_family FK_PASS2(softmax_rows, family, FK_ISA)
#define softmax_maps_family FK_PASS2(softmax_maps, family, FK_ISA)

static double softmax_call(const void *x, int xcode, const fk_softmax_targets *tg, int64_t N,
                           int64_t C, int64_t inner, const float *alpha, float gamma, float ls,
                           float *loss_out, void *grad_out, int64_t *count, int64_t *nbad,
                           int nthreads, const fk_family *fam) {
    /* alpha always present in the loops: a vectorized `alpha ? alpha[c] : 1` becomes a masked
     * load from NULL, which AMD CPUs execute through a slow microcode assist */
    float *ones = NULL;
    if (!alpha) {
        ones = (float *)malloc(sizeof(float) * (size_t)(C + 1));
        for (int64_t c = 0; c < C; c++) ones[c] = 1.0f;
        alpha = ones;
    }
    double r;
    if (fam == NULL)
        r = inner == 1
            ? softmax_rows_plain(x, xcode, tg, N, C, alpha, gamma, ls, loss_out, grad_out, count,
                                 nbad, nthreads, NULL)
            : softmax_maps_plain(x, xcode, tg, N, C, inner, alpha, gamma, ls, loss_out, grad_out,
                                 count, nbad, nthreads, NULL);
    else
        r = inner == 1
            ? softmax_rows_family(x, xcode, tg, N, C, alpha, gamma, ls, loss_out, grad_out, count,
                                  nbad, nthreads, fam)
            : softmax_maps_family(x, xcode, tg, N, C, inner, alpha, gamma, ls, loss_out, grad_out,
                                  count, nbad, nthreads, fam);
    free(ones);
    return r;
}

/* Class indices y (N, inner) int64; labels outside [0, C) that are not `ignore` are counted in
 * *nbad and treated as ignored. */
double FK_FN(fk_softmax_labels)(const void *x, int xcode, const int64_t *y, int64_t N, int64_t C,
                                int64_t inner, const float *alpha, float gamma, int64_t ignore,
                                float ls, float *loss_out, void *grad_out, int64_t *count,
                                int64_t *nbad, int nthreads) {
    fk_softmax_targets tg = {y, ignore, NULL, 0};
    return softmax_call(x, xcode, &tg, N, C, inner, alpha, gamma, ls, loss_out, grad_out, count,
                        nbad, nthreads, NULL);
}

double FK_FN(fk_softmax_labels_family)(const void *x, int xcode, const int64_t *y, int64_t N,
                                       int64_t C, int64_t inner, const float *alpha, float gamma,
                                       int64_t ignore, float ls, float *loss_out, void *grad_out,
                                       int64_t *count, int64_t *nbad, int nthreads,
                                       const fk_family *fam) {
    fk_softmax_targets tg = {y, ignore, NULL, 0};
    return softmax_call(x, xcode, &tg, N, C, inner, alpha, gamma, ls, loss_out, grad_out, count,
                        nbad, nthreads, fam);
}

/* Class probabilities t of x's layout (N, C, inner), float32 (tcode 0) or bfloat16 (tcode 1);
 * label smoothing gives t (1 - ls) + ls / C, as F.cross_entropy. Every position counts. */
double FK_FN(fk_softmax_soft)(const void *x, int xcode, const void *t, int tcode, int64_t N,
                              int64_t C, int64_t inner, const float *alpha, float gamma, float ls,
                              float *loss_out, void *grad_out, int64_t *count, int nthreads) {
    fk_softmax_targets tg = {NULL, 0, t, tcode};
    int64_t nbad = 0;
    return softmax_call(x, xcode, &tg, N, C, inner, alpha, gamma, ls, loss_out, grad_out, count,
                        &nbad, nthreads, NULL);
}

/* fk_softmax_soft, and *nbad = the number of targets outside [0, 1] (NaN included), counted in
 * the same pass (the losses' validate_args check, without a second read of the targets). */
double FK_FN(fk_softmax_soft_nbad)(const void *x, int xcode, const void *t, int tcode, int64_t N,
                                   int64_t C, int64_t inner, const float *alpha, float gamma,
                                   float ls, float *loss_out, void *grad_out, int64_t *count,
                                   int64_t *nbad, int nthreads) {
    fk_softmax_targets tg = {NULL, 0, t, tcode};
    return softmax_call(x, xcode, &tg, N, C, inner, alpha, gamma, ls, loss_out, grad_out, count,
                        nbad, nthreads, NULL);
}

double FK_FN(fk_softmax_soft_family)(const void *x, int xcode, const void *t, int tcode,
                                     int64_t N, int64_t C, int64_t inner, const float *alpha,
                                     float gamma, float ls, float *loss_out, void *grad_out,
                                     int64_t *count, int nthreads, const fk_family *fam) {
    fk_softmax_targets tg = {NULL, 0, t, tcode};
    int64_t nbad = 0;
    return softmax_call(x, xcode, &tg, N, C, inner, alpha, gamma, ls, loss_out, grad_out, count,
                        &nbad, nthreads, fam);
}
