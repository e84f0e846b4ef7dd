/* focalkit CPU kernels: the softmax passes over (N, C) rows and (N, C, inner) maps.
 *
 * Included twice by _focal_cpu_softmax.h: with FK_FAM 0 (the plain focal loss: the family's code is
 * preprocessed away, so the plain passes are compiled exactly as before the family existed) and
 * with FK_FAM 1 (the family: a piecewise gamma, gkind 4, and the Poly-1 term). FK_PASS(name) gives
 * each copy its own name (name_plain_<isa> / name_family_<isa>).
 */

/* (N, C) rows: the classes are contiguous, so each row is one vectorized pass per step. alpha is
 * never NULL here (softmax_call passes ones). The full-distribution loop (label smoothing, soft
 * targets) reads the row's target distribution from `tr`: the soft targets themselves (float32,
 * read in place), their float32 copy (bfloat16), or a one-hot row of the label, kept zero between
 * rows; w_c = alpha_c (tr_c (1 - ls) + ls / C). */
static double FK_PASS(softmax_rows)(const void *x, int xcode, const fk_softmax_targets *tg, int64_t N,
                           int64_t C, const float *alpha, float gamma, float ls, float *loss_out,
                           void *grad_out, int64_t *count, int64_t *nbad, int nthreads,
                           const fk_family *fam) {
#if FK_FAM
    float pw[2 * FK_MAX_TH + 1];
    const int gkind = fk_family_pw(fam, pw) ? 4 : fk_gamma_kind(gamma);
    const float eps = fam->epsilon;
#else
    const float *pw = NULL; /* unused: the plain kinds of gamma */
    const int gkind = fk_gamma_kind(gamma);
    (void)fam;
#endif
    const float lsc = ls / (float)C, lsy = 1.0f - ls;
    const int soft = tg->y == NULL;
    double total = 0.0; int64_t ctotal = 0, bad = 0;
    int nt = fk_threads_for(N * C, nthreads);
    double *part = (double *)malloc(sizeof(double) * (size_t)(N + 1));
#pragma omp parallel num_threads(nt) reduction(+ : ctotal, bad)
    {
        /* float32 rows are read and written in place; bfloat16 ones through xbuf / gbuf */
        float *xbuf = (float *)malloc(sizeof(float) * (size_t)(5 * C + 1));
        float *ex = xbuf + C, *gbuf = xbuf + 2 * C, *wh = xbuf + 3 * C, *tbuf = xbuf + 4 * C;
        for (int64_t c = 0; c < C; c++) tbuf[c] = 0.0f;
#pragma omp for schedule(dynamic, 32)
        for (int64_t n = 0; n < N; n++) {
            const float *xs = xbuf;
            if (xcode == 0) xs = (const float *)x + n * C;
            else fk_load_block(x, xcode, n * C, C, xbuf);
            float *gs = grad_out && xcode == 0 ? (float *)grad_out + n * C : gbuf;
            float mx = xs[0];
            FK_SIMD_MAX(mx)
            for (int64_t c = 0; c < C; c++) mx = xs[c] > mx ? xs[c] : mx;
            double tail_d = 0.0, neq_d = 0.0; /* varied terms: longer blocks */
            for (int64_t c0 = 0; c0 < C; c0 += 8 * FK_SUMBLK) {
                const int64_t c1 = c0 + 8 * FK_SUMBLK < C ? c0 + 8 * FK_SUMBLK : C;
                float tb = 0.0f, nb = 0.0f;
                FK_SIMD_SUM(tb, nb)
                for (int64_t c = c0; c < c1; c++) {
                    float z = xs[c] - mx;
                    float e = fk_exp_neg(z);
                    ex[c] = e;
                    tb += z == 0.0f ? 0.0f : e;
                    nb += z == 0.0f ? 1.0f : 0.0f;
                }
                tail_d += tb; neq_d += nb;
            }
            const float tail = (float)tail_d, neq = (float)neq_d;
            const float lse = fk_log1p(tail + (neq - 1.0f)); /* neq - 1 first: exact */
            const float inv = 1.0f / (neq + tail);
            int64_t yk = -1;
            int valid = 1;
            if (!soft) {
                yk = tg->y[n];
                int inrange = yk >= 0 && yk < C;
                valid = yk != tg->ignore;
                bad += valid && !inrange;
                valid = valid && inrange;
            }
            ctotal += valid;
            float l = 0.0f;
            if (!valid) {
                for (int64_t c = 0; c < C; c++) gs[c] = 0.0f;
#if FK_FAM
            } else if (!soft && ls == 0.0f) { /* the family: piecewise gamma at p_y, Poly-1 */
                float lp = (xs[yk] - mx) - lse;
                float py = ex[yk] * inv;
                float om = fk_one_minus_p(lp, py);
                float w = alpha[yk];
                float g = gkind == 4 ? fk_pw_gamma(pw, pw + FK_MAX_TH, py) : gamma;
                float mod = gkind == 4 ? fk_pow_g(om, fk_log(om), g) : fk_pow_mod(om, gamma, gkind);
                /* eps om^(g+1) adds -eps (g + 1) om^g p_y to coef (the gradient's [j == y] - p_j) */
                float coef = w * fk_softmax_h(lp, py, om, mod, g, 3) - eps * (g + 1.0f) * mod * py;
                l = -w * mod * lp + eps * (mod * om);
                for (int64_t c = 0; c < C; c++) gs[c] = -coef * (ex[c] * inv);
                gs[yk] = coef * om;
#else
            } else if (!soft && ls == 0.0f) {
                float lp = (xs[yk] - mx) - lse;
                float py = ex[yk] * inv;
                float om = fk_one_minus_p(lp, py);
                float w = alpha[yk];
                float mod = fk_pow_mod(om, gamma, gkind);
                float coef = w * fk_softmax_h(lp, py, om, mod, gamma, gkind);
                l = -w * mod * lp;
                for (int64_t c = 0; c < C; c++) gs[c] = -coef * (ex[c] * inv);
                gs[yk] = coef * om; /* coef (1 - p_y), 1 - p_y without cancellation */
#endif
            } else {
                const float *tr = tbuf;
                if (!soft) tbuf[yk] = 1.0f;
                else if (tg->tcode == 0) tr = (const float *)tg->t + n * C;
                else fk_load_block(tg->t, tg->tcode, n * C, C, tbuf);
                if (soft) bad += fk_count_outside_unit(tr, C); /* class probabilities in [0, 1] */
                double ssum_d = 0.0, lsum_d = 0.0;
                for (int64_t c0 = 0; c0 < C; c0 += 8 * FK_SUMBLK) {
                    const int64_t c1 = c0 + 8 * FK_SUMBLK < C ? c0 + 8 * FK_SUMBLK : C;
                    float sl[2];
                    switch (gkind) { /* one vectorized copy of the loop per kind of gamma */
                    case 0: smooth_row_block(xs, ex, tr, alpha, wh, c0, c1, mx, lse, inv, lsy, lsc, gamma, 0, pw, sl); break;
                    case 1: smooth_row_block(xs, ex, tr, alpha, wh, c0, c1, mx, lse, inv, lsy, lsc, gamma, 1, pw, sl); break;
                    case 2: smooth_row_block(xs, ex, tr, alpha, wh, c0, c1, mx, lse, inv, lsy, lsc, gamma, 2, pw, sl); break;
#if FK_FAM
                    case 4: smooth_row_block(xs, ex, tr, alpha, wh, c0, c1, mx, lse, inv, lsy, lsc, gamma, 4, pw, sl); break;
#endif
                    default: smooth_row_block(xs, ex, tr, alpha, wh, c0, c1, mx, lse, inv, lsy, lsc, gamma, 3, pw, sl);
                    }
                    ssum_d += sl[0]; lsum_d += sl[1];
                }
#if FK_FAM
                float ssum = (float)ssum_d;
                l = (float)-lsum_d;
                if (eps != 0.0f)
                    softmax_poly_row(xs, ex, tr, C, mx, lse, inv, lsy, lsc, eps, pw, gkind == 4,
                                     gamma, wh, &ssum, &l);
                if (!soft) tbuf[yk] = 0.0f;
#else
                if (!soft) tbuf[yk] = 0.0f;
                const float ssum = (float)ssum_d;
                l = (float)-lsum_d;
#endif
                for (int64_t c = 0; c < C; c++) gs[c] = wh[c] - (ex[c] * inv) * ssum;
            }
            part[n] = l;
            if (loss_out) loss_out[n] = l;
            if (grad_out && xcode != 0) fk_store_block(grad_out, xcode, n * C, C, gs);
        }
        free(xbuf);
    }
    for (int64_t n = 0; n < N; n++) total += part[n];
    free(part);
    *count = ctotal;
    *nbad = bad;
    return total;
}


/* (N, C, inner) maps: tiles of up to TILE positions along inner, so that the C strided rows of a
 * tile stay in cache. */
static double FK_PASS(softmax_maps)(const void *x, int xcode, const fk_softmax_targets *tg, int64_t N,
                           int64_t C, int64_t inner, const float *alpha, float gamma, float ls,
                           float *loss_out, void *grad_out, int64_t *count, int64_t *nbad,
                           int nthreads, const fk_family *fam) {
#if FK_FAM
    float pw[2 * FK_MAX_TH + 1];
    const int gkind = fk_family_pw(fam, pw) ? 4 : fk_gamma_kind(gamma);
    const float eps = fam->epsilon;
#else
    const float *pw = NULL; /* unused: the plain kinds of gamma */
    const int gkind = fk_gamma_kind(gamma);
    (void)fam;
#endif
    const int soft = tg->y == NULL, full = soft || ls > 0.0f;
    const int64_t ntile = (inner + TILE - 1) / TILE;
    const int64_t units = N * ntile;
    double total = 0.0; int64_t ctotal = 0, bad = 0;
    int nt = fk_threads_for(N * C * inner, nthreads);
    const float lsc = ls / (float)C, lsy = 1.0f - ls;
    double *part = (double *)malloc(sizeof(double) * (size_t)(units + 1));
#pragma omp parallel num_threads(nt) reduction(+ : ctotal, bad)
    {
        float mx[TILE], tail[TILE], neq[TILE], lse[TILE], inv[TILE], coef[TILE], cy[TILE];
        float ssum[TILE], lsum[TILE];
        double acc1[TILE], acc2[TILE]; /* the float sums above, flushed every FK_SUMBLK classes */
        int64_t yy[TILE];
        /* the tile's logits as float32 (xt) and exp(x - max) (ex), reused by every step: one
         * exp per element, not two; gt holds the gradient before a bfloat16 store; with the full
         * distribution, wh holds w_c h_c and tt the targets (soft, or one-hot rows, kept zero) */
        float *xt = (float *)malloc(sizeof(float) * (size_t)C * TILE * (full ? 5 : 3));
        float *ex = xt + C * TILE, *gt = ex + C * TILE;
        float *wh = full ? gt + C * TILE : NULL, *tt = full ? wh + C * TILE : NULL;
        if (full) for (int64_t i = 0; i < C * TILE; i++) tt[i] = 0.0f;
#pragma omp for schedule(dynamic, 4)
        for (int64_t u = 0; u < units; u++) {
            int64_t nn = u / ntile, tile = u % ntile;
            int64_t i0 = tile * TILE, i1 = i0 + TILE < inner ? i0 + TILE : inner;
            int64_t B = i1 - i0;
            int64_t xb = nn * C * inner + i0; /* element (nn, c, i0 + k) at xb + c * inner + k */
            for (int64_t c = 0; c < C; c++) fk_load_block(x, xcode, xb + c * inner, B, xt + c * TILE);
            for (int64_t k = 0; k < B; k++) {
                mx[k] = xt[k]; tail[k] = 0.0f; neq[k] = 0.0f; acc1[k] = 0.0; acc2[k] = 0.0;
            }
            for (int64_t c = 1; c < C; c++) {
                const float *xr = xt + c * TILE;
                for (int64_t k = 0; k < B; k++) mx[k] = xr[k] > mx[k] ? xr[k] : mx[k];
            }
            for (int64_t c = 0; c < C; c++) {
                const float *xr = xt + c * TILE;
                float *er = ex + c * TILE;
                for (int64_t k = 0; k < B; k++) {
                    float z = xr[k] - mx[k];
                    float e = fk_exp_neg(z);
                    er[k] = e;
                    tail[k] += z == 0.0f ? 0.0f : e;
                    neq[k] += z == 0.0f ? 1.0f : 0.0f;
                }
                if (c % FK_SUMBLK == FK_SUMBLK - 1 || c == C - 1) fk_flush2(acc1, tail, acc2, neq, B);
            }
            for (int64_t k = 0; k < B; k++) {
                tail[k] = (float)acc1[k]; neq[k] = (float)acc2[k];
                lse[k] = fk_log1p(tail[k] + (neq[k] - 1.0f));
                inv[k] = 1.0f / (neq[k] + tail[k]);
            }
            double s = 0.0; int64_t cnt = 0;
            if (soft) {
                for (int64_t k = 0; k < B; k++) yy[k] = 0;
                cnt = B;
            } else {
                const int64_t *yr = tg->y + nn * inner + i0;
                for (int64_t k = 0; k < B; k++) {
                    int64_t yk = yr[k];
                    int valid = yk != tg->ignore;
                    int inrange = yk >= 0 && yk < C;
                    bad += valid && !inrange; /* out-of-range labels: reported, treated as ignored */
                    valid = valid && inrange;
                    yy[k] = valid ? yk : -1;
                    cnt += valid;
                }
            }
#if FK_FAM
            if (!full) { /* the family: piecewise gamma at p_y, Poly-1 (as softmax_rows) */
                for (int64_t k = 0; k < B; k++) {
                    coef[k] = 0.0f; cy[k] = 0.0f;
                    int64_t yk = yy[k];
                    if (yk < 0) { if (loss_out) loss_out[nn * inner + i0 + k] = 0.0f; continue; }
                    float lp = (xt[yk * TILE + k] - mx[k]) - lse[k];
                    float py = ex[yk * TILE + k] * inv[k];
                    float om = fk_one_minus_p(lp, py);
                    float w = alpha[yk];
                    float g = gkind == 4 ? fk_pw_gamma(pw, pw + FK_MAX_TH, py) : gamma;
                    float mod = gkind == 4 ? fk_pow_g(om, fk_log(om), g) : fk_pow_mod(om, gamma, gkind);
                    float l = -w * mod * lp + eps * (mod * om);
                    coef[k] = w * fk_softmax_h(lp, py, om, mod, g, 3) - eps * (g + 1.0f) * mod * py;
                    cy[k] = coef[k] * om;
                    s += l;
                    if (loss_out) loss_out[nn * inner + i0 + k] = l;
                }
            }
#else
            if (!full) {
                /* Hard labels: only the target class enters the loss. */
                for (int64_t k = 0; k < B; k++) {
                    coef[k] = 0.0f; cy[k] = 0.0f;
                    int64_t yk = yy[k];
                    if (yk < 0) { if (loss_out) loss_out[nn * inner + i0 + k] = 0.0f; continue; }
                    float lp = (xt[yk * TILE + k] - mx[k]) - lse[k];
                    float py = ex[yk * TILE + k] * inv[k];
                    float om = fk_one_minus_p(lp, py);
                    float w = alpha[yk];
                    float mod = fk_pow_mod(om, gamma, gkind);
                    float l = -w * mod * lp;
                    coef[k] = w * fk_softmax_h(lp, py, om, mod, gamma, gkind);
                    cy[k] = coef[k] * om;
                    s += l;
                    if (loss_out) loss_out[nn * inner + i0 + k] = l;
                }
            }
#endif
            if (!full) {
                if (grad_out) {
                    /* dloss/dx_j = coef * ([j == y] - p_j); ignored positions exactly 0 */
                    for (int64_t c = 0; c < C; c++) {
                        int64_t off = xb + c * inner;
                        const float *er = ex + c * TILE;
                        float *gr = xcode == 0 ? (float *)grad_out + off : gt;
                        for (int64_t k = 0; k < B; k++) {
                            float g = yy[k] == c ? cy[k] : -coef[k] * (er[k] * inv[k]);
                            gr[k] = yy[k] < 0 ? 0.0f : g;
                        }
                        if (xcode != 0) fk_store_block(grad_out, xcode, off, B, gt);
                    }
                }
            } else {
                /* Label smoothing or soft targets: every class has weight w_c = alpha_c t_c. */
                if (soft) {
                    for (int64_t c = 0; c < C; c++) {
                        fk_load_block(tg->t, tg->tcode, xb + c * inner, B, tt + c * TILE);
                        bad += fk_count_outside_unit(tt + c * TILE, B); /* in [0, 1] */
                    }
                } else {
                    for (int64_t k = 0; k < B; k++) if (yy[k] >= 0) tt[yy[k] * TILE + k] = 1.0f;
                }
                for (int64_t k = 0; k < B; k++) {
                    ssum[k] = 0.0f; lsum[k] = 0.0f; acc1[k] = 0.0; acc2[k] = 0.0;
                }
                for (int64_t c = 0; c < C; c++) {
                    const float ac = alpha[c];
                    const float *xr = xt + c * TILE, *er = ex + c * TILE, *tr = tt + c * TILE;
                    float *whr = wh + c * TILE;
                    switch (gkind) { /* one vectorized copy of the loop per kind of gamma */
                    case 0: smooth_tile_class(xr, er, tr, mx, lse, inv, yy, ac, lsy, lsc, gamma, 0, pw, lsum, ssum, whr, B); break;
                    case 1: smooth_tile_class(xr, er, tr, mx, lse, inv, yy, ac, lsy, lsc, gamma, 1, pw, lsum, ssum, whr, B); break;
                    case 2: smooth_tile_class(xr, er, tr, mx, lse, inv, yy, ac, lsy, lsc, gamma, 2, pw, lsum, ssum, whr, B); break;
#if FK_FAM
                    case 4: smooth_tile_class(xr, er, tr, mx, lse, inv, yy, ac, lsy, lsc, gamma, 4, pw, lsum, ssum, whr, B); break;
#endif
                    default: smooth_tile_class(xr, er, tr, mx, lse, inv, yy, ac, lsy, lsc, gamma, 3, pw, lsum, ssum, whr, B);
                    }
                    if (c % FK_SUMBLK == FK_SUMBLK - 1 || c == C - 1) fk_flush2(acc1, ssum, acc2, lsum, B);
                }
#if FK_FAM
                for (int64_t k = 0; k < B; k++) {
                    ssum[k] = (float)acc1[k]; lsum[k] = (float)acc2[k];
                }
                if (eps != 0.0f)
                    softmax_poly_tile(xt, ex, tt, mx, lse, inv, yy, C, B, lsy, lsc, eps, pw,
                                      gkind == 4, gamma, wh, ssum, lsum, acc1, acc2);
                if (!soft) {
                    for (int64_t k = 0; k < B; k++) if (yy[k] >= 0) tt[yy[k] * TILE + k] = 0.0f;
                }
                for (int64_t k = 0; k < B; k++) {
                    s += lsum[k];
#else
                if (!soft) {
                    for (int64_t k = 0; k < B; k++) if (yy[k] >= 0) tt[yy[k] * TILE + k] = 0.0f;
                }
                for (int64_t k = 0; k < B; k++) {
                    ssum[k] = (float)acc1[k]; lsum[k] = (float)acc2[k];
                    s += lsum[k];
#endif
                    if (loss_out) loss_out[nn * inner + i0 + k] = lsum[k];
                }
                if (grad_out) {
                    for (int64_t c = 0; c < C; c++) {
                        int64_t off = xb + c * inner;
                        const float *er = ex + c * TILE;
                        float *gr = xcode == 0 ? (float *)grad_out + off : gt;
                        for (int64_t k = 0; k < B; k++) {
                            float g = wh[c * TILE + k] - (er[k] * inv[k]) * ssum[k];
                            gr[k] = yy[k] < 0 ? 0.0f : g;
                        }
                        if (xcode != 0) fk_store_block(grad_out, xcode, off, B, gt);
                    }
                }
            }
            part[u] = s; ctotal += cnt;
        }
        free(xt);
    }
    for (int64_t u = 0; u < units; u++) total += part[u];
    free(part);
    *count = ctotal;
    *nbad = bad;
    return total;
}

