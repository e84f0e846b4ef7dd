/* focalkit CPU kernels: the sigmoid passes over dense targets and class indices.
 *
 * Included twice by _focal_cpu_impl.h: with FK_FAM 0 (the plain focal loss, its block steps per
 * kind of gamma; the family's code is preprocessed away, so the plain passes are compiled as before
 * the family existed) and FK_FAM 1 (one block step of the family member, chosen per call, and the
 * per-position scores of class-index calls). FK_PASS(name) names each copy.
 */

/* ---------------------------------------------------------------- sigmoid, dense targets */
/* FK_FAM 0: the plain focal loss (its block steps; fam unused), 1: the family member's step. */
static double FK_PASS(sigmoid_dense_call)(const void *x, int xcode, const float *t, int64_t n, float alpha,
                                 int has_alpha, float gamma, int has_ignore, float ignore, float ls,
                                 float *loss_out, void *grad_out, int64_t *count, int nthreads,
                                 const fk_family *fam) {
#if FK_FAM
    const sig_fam_fn fstep = sig_fam_for(fam, gamma);
#else
    const sig_block_fn step = sig_block_for(gamma, 0), step_hard = sig_block_for(gamma, 1);
    (void)fam;
#endif
    const float a = has_alpha ? alpha : 0.5f;
    const float ascale = has_alpha ? 1.0f : 2.0f; /* alpha None: alpha_t = 2 * 0.5 = 1 exactly */
    const int64_t nblocks = (n + BLK - 1) / BLK;
    double total = 0.0; int64_t ctotal = 0;
    int nt = fk_threads_for(n, nthreads);
    double *part = (double *)malloc(sizeof(double) * (size_t)(nblocks + 1));
#pragma omp parallel num_threads(nt) reduction(+ : ctotal)
    {
        float xs[BLK], ts[BLK], vs[BLK], lb[BLK], gb[BLK];
#pragma omp for schedule(dynamic, 16)
        for (int64_t b = 0; b < nblocks; b++) {
            int64_t lo = b * BLK, m = lo + BLK < n ? BLK : n - lo;
            fk_load_block(x, xcode, lo, m, xs);
            int64_t cnt = 0, soft = 0;
            for (int64_t i = 0; i < m; i++) {
                float ti = t[lo + i];
                int valid = !(has_ignore && ti == ignore);
                float tt = valid ? ti * (1.0f - ls) + 0.5f * ls : 0.0f;
                vs[i] = valid ? 1.0f : 0.0f;
                ts[i] = tt;
                cnt += valid;
                soft += tt != 0.0f && tt != 1.0f;
            }
#if FK_FAM
            (void)soft;
            part[b] = fstep(xs, ts, vs, lb, gb, m, a, ascale, gamma, fam);
#else
            part[b] = (soft ? step : step_hard)(xs, ts, vs, lb, gb, m, a, ascale, gamma);
#endif
            ctotal += cnt;
            if (loss_out) memcpy(loss_out + lo, lb, (size_t)m * sizeof(float));
            if (grad_out) fk_store_block(grad_out, xcode, lo, m, gb);
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
 * built one block at a time in a stack buffer, never materialized. Labels outside [0, C] (C is
 * background) that are not `ignore` are counted in *nbad (and read as background).
 * scores (family calls only, or NULL): a float32 (N, inner) target value of each position's
 * labelled class (quality / varifocal: its IoU), used instead of 1 (and not smoothed). */
static double FK_PASS(sigmoid_labels_call)(const void *x, int xcode, const int64_t *y, int64_t N, int64_t C,
                                  int64_t inner, float alpha, int has_alpha, float gamma,
                                  int has_ignore, int64_t ignore, float ls, float *loss_out,
                                  void *grad_out, int64_t *count, int64_t *nbad, int nthreads,
                                  const float *scores, const fk_family *fam) {
#if FK_FAM
    const sig_fam_fn fstep = sig_fam_for(fam, gamma);
#else
    const sig_block_fn step = sig_block_for(gamma, ls == 0.0f);
    (void)fam; (void)scores;
#endif
    const float a = has_alpha ? alpha : 0.5f;
    const float ascale = has_alpha ? 1.0f : 2.0f;
    const float tpos = 1.0f - 0.5f * ls, tneg = 0.5f * ls;
    const int64_t n = N * C * inner;
    const int64_t nblocks = (n + BLK - 1) / BLK;
    double total = 0.0; int64_t ctotal = 0, bad = 0;
    int nt = fk_threads_for(n, nthreads);
    double *part = (double *)malloc(sizeof(double) * (size_t)(nblocks + 1));
    /* the labels, once each (not once per class): out of [0, C] and not ignored */
#pragma omp parallel for num_threads(nt) reduction(+ : bad) schedule(static)
    for (int64_t i = 0; i < N * inner; i++)
        bad += (y[i] < 0 || y[i] > C) && !(has_ignore && y[i] == ignore);
#pragma omp parallel num_threads(nt) reduction(+ : ctotal)
    {
        float xs[BLK], ts[BLK], vs[BLK], lb[BLK], gb[BLK];
#pragma omp for schedule(dynamic, 16)
        for (int64_t b = 0; b < nblocks; b++) {
            int64_t lo = b * BLK, m = lo + BLK < n ? BLK : n - lo;
            fk_load_block(x, xcode, lo, m, xs);
            int64_t cnt = 0;
            /* walk the block in runs of constant (n, c): element e = (nn * C + c) * inner + i */
            int64_t e = lo, k = 0;
#if FK_FAM
            while (scores && k < m) { /* per-position target scores */
                int64_t plane = e / inner, i = e % inner;
                int64_t nn = plane / C, c = plane % C;
                int64_t run = inner - i < m - k ? inner - i : m - k;
                const int64_t *yr = y + nn * inner + i;
                const float *sr = scores + nn * inner + i;
                for (int64_t j = 0; j < run; j++) {
                    int64_t yj = yr[j];
                    int valid = !(has_ignore && yj == ignore);
                    vs[k + j] = valid ? 1.0f : 0.0f;
                    ts[k + j] = valid && yj == c ? sr[j] * (1.0f - ls) + tneg : tneg;
                    cnt += valid;
                }
                k += run; e += run;
            }
#endif
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
#if FK_FAM
            part[b] = fstep(xs, ts, vs, lb, gb, m, a, ascale, gamma, fam);
#else
            part[b] = step(xs, ts, vs, lb, gb, m, a, ascale, gamma);
#endif
            ctotal += cnt;
            if (loss_out) memcpy(loss_out + lo, lb, (size_t)m * sizeof(float));
            if (grad_out) fk_store_block(grad_out, xcode, lo, m, gb);
        }
    }
    for (int64_t b = 0; b < nblocks; b++) total += part[b]; /* fixed order: deterministic */
    free(part);
    *count = ctotal;
    *nbad = bad;
    return total;
}
