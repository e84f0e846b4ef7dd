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
    def sigmoid_focal_kernel(
        x_ptr, t_ptr, loss_ptr, grad_ptr, psum_ptr, pcnt_ptr,
        numel, C, inner, alpha, gamma, ignore_f, ignore_i, ls,
        LABELS: tl.constexpr, HAS_IGNORE: tl.constexpr, HAS_ALPHA: tl.constexpr,
        SMOOTH: tl.constexpr, GAMMA_ZERO: tl.constexpr, REDUCE: tl.constexpr,
        WRITE_GRAD: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
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
        if GAMMA_ZERO:
            loss = at * ce
        else:
            mod = _pow_pos(q, gamma)
            loss = at * mod * ce
        loss = tl.where(valid, loss, 0.0)

        if WRITE_GRAD:
            d = p * (1.0 - t) - pn * t  # p - t, exact for hard targets
            if GAMMA_ZERO:
                g = at * d
            else:
                r = tl.where(q > 0.0, p * pn / tl.where(q > 0.0, q, 1.0), 0.0)  # in [0, 1]
                rce = tl.where(r > 0.0, r * ce, 0.0)  # no 0 * inf at an infinite logit
                g = at * mod * (d + gamma * (1.0 - 2.0 * t) * rce)
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
        HAS_ALPHA: tl.constexpr, SMOOTH: tl.constexpr, SOFT: tl.constexpr, GAMMA_ZERO: tl.constexpr,
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
        else:
            om = _neg_expm1(logp)
            mod = _pow_pos(om, gamma)
            ratio = tl.where(om > 0.0, logp / tl.where(om > 0.0, om, 1.0), -1.0)
            h = mod * (gamma * tl.where(p > 0.0, p * ratio, 0.0) - 1.0)  # p log p := 0 at p = 0
        return logp, p, w, mod, h

    @triton.jit
    def softmax_focal_kernel(
        x_ptr, y_ptr, alpha_ptr, loss_ptr, grad_ptr, psum_ptr, pcnt_ptr,
        P, C, inner, n_sblocks, gamma, ignore_i, ls,
        ROWS: tl.constexpr, HAS_ALPHA: tl.constexpr, SMOOTH: tl.constexpr, SOFT: tl.constexpr,
        FULL: tl.constexpr, GAMMA_ZERO: tl.constexpr, REDUCE: tl.constexpr, WRITE_GRAD: tl.constexpr,
        SINGLE: tl.constexpr, WIDE: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
    ):  # fmt: skip
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
            logp, p, w, mod, h = _softmax_class_terms(
                xt, m, lse, m2, valid, cols, y, y_ptr, offs, alpha_ptr, gamma, ls, C,
                HAS_ALPHA, SMOOTH, SOFT, GAMMA_ZERO,
            )  # fmt: skip
            loss = -tl.sum(tl.where(w > 0.0, w * mod * logp, 0.0), axis=1)  # 0 log 0 := 0
            S = tl.sum(w * h, axis=1)
            if not SINGLE:
                for c0 in range(BLOCK_C, C, BLOCK_C):
                    cc = c0 + cols
                    m2c = pmask[:, None] & (cc < C)[None, :]
                    oc = base[:, None] + cc[None, :] * cstride
                    xc = tl.load(x_ptr + oc, mask=m2c, other=0.0).to(tl.float32)
                    logp, p, w, mod, h = _softmax_class_terms(
                        xc, m, lse, m2c, valid, cc, y, y_ptr, oc, alpha_ptr, gamma, ls, C,
                        HAS_ALPHA, SMOOTH, SOFT, GAMMA_ZERO,
                    )  # fmt: skip
                    loss += -tl.sum(tl.where(w > 0.0, w * mod * logp, 0.0), axis=1)
                    S += tl.sum(w * h, axis=1)
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
            if GAMMA_ZERO:
                loss = -w_y * logp_y
                S = -w_y
            else:
                om_y = _neg_expm1(logp_y)
                mod_y = _pow_pos(om_y, gamma)
                ratio = tl.where(om_y > 0.0, logp_y / tl.where(om_y > 0.0, om_y, 1.0), -1.0)
                p_y = tl.exp(logp_y)
                loss = -w_y * mod_y * logp_y
                S = w_y * (mod_y * (gamma * tl.where(p_y > 0.0, p_y * ratio, 0.0) - 1.0))

        # Pass 3: the gradient, dloss/dx_j = w_j h_j - p_j S, in x's dtype and layout.
        if WRITE_GRAD:
            if FULL:
                if SINGLE:
                    g = w * h - p * S[:, None]
                    g = tl.where(valid[:, None], g, 0.0)
                    tl.store(grad_ptr + offs, g.to(grad_ptr.dtype.element_ty), mask=m2)
                else:
                    for c0 in range(0, C, BLOCK_C):
                        cc = c0 + cols
                        m2c = pmask[:, None] & (cc < C)[None, :]
                        oc = base[:, None] + cc[None, :] * cstride
                        xc = tl.load(x_ptr + oc, mask=m2c, other=0.0).to(tl.float32)
                        logp, p, w, mod, h = _softmax_class_terms(
                            xc, m, lse, m2c, valid, cc, y, y_ptr, oc, alpha_ptr, gamma, ls, C,
                            HAS_ALPHA, SMOOTH, SOFT, GAMMA_ZERO,
                        )  # fmt: skip
                        g = w * h - p * S[:, None]
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
