"""The Triton kernels of both focal losses (``@triton.jit``): the only focalkit module that imports triton.

The host side (argument checks, launch heuristics, the entry points of the kernel contract) is
:mod:`focalkit.kernels._triton`; the math and the numerics are documented there and in
``docs/triton.md``. Importing this module never fails: without ``triton`` ``HAVE_TRITON`` is False
and the kernels are None.

Numerics without ``libdevice`` (the interpreter has none): ``q ** gamma`` is ``exp2(gamma log2 q)`` with
``q == 0`` mapped to 0 (``gamma == 0`` is a separate compile-time case giving exactly 1), ``log1p`` and
``expm1`` use Goldberg's and Kahan's corrections of ``log``/``exp``, and the log-sum-exp keeps the sum of
the non-maximal terms apart from the count of maximal ones so that ``log p`` of a confident class
(``log1p`` of a small tail) and hence ``1 - p`` keep their relative accuracy.

Example:
    >>> from focalkit.kernels import _triton_kernels as K
    >>> K.HAVE_TRITON == (K.softmax_focal_kernel is not None)
    True
"""

from __future__ import annotations

try:  # Triton is an optional extra (``pip install focalkit[triton]``)
    import triton
    import triton.language as tl

    HAVE_TRITON = True
except Exception:  # pragma: no cover - depends on the environment
    triton = None  # type: ignore[assignment]
    tl = None  # type: ignore[assignment]
    HAVE_TRITON = False

__all__ = ["HAVE_TRITON", "sigmoid_focal_kernel", "softmax_focal_kernel"]


if HAVE_TRITON:

    @triton.jit
    def _log1p_pos(v):
        # log(1 + v) for v >= 0, accurate for small v (Goldberg): log(u) * v / (u - 1), u = fl(1 + v).
        u = 1.0 + v
        den = tl.where(u == 1.0, 1.0, u - 1.0)
        return tl.where(u == 1.0, v, tl.log(u) * (v / den))

    @triton.jit
    def _neg_expm1(lg):
        # 1 - exp(lg) for lg <= 0, accurate near 0 (Kahan): (1 - u) * lg / log(u), u = fl(exp(lg)).
        u = tl.exp(lg)
        near = (u != 1.0) & (lg > -0.5)
        den = tl.log(tl.where(near, u, 0.5))
        corrected = (1.0 - u) * (lg / den)
        return tl.where(u == 1.0, -lg, tl.where(near, corrected, 1.0 - u))

    @triton.jit
    def _pow_pos(q, gamma):
        # q ** gamma for q >= 0 and gamma > 0 (0 ** gamma = 0, NaN ** gamma = NaN) without libdevice.
        zero = q == 0.0
        return tl.where(zero, 0.0, tl.exp2(gamma * tl.log2(tl.where(zero, 1.0, q))))

    @triton.jit
    def _pow_g(q, g):
        # q ** g for q >= 0 and g >= 0 varying per element: 0 ** 0 = 1, 0 ** g = 0.
        return tl.where(g == 0.0, 1.0, _pow_pos(q, g))

    @triton.jit
    def _pw_gamma(pt, th0, th1, th2, th3, gv0, gv1, gv2, gv3, gv4, NTH: tl.constexpr):
        # A piecewise gamma at p_t: gv_i for th_{i-1} <= p_t < th_i (NTH thresholds; NaN -> gv0).
        g = tl.zeros_like(pt) + gv0
        if NTH >= 1:
            g = tl.where(pt >= th0, gv1, g)
        if NTH >= 2:
            g = tl.where(pt >= th1, gv2, g)
        if NTH >= 3:
            g = tl.where(pt >= th2, gv3, g)
        if NTH >= 4:
            g = tl.where(pt >= th3, gv4, g)
        return g

    @triton.jit
    def _sigmoid_family_terms(
        x, t, p, pn, e, ce, alpha, gamma, gneg, clip,
        KIND: tl.constexpr, HAS_ALPHA: tl.constexpr, CLIP: tl.constexpr, IOU: tl.constexpr,
    ):  # fmt: skip
        # Loss and gradient of kinds 1-3 (asymmetric, quality, varifocal); the math is in the C
        # kernel's _focal_cpu_family.h, the same formulas term by term.
        l1p = _log1p_pos(e)
        if KIND == 1:  # asymmetric: gamma is gamma_pos
            spn = tl.where(x < 0.0, -x, 0.0) + l1p  # -log p
            spp = tl.where(x > 0.0, x, 0.0) + l1p  # -log(1 - p)
            modp = _pow_g(pn, tl.zeros_like(x) + gamma)
            pm = tl.maximum(p - clip, 0.0)
            if CLIP:
                lneg = tl.where(pm > 0.5, -tl.log(pn + clip), -_log1p_pos(-pm))
                rn = pn / (pn + clip)
            else:
                lneg = spp
                rn = tl.full(x.shape, 1.0, tl.float32)
            modn = _pow_g(pm, tl.zeros_like(x) + gneg)
            lr = tl.where(pm > 0.0, lneg / tl.where(pm > 0.0, pm, 1.0), 1.0)
            pnl = tl.where(pn > 0.0, pn * lr, 0.0)
            loss = t * modp * spn + (1.0 - t) * modn * lneg
            gpos = -t * modp * (gamma * p * spn + pn)
            g = gpos + tl.where(pm > 0.0, (1.0 - t) * p * (gneg * modn * pnl + modn * rn), 0.0)
        elif KIND == 2:  # quality: gamma is beta
            d = p * (1.0 - t) - pn * t
            ad = tl.abs(d)
            mod = _pow_g(ad, tl.zeros_like(x) + gamma)
            rr = tl.where(ad > 1e-30, p * pn / tl.where(ad > 1e-30, ad, 1.0), 0.0)
            sg = tl.where(d > 0.0, 1.0, tl.where(d < 0.0, -1.0, 0.0))
            rce = tl.where(rr > 0.0, rr * ce, 0.0)
            loss = mod * ce
            g = mod * (d + gamma * sg * rce)
        else:  # varifocal
            if HAS_ALPHA:
                av = alpha
            else:  # VarifocalNet's 0.75, as the eager closed form
                av = 0.75
            if IOU:
                w = t
            else:
                w = tl.full(x.shape, 1.0, tl.float32)
            modv = _pow_g(p, tl.zeros_like(x) + gamma)
            pce = tl.where(pn > 0.0, pn * ce, 0.0)
            pos = t > 0.0
            loss = tl.where(pos, w * ce, av * modv * ce)
            g = tl.where(pos, w * (p * (1.0 - t) - pn * t), av * modv * (gamma * pce + p))
        return loss, g

    @triton.jit
    def sigmoid_focal_kernel(
        x_ptr, t_ptr, loss_ptr, grad_ptr, psum_ptr, pcnt_ptr,
        numel, C, inner, alpha, gamma, ignore_f, ignore_i, ls,
        s_ptr, eps, gneg, clip, th0, th1, th2, th3, gv0, gv1, gv2, gv3, gv4,
        LABELS: tl.constexpr, HAS_IGNORE: tl.constexpr, HAS_ALPHA: tl.constexpr,
        SMOOTH: tl.constexpr, GAMMA_ZERO: tl.constexpr, REDUCE: tl.constexpr,
        WRITE_GRAD: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr,
        KIND: tl.constexpr = 0, NTH: tl.constexpr = 0, HAS_EPS: tl.constexpr = False,
        CLIP: tl.constexpr = False, IOU: tl.constexpr = True, SCORES: tl.constexpr = False,
    ):  # fmt: skip
        # KIND (0 focal, 1 asymmetric, 2 quality, 3 varifocal), NTH (thresholds of a piecewise
        # gamma th0.. with values gv0..), HAS_EPS (Poly-1 eps), SCORES (class indices with a
        # per-position target score in s_ptr): the focal family as compile-time parameters of this
        # one pass; the plain focal loss (KIND 0, NTH 0, no eps) compiles to the plain code.
        pid = tl.program_id(0)
        if WIDE:
            start = pid.to(tl.int64) * BLOCK
        else:
            start = pid * BLOCK
        offs = start + tl.arange(0, BLOCK)
        mask = offs < numel
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if LABELS:
            # x is (N, C, *d) with inner = prod(d); targets (N, *d) hold class indices, C = background.
            # Two integer divisions per element (inner == 1 is specialized by Triton and folds away).
            q1 = offs // inner  # n * C + c
            n = q1 // C
            cls = q1 - n * C
            pos = n * inner + (offs - q1 * inner)
            y = tl.load(t_ptr + pos, mask=mask, other=0)
            if HAS_IGNORE:
                valid = mask & (y != ignore_i)
            else:
                valid = mask
            if SCORES:
                sc = tl.load(s_ptr + pos, mask=mask, other=0.0).to(tl.float32)
                t = tl.where(valid & (y == cls), sc, 0.0)
            else:
                t = tl.where(valid & (y == cls), 1.0, 0.0)
        else:
            traw = tl.load(t_ptr + offs, mask=mask, other=0.0)
            if HAS_IGNORE:
                valid = mask & (traw != ignore_f)
            else:
                valid = mask
            t = tl.where(valid, traw.to(tl.float32), 0.0)
        if SMOOTH:
            t = t * (1.0 - ls) + 0.5 * ls

        e = tl.exp(-tl.abs(x))
        inv = 1.0 / (1.0 + e)
        nonneg = x >= 0.0
        p = tl.where(nonneg, inv, e * inv)  # sigmoid(x)
        pn = tl.where(nonneg, e * inv, inv)  # 1 - sigmoid(x), no cancellation
        # BCE-with-logits in PyTorch's arrangement: +-inf logits give what F.binary_cross_entropy_with_logits
        # gives (inf for a confident wrong prediction, NaN where PyTorch's is NaN); NaN stays NaN.
        ce = ((1.0 - t) * x + tl.where(x < 0.0, -x, 0.0)) + _log1p_pos(e)
        q = p * (1.0 - t) + pn * t  # 1 - p_t
        if HAS_ALPHA:
            at = alpha * t + (1.0 - alpha) * (1.0 - t)
        else:
            at = tl.full((BLOCK,), 1.0, tl.float32)
        if KIND != 0:
            loss, g = _sigmoid_family_terms(
                x, t, p, pn, e, ce, alpha, gamma, gneg, clip, KIND, HAS_ALPHA, CLIP, IOU
            )
        elif NTH > 0:  # a piecewise gamma at p_t = 1 - q (a constant for the gradient)
            gam = _pw_gamma(1.0 - q, th0, th1, th2, th3, gv0, gv1, gv2, gv3, gv4, NTH)
            mod = _pow_g(q, gam)
            loss = at * mod * ce
        elif GAMMA_ZERO:
            loss = at * ce
        else:
            gam = gamma
            mod = _pow_pos(q, gamma)
            loss = at * mod * ce
        if KIND == 0 and HAS_EPS:  # Poly-1: eps q^(g + 1)
            if GAMMA_ZERO and NTH == 0:
                loss += eps * q
            else:
                loss += eps * (mod * q)
        loss = tl.where(valid, loss, 0.0)

        if WRITE_GRAD:
            d = p * (1.0 - t) - pn * t  # p - t, exact for hard targets
            if KIND != 0:
                pass  # g from _sigmoid_family_terms
            elif GAMMA_ZERO and NTH == 0:
                g = at * d
                if HAS_EPS:
                    g += eps * (p * pn) * (1.0 - 2.0 * t)
            else:
                r = tl.where(q > 0.0, p * pn / tl.where(q > 0.0, q, 1.0), 0.0)  # in [0, 1]
                rce = tl.where(r > 0.0, r * ce, 0.0)  # no 0 * inf at an infinite logit
                g = at * mod * (d + gam * (1.0 - 2.0 * t) * rce)
                if HAS_EPS:
                    g += eps * (gam + 1.0) * mod * (p * pn) * (1.0 - 2.0 * t)
            g = tl.where(valid, g, 0.0)
            tl.store(grad_ptr + offs, g.to(grad_ptr.dtype.element_ty), mask=mask)
        if REDUCE:
            tl.store(psum_ptr + pid, tl.sum(loss, axis=0))
        else:
            tl.store(loss_ptr + offs, loss, mask=mask)
        if HAS_IGNORE:
            tl.store(pcnt_ptr + pid, tl.sum(valid.to(tl.int32), axis=0))

    @triton.jit
    def _softmax_chunk_stats(xt, m2, pmask):
        # Row max of a chunk, the sum of its non-maximal exp(x - max) and the count of maximal entries.
        # A valid row whose entries in the chunk are all -inf keeps max -inf with an empty tail (rows
        # outside the tensor get max 0, so their lanes stay free of inf - inf); NaN and +inf logits
        # make the tail NaN.
        mc = tl.max(xt, axis=1)
        mc = tl.where(pmask, mc, 0.0)
        z = xt - tl.where(mc == float("-inf"), 0.0, mc)[:, None]
        is_max = (z == 0.0) & m2
        tail = tl.sum(tl.where(is_max | (~m2), 0.0, tl.exp(tl.where(m2, z, 0.0))), axis=1)
        neq = tl.sum(is_max.to(tl.float32), axis=1)
        return mc, tail, neq

    @triton.jit
    def _softmax_class_terms(
        xt, m, lse, m2, valid, cols, y, t_ptr, toffs, alpha_ptr, gamma, ls, C,
        th0, th1, th2, th3, gv0, gv1, gv2, gv3, gv4,
        HAS_ALPHA: tl.constexpr, SMOOTH: tl.constexpr, SOFT: tl.constexpr, GAMMA_ZERO: tl.constexpr,
        NTH: tl.constexpr,
    ):  # fmt: skip
        # Per class of a chunk: log p, p, w = alpha t and h (see the module docstring); t is the
        # smoothed one-hot of the label, or the class probabilities at toffs (SOFT), smoothed.
        logp = tl.where(m2, (xt - m[:, None]) - lse[:, None], 0.0)
        p = tl.exp(logp)
        if SOFT:
            tsoft = tl.load(t_ptr + toffs, mask=m2, other=0.0).to(tl.float32)
            tcls = tsoft * (1.0 - ls) + ls / C
        elif SMOOTH:
            tcls = tl.where(cols[None, :] == y[:, None], 1.0 - ls, 0.0) + ls / C
        else:
            tcls = tl.where(cols[None, :] == y[:, None], 1.0, 0.0)
        if HAS_ALPHA:
            a = tl.load(alpha_ptr + cols, mask=cols < C, other=0.0).to(tl.float32)
            w = tcls * a[None, :]
        else:
            w = tcls
        w = tl.where(m2 & valid[:, None], w, 0.0)
        if GAMMA_ZERO:
            mod = tl.full(logp.shape, 1.0, tl.float32)
            h = tl.full(logp.shape, -1.0, tl.float32)
        elif NTH > 0:  # piecewise gamma at p_c
            om = _neg_expm1(logp)
            g = _pw_gamma(p, th0, th1, th2, th3, gv0, gv1, gv2, gv3, gv4, NTH)
            mod = _pow_g(om, g)
            ratio = tl.where(om > 0.0, logp / tl.where(om > 0.0, om, 1.0), -1.0)
            h = mod * (g * tl.where(p > 0.0, p * ratio, 0.0) - 1.0)
        else:
            om = _neg_expm1(logp)
            mod = _pow_pos(om, gamma)
            ratio = tl.where(om > 0.0, logp / tl.where(om > 0.0, om, 1.0), -1.0)
            h = mod * (gamma * tl.where(p > 0.0, p * ratio, 0.0) - 1.0)  # p log p := 0 at p = 0
        return logp, p, w, mod, h, tl.where(m2 & valid[:, None], tcls, 0.0)

    @triton.jit
    def softmax_focal_kernel(
        x_ptr, y_ptr, alpha_ptr, loss_ptr, grad_ptr, psum_ptr, pcnt_ptr,
        P, C, inner, n_sblocks, gamma, ignore_i, ls,
        eps, th0, th1, th2, th3, gv0, gv1, gv2, gv3, gv4,
        ROWS: tl.constexpr, HAS_ALPHA: tl.constexpr, SMOOTH: tl.constexpr, SOFT: tl.constexpr,
        FULL: tl.constexpr, GAMMA_ZERO: tl.constexpr, REDUCE: tl.constexpr, WRITE_GRAD: tl.constexpr,
        SINGLE: tl.constexpr, WIDE: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
        NTH: tl.constexpr = 0, HAS_EPS: tl.constexpr = False,
    ):  # fmt: skip
        # NTH (a piecewise gamma: thresholds th0.., values gv0..) and HAS_EPS (the Poly-1 term
        # eps (1 - p_t)^(g_t + 1), p_t = sum_c t_c p_c, folded into the gradient as
        # w_j h_j - p_j S - K t_j p_j with S -= K p_t, K = eps (g_t + 1)(1 - p_t)^g_t): the focal
        # family as compile-time parameters; the plain loss compiles to the plain code.
        pid = tl.program_id(0)
        if WIDE:
            pid = pid.to(tl.int64)
        rp = tl.arange(0, BLOCK_P)
        if ROWS:  # (N, C): a block of rows, classes contiguous
            pos = pid * BLOCK_P + rp
            pmask = pos < P
            base = pos * C
            cstride = 1
        else:  # (N, C, *d): one image n, a block of contiguous positions s, classes at stride inner
            n = pid // n_sblocks
            s = (pid % n_sblocks) * BLOCK_P + rp
            pmask = s < inner
            base = n * C * inner + s
            pos = n * inner + s
            cstride = inner
        if SOFT:  # y_ptr holds class probabilities of x's layout; every position counts
            y = tl.zeros((BLOCK_P,), tl.int32)
            valid = pmask
        else:
            y = tl.load(y_ptr + pos, mask=pmask, other=0)
            valid = pmask & (y != ignore_i)
        cols = tl.arange(0, BLOCK_C)

        # Pass 1: log-sum-exp over the classes as m + log1p(tail + neq - 1).
        cm = cols < C
        m2 = pmask[:, None] & cm[None, :]
        offs = base[:, None] + cols[None, :] * cstride
        xt = tl.load(x_ptr + offs, mask=m2, other=float("-inf")).to(tl.float32)
        m, tail, neq = _softmax_chunk_stats(xt, m2, pmask)
        if not SINGLE:
            for c0 in range(BLOCK_C, C, BLOCK_C):
                cc = c0 + cols
                m2c = pmask[:, None] & (cc < C)[None, :]
                xc = tl.load(
                    x_ptr + base[:, None] + cc[None, :] * cstride, mask=m2c, other=float("-inf")
                ).to(tl.float32)
                mc, tc, nc = _softmax_chunk_stats(xc, m2c, pmask)
                mn = tl.maximum(m, mc)
                fm = tl.where(m == mn, 1.0, tl.exp(m - mn))  # 1, not exp(-inf + inf), when both are -inf
                fc = tl.where(mc == mn, 1.0, tl.exp(mc - mn))
                tail = (tail + tl.where(m < mn, neq, 0.0)) * fm + (tc + tl.where(mc < mn, nc, 0.0)) * fc
                neq = tl.where(m == mn, neq, 0.0) + tl.where(mc == mn, nc, 0.0)
                m = mn
        lse = _log1p_pos(tail + (tl.maximum(neq, 1.0) - 1.0))  # neq - 1 first: exact

        # Pass 2: the loss and S = sum_c w_c h_c of each position (FULL: label smoothing or soft
        # targets, every class enters).
        if FULL:
            logp, p, w, mod, h, tm = _softmax_class_terms(
                xt, m, lse, m2, valid, cols, y, y_ptr, offs, alpha_ptr, gamma, ls, C,
                th0, th1, th2, th3, gv0, gv1, gv2, gv3, gv4,
                HAS_ALPHA, SMOOTH, SOFT, GAMMA_ZERO, NTH,
            )  # fmt: skip
            loss = -tl.sum(tl.where(w > 0.0, w * mod * logp, 0.0), axis=1)  # 0 log 0 := 0
            S = tl.sum(w * h, axis=1)
            if HAS_EPS:  # sum_c t_c p_c, sum_c t_c (1 - p_c) and sum_c t_c
                PT = tl.sum(tm * p, axis=1)
                OMT = tl.sum(tm * _neg_expm1(logp), axis=1)
                TS = tl.sum(tm, axis=1)
            if not SINGLE:
                for c0 in range(BLOCK_C, C, BLOCK_C):
                    cc = c0 + cols
                    m2c = pmask[:, None] & (cc < C)[None, :]
                    oc = base[:, None] + cc[None, :] * cstride
                    xc = tl.load(x_ptr + oc, mask=m2c, other=0.0).to(tl.float32)
                    logp, p, w, mod, h, tm = _softmax_class_terms(
                        xc, m, lse, m2c, valid, cc, y, y_ptr, oc, alpha_ptr, gamma, ls, C,
                        th0, th1, th2, th3, gv0, gv1, gv2, gv3, gv4,
                        HAS_ALPHA, SMOOTH, SOFT, GAMMA_ZERO, NTH,
                    )  # fmt: skip
                    loss += -tl.sum(tl.where(w > 0.0, w * mod * logp, 0.0), axis=1)
                    S += tl.sum(w * h, axis=1)
                    if HAS_EPS:
                        PT += tl.sum(tm * p, axis=1)
                        OMT += tl.sum(tm * _neg_expm1(logp), axis=1)
                        TS += tl.sum(tm, axis=1)
            if HAS_EPS:
                omt = tl.maximum(OMT + (1.0 - TS), 0.0)  # 1 - p_t without cancellation
                if NTH > 0:
                    gt = _pw_gamma(PT, th0, th1, th2, th3, gv0, gv1, gv2, gv3, gv4, NTH)
                else:
                    gt = tl.zeros_like(PT) + gamma
                modt = _pow_g(omt, gt)
                K = tl.where(valid, eps * (gt + 1.0) * modt, 0.0)
                loss += eps * (modt * omt)
                S -= K * PT
        else:  # hard labels: only the target class enters, gathered directly
            hit = valid & (y >= 0) & (y < C)
            yc = tl.where(hit, y, 0)
            xy = tl.load(x_ptr + base + yc * cstride, mask=hit, other=0.0).to(tl.float32)
            logp_y = tl.where(hit, (xy - m) - lse, 0.0)
            if HAS_ALPHA:
                w_y = tl.load(alpha_ptr + yc, mask=hit, other=0.0).to(tl.float32)
            else:
                w_y = tl.full((BLOCK_P,), 1.0, tl.float32)
            w_y = tl.where(hit, w_y, 0.0)
            if GAMMA_ZERO and NTH == 0 and not HAS_EPS:
                loss = -w_y * logp_y
                S = -w_y
            else:
                om_y = _neg_expm1(logp_y)
                p_y = tl.exp(logp_y)
                if NTH > 0:
                    g_y = _pw_gamma(p_y, th0, th1, th2, th3, gv0, gv1, gv2, gv3, gv4, NTH)
                    mod_y = _pow_g(om_y, g_y)
                elif GAMMA_ZERO:  # with the Poly-1 term
                    g_y = 0.0
                    mod_y = tl.full((BLOCK_P,), 1.0, tl.float32)
                else:
                    g_y = gamma
                    mod_y = _pow_pos(om_y, gamma)
                ratio = tl.where(om_y > 0.0, logp_y / tl.where(om_y > 0.0, om_y, 1.0), -1.0)
                loss = -w_y * mod_y * logp_y
                S = w_y * (mod_y * (g_y * tl.where(p_y > 0.0, p_y * ratio, 0.0) - 1.0))
                if HAS_EPS:  # eps om^(g + 1); its gradient adds -eps (g + 1) om^g p_y to S
                    loss += tl.where(hit, eps * (mod_y * om_y), 0.0)
                    S -= tl.where(hit, eps * (g_y + 1.0) * mod_y * p_y, 0.0)

        # Pass 3: the gradient, dloss/dx_j = w_j h_j - p_j S, in x's dtype and layout.
        if WRITE_GRAD:
            if FULL:
                if SINGLE:
                    g = w * h - p * S[:, None]
                    if HAS_EPS:
                        g -= K[:, None] * tm * p
                    g = tl.where(valid[:, None], g, 0.0)
                    tl.store(grad_ptr + offs, g.to(grad_ptr.dtype.element_ty), mask=m2)
                else:
                    for c0 in range(0, C, BLOCK_C):
                        cc = c0 + cols
                        m2c = pmask[:, None] & (cc < C)[None, :]
                        oc = base[:, None] + cc[None, :] * cstride
                        xc = tl.load(x_ptr + oc, mask=m2c, other=0.0).to(tl.float32)
                        logp, p, w, mod, h, tm = _softmax_class_terms(
                            xc, m, lse, m2c, valid, cc, y, y_ptr, oc, alpha_ptr, gamma, ls, C,
                            th0, th1, th2, th3, gv0, gv1, gv2, gv3, gv4,
                            HAS_ALPHA, SMOOTH, SOFT, GAMMA_ZERO, NTH,
                        )  # fmt: skip
                        g = w * h - p * S[:, None]
                        if HAS_EPS:
                            g -= K[:, None] * tm * p
                        g = tl.where(valid[:, None], g, 0.0)
                        tl.store(grad_ptr + oc, g.to(grad_ptr.dtype.element_ty), mask=m2c)
            else:
                if SINGLE:
                    p = tl.exp(tl.where(m2, (xt - m[:, None]) - lse[:, None], 0.0))
                    g = tl.where(cols[None, :] == y[:, None], S[:, None], 0.0) - p * S[:, None]
                    g = tl.where(valid[:, None], g, 0.0)
                    tl.store(grad_ptr + offs, g.to(grad_ptr.dtype.element_ty), mask=m2)
                else:
                    for c0 in range(0, C, BLOCK_C):
                        cc = c0 + cols
                        m2c = pmask[:, None] & (cc < C)[None, :]
                        oc = base[:, None] + cc[None, :] * cstride
                        xc = tl.load(x_ptr + oc, mask=m2c, other=0.0).to(tl.float32)
                        p = tl.exp(tl.where(m2c, (xc - m[:, None]) - lse[:, None], 0.0))
                        g = tl.where(cc[None, :] == y[:, None], S[:, None], 0.0) - p * S[:, None]
                        g = tl.where(valid[:, None], g, 0.0)
                        tl.store(grad_ptr + oc, g.to(grad_ptr.dtype.element_ty), mask=m2c)

        loss = tl.where(valid, loss, 0.0)
        if REDUCE:
            tl.store(psum_ptr + pid, tl.sum(loss, axis=0))
        else:
            tl.store(loss_ptr + pos, loss, mask=pmask)
        tl.store(pcnt_ptr + pid, tl.sum(valid.to(tl.int32), axis=0))

else:  # pragma: no cover - depends on the environment
    sigmoid_focal_kernel = None
    softmax_focal_kernel = None
