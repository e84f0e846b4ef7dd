"""Triton kernels of both focal losses: loss and analytic gradient in one pass over the logits.

These implement the kernel contract of :mod:`focalkit.backends` (``sigmoid_focal_fwd`` and
``softmax_focal_fwd``) for CUDA tensors, and for CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1``, which must be set before this module is imported). All arithmetic is float32
whatever the input dtype (float32, float16, bfloat16 are cast right after loading); the gradient is
written in the logits' dtype; the loss is reduced inside the kernel into one float32 partial sum per
program, which are then added in a fixed order (deterministic, no atomics).

Sigmoid, per element, with p = sigmoid(x), t the (smoothed) target, q = 1 - p_t = p (1 - t) + (1 - p) t,
ce = max(x, 0) - x t + log1p(exp(-|x|)) and alpha_t = alpha t + (1 - alpha)(1 - t)::

    loss     = alpha_t q^gamma ce
    dloss/dx = alpha_t q^gamma [ (p - t) + gamma (p (1 - p) / q) (1 - 2 t) ce ]   (ratio := 0 at q = 0)

Softmax over dimension 1, per position, with log p = log_softmax(x), om_c = 1 - p_c, w_c = alpha_c t_c::

    loss      = -sum_c w_c om_c^gamma log p_c
    h_c       = om_c^gamma (gamma p_c log p_c / om_c - 1)      (log p_c / om_c := -1 at om_c = 0)
    dloss/dx_j = w_j h_j - p_j sum_c w_c h_c

This module is the host side: argument checks, launch heuristics and the two entry points. The
``@triton.jit`` kernels live in :mod:`focalkit.kernels._triton_kernels`, the only module that imports
triton (its docstring describes the numerics without ``libdevice``).

Example (on CPU, with ``TRITON_INTERPRET=1`` in the environment before the import; on a GPU
move the tensors to ``"cuda"``):
    >>> import torch
    >>> from focalkit.kernels import _triton as kt
    >>> x = torch.tensor([[0.0, 2.0]]); t = torch.tensor([[1.0, 0.0]])
    >>> loss, count, grad = kt.sigmoid_focal_fwd(x, t, labels=False, alpha=None, gamma=0.0,
    ...     ignore_index=None, label_smoothing=0.0, reduce=True, compute_grad=True)
    >>> round(float(loss), 4), int(count)
    (2.8201, 2)
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from focalkit import _validation as V
# a plain import (not ``from ... import``): a re-import after sys.modules changes gets the new copy
import focalkit.kernels._triton_kernels as K

__all__ = ["sigmoid_focal_fwd", "softmax_focal_fwd", "triton_available"]

_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_INT32_LIMIT = 2**31 - 1


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() not in ("", "0", "false", "no")


def _grad_dtype(x: Tensor) -> torch.dtype:
    """The saved gradient's dtype: x's, float32 for float16 (loss scaling must not find it flushed)."""
    return torch.float32 if x.dtype == torch.float16 else x.dtype


def triton_available() -> bool:
    """Whether these kernels can run here: Triton imports and there is a CUDA device or the interpreter.

    Under ``TRITON_INTERPRET=1`` (set before this module was imported) the kernels run on CPU
    tensors, slowly, for testing; otherwise they need CUDA tensors.

    Example:
        >>> isinstance(triton_available(), bool)
        True
    """
    if not K.HAVE_TRITON:
        return False
    if _interpreting():
        return True
    try:
        return torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return False


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


# --- launch heuristics --------------------------------------------------------------------------------
# Reasoned for an H100 (132 SMs, 64K 32-bit registers and up to 2048 threads per SM), not measured:
# no GPU was available when these were written. The sigmoid kernel is a pure streaming pass
# (x and targets in, gradient out, ~12 bytes per float32 element): 2048 elements per program with
# 8 warps is 8 elements per thread (two 128-bit vector loads of x), enough independent work to
# cover memory latency and a few waves of programs over the SMs at detection sizes (~10M elements).
# The softmax tiles hold at most 4096 float32 values (16 per thread at 8 warps) so that the ~8 live
# tiles of the single-chunk path fit in registers without spilling; classes are a single chunk up
# to 1024 for (N, C) rows and 64 for (N, C, *d) maps (the class axis is the strided one there, the
# positions are the contiguous, coalesced axis), larger C loops over chunks with an online
# log-sum-exp. Tests override these functions to force multi-program and multi-chunk launches.


def _sigmoid_block(numel: int) -> tuple[int, int]:
    """(BLOCK, num_warps) of the sigmoid kernel."""
    if numel <= 1024:
        return max(16, _next_pow2(numel)), 4
    return 2048, 8


def _softmax_tiles(c: int, inner: int, positions: int) -> tuple[int, int, int]:
    """(BLOCK_P positions, BLOCK_C classes, num_warps) of the softmax kernel."""
    max_tile = 4096
    if inner == 1:  # (N, C): classes contiguous
        block_c = min(_next_pow2(c), 1024)
        block_p = max(1, min(max_tile // block_c, _next_pow2(positions)))
    else:  # (N, C, *d): positions contiguous, classes at stride prod(d)
        block_c = min(_next_pow2(c), 64)
        block_p = max(16, min(max_tile // block_c, _next_pow2(inner)))
    num_warps = 8 if block_p * block_c >= 4096 else 4
    return block_p, block_c, num_warps



# --- host side ----------------------------------------------------------------------------------------


def _launcher(kernel):
    """The kernel, wrapped by ``torch.library.wrap_triton`` on a real GPU.

    Outside tracing the wrapper is the kernel itself; inside a ``torch.library.triton_op`` it lets
    ``torch.compile`` see (and keep in its graph) the launch. The interpreter's kernels are not
    ``JITFunction``s and are launched directly.
    """
    wrap = getattr(torch.library, "wrap_triton", None)
    if wrap is None or _interpreting():
        return kernel
    return wrap(kernel)


def _check_runnable(x: Tensor) -> None:
    if not K.HAVE_TRITON:
        raise RuntimeError("the Triton kernels need the 'triton' package (pip install focalkit[triton])")
    if x.device.type != "cuda" and not _interpreting():
        raise RuntimeError(
            f"the Triton kernels need CUDA tensors (x is on {x.device}); on CPU they only run under "
            "Triton's interpreter, with TRITON_INTERPRET=1 set before focalkit.kernels is imported"
        )


def _check_x(x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"x must be float32, float16 or bfloat16 for the Triton kernels, got {x.dtype}")


def _check_targets(x: Tensor, targets: Tensor) -> None:
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if targets.device != x.device:
        raise ValueError(f"targets must be on x's device {x.device}, got {targets.device}")


def _labels(targets: Tensor, ignore_index: int | None) -> Tensor:
    """Integer class indices; uint8/int8/int16 widened to int64 so that the kernels compare them with
    ``ignore_index`` without wrapping (-100 cast to uint8 is 156, a real class when C > 156)."""
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TypeError(f"targets must be an integer tensor of class indices, got {targets.dtype}")
    if ignore_index is not None and not -(2**63) <= int(ignore_index) < 2**63:
        raise ValueError(f"ignore_index must fit in int64 (the labels' type), got {ignore_index}")
    if targets.dtype in (torch.uint8, torch.int8, torch.int16):
        targets = targets.to(torch.int64)
    return targets


def _check_common(gamma: Any, label_smoothing: float) -> tuple[Any, float]:
    if hasattr(gamma, "thresholds"):  # a PiecewiseGamma checks itself when it is made
        return gamma, V.check_label_smoothing(label_smoothing)
    return V.check_gamma(gamma), V.check_label_smoothing(label_smoothing)


#: Most thresholds of a piecewise gamma the kernels take (more run on the eager path).
MAX_THRESHOLDS = 4
_KINDS = {"focal": 0, "asymmetric": 1, "quality": 2, "varifocal": 3}


def _family_args(variant: Any, gamma: Any) -> tuple[float, list[float], dict[str, Any]]:
    """(float gamma, the scalar args eps..gv4, the compile-time parameters) of a family call.

    A constant gamma is the float itself (NTH 0); a piecewise one gives NTH thresholds and
    NTH + 1 values (the float gamma is then unused)."""
    kind = 0 if variant is None else _KINDS[variant.kind]
    eps = 0.0 if variant is None else float(variant.epsilon)
    th: tuple[float, ...] = ()
    vals: tuple[float, ...] = ()
    g = gamma
    if hasattr(gamma, "thresholds"):
        th, vals = tuple(gamma.thresholds), tuple(gamma.values)
        if len(th) > MAX_THRESHOLDS:
            raise ValueError(
                f"the Triton kernels take a PiecewiseGamma with at most {MAX_THRESHOLDS} thresholds, got {len(th)}"
            )
        if kind != 0:
            raise ValueError(f"a PiecewiseGamma applies to the focal loss, not to kind {variant.kind!r}")
        g = max(vals)
    thp = [float(v) for v in th] + [2.0] * (MAX_THRESHOLDS - len(th))  # unused ones are never read
    gvp = [float(v) for v in vals] + [0.0] * (MAX_THRESHOLDS + 1 - len(vals))
    scalars = [
        eps,
        0.0 if variant is None else float(variant.gamma_neg),
        0.0 if variant is None else float(variant.clip),
    ] + thp + gvp
    const = dict(
        KIND=kind, NTH=len(th), HAS_EPS=eps != 0.0,
        CLIP=variant is not None and variant.clip != 0.0,
        IOU=variant is None or bool(variant.iou_weighted),
    )  # fmt: skip
    return float(g), scalars, const


def _finish(
    x: Tensor, psum: Tensor, pcnt: Tensor | None, total: int, loss_buf: Tensor | None, reduce: bool
) -> tuple[Tensor, Tensor]:
    # Partial sums added in a fixed order, in float64 for accuracy, then float32.
    loss = psum.sum(dtype=torch.float64).to(torch.float32) if reduce else loss_buf
    if pcnt is None:
        count = torch.full((), total, dtype=torch.int64, device=x.device)  # a fill, no host copy
    else:
        count = pcnt.sum(dtype=torch.int64)
    assert loss is not None
    return loss, count


def sigmoid_focal_fwd(
    x: Tensor,
    targets: Tensor,
    *,
    labels: bool,
    alpha: float | None,
    gamma: Any,
    ignore_index: int | None,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    variant: Any = None,
    scores: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Sigmoid focal loss and its gradient in one Triton pass (kernel contract of focalkit.backends).

    Per element, with p = sigmoid(x), t' = t (1 - ls) + ls / 2, q = 1 - p_t = p (1 - t') + (1 - p) t',
    ce = max(x, 0) - x t' + log1p(exp(-|x|)) and alpha_t = alpha t' + (1 - alpha)(1 - t')::

        loss     = alpha_t q^gamma ce
        dloss/dx = alpha_t q^gamma [ (p - t') + gamma (p (1 - p) / q) (1 - 2 t') ce ]

    Args:
        x: logits of any shape, float32/float16/bfloat16 (CUDA, or CPU under the interpreter).
        targets: ``labels=False``: floats of x's shape in [0, 1] (elements equal to ``ignore_index``
            are ignored). ``labels=True``: integer class indices of shape ``x.shape[:1] + x.shape[2:]``
            (x is (N, C, *d)); the value C is background, positions equal to ``ignore_index`` drop all
            their C elements. The one-hot is never materialized.
        alpha: weight of positives (None: no weighting).
        gamma: focusing parameter >= 0.
        ignore_index: target value to ignore, or None.
        label_smoothing: ls in [0, 1], smoothing toward 0.5.
        reduce: True for the float32 0-d sum over non-ignored elements, False for the per-element
            float32 loss of x's shape (0 where ignored).
        compute_grad: whether to return d(sum of loss)/dx.
        variant: the member of the focal family (:class:`focalkit.backends.registry.Variant`; None
            is the plain loss): Poly-1 ``epsilon``, kinds asymmetric (gamma is gamma_pos), quality
            (gamma is beta) and varifocal (alpha is the negatives' weight), as compile-time
            parameters of this one kernel. ``gamma`` may be a :class:`focalkit.PiecewiseGamma`
            with at most :data:`MAX_THRESHOLDS` thresholds (kind focal).
        scores: ``labels=True`` with a family kind: each position's target score for its labelled
            class (the targets' shape), instead of 1.

    Returns:
        ``(loss, count, grad)``: count is the int64 number of non-ignored elements; grad has x's
        shape and dtype (0 where ignored), or is None.

    Example:
        >>> import torch
        >>> x = torch.zeros(2, 3); y = torch.tensor([0, 3])  # class 0, then background
        >>> loss, count, grad = sigmoid_focal_fwd(x, y, labels=True, alpha=0.25, gamma=2.0,
        ...     ignore_index=None, label_smoothing=0.0, reduce=True, compute_grad=True)
        >>> int(count), tuple(grad.shape)
        (6, (2, 3))
    """
    _check_x(x)
    _check_targets(x, targets)
    gamma, ls = _check_common(gamma, label_smoothing)
    gamma, fam_scalars, fam_const = _family_args(variant, gamma)
    if scores is not None:
        if not labels or (variant is None or variant.plain):
            raise ValueError("scores are taken with labels=True by the family's kinds only")
        if scores.shape != targets.shape:
            raise ValueError(f"scores must have the labels' shape {tuple(targets.shape)}, got {tuple(scores.shape)}")
        scores = scores.to(device=x.device, dtype=torch.float32).contiguous()
    if alpha is not None:
        if isinstance(alpha, Tensor):
            if alpha.numel() != 1:
                raise TypeError("alpha must be a float or None for the Triton sigmoid kernel")
        alpha = float(alpha)
    x = x.contiguous()
    targets = targets.contiguous()
    if labels:
        if x.dim() < 2:
            raise ValueError(f"x must be (N, C, *d) with integer labels, got shape {tuple(x.shape)}")
        targets = _labels(targets, ignore_index)
        expected = x.shape[:1] + x.shape[2:]
        if targets.shape != expected:
            raise ValueError(
                f"targets must have shape {tuple(expected)} (x's shape without dimension 1), "
                f"got {tuple(targets.shape)}"
            )
        c = x.shape[1]
        inner = 1
        for d in x.shape[2:]:
            inner *= d
    else:
        if targets.shape != x.shape:
            raise ValueError(f"targets must have x's shape {tuple(x.shape)}, got {tuple(targets.shape)}")
        if not targets.is_floating_point():
            targets = targets.to(torch.float32)
        c, inner = 1, 1

    numel = x.numel()
    dev = x.device
    grad = torch.empty_like(x, dtype=_grad_dtype(x)) if compute_grad else None
    has_ignore = ignore_index is not None
    if numel == 0:
        loss = torch.zeros((), dtype=torch.float32, device=dev) if reduce else torch.zeros(
            x.shape, dtype=torch.float32, device=dev
        )
        return loss, torch.zeros((), dtype=torch.int64, device=dev), grad
    _check_runnable(x)

    block, num_warps = _sigmoid_block(numel)
    n_prog = _cdiv(numel, block)
    psum = torch.empty(n_prog, dtype=torch.float32, device=dev)
    pcnt = torch.empty(n_prog, dtype=torch.int32, device=dev) if has_ignore else psum
    loss_buf = psum if reduce else torch.empty(x.shape, dtype=torch.float32, device=dev)
    ign = int(ignore_index) if has_ignore else 0
    _launcher(K.sigmoid_focal_kernel)[(n_prog,)](
        x, targets, loss_buf, grad if compute_grad else psum, psum, pcnt,
        numel, c, inner, 0.0 if alpha is None else alpha, gamma, float(ign), ign, ls,
        scores if scores is not None else psum, *fam_scalars,
        LABELS=bool(labels), HAS_IGNORE=has_ignore, HAS_ALPHA=alpha is not None,
        SMOOTH=ls != 0.0, GAMMA_ZERO=gamma == 0.0 and fam_const["NTH"] == 0, REDUCE=bool(reduce),
        WRITE_GRAD=bool(compute_grad), WIDE=numel + block > _INT32_LIMIT, BLOCK=block,
        SCORES=scores is not None, **fam_const, num_warps=num_warps,
    )  # fmt: skip
    loss, count = _finish(x, psum, pcnt if has_ignore else None, numel, loss_buf, reduce)
    return loss, count, grad


def softmax_focal_fwd(
    x: Tensor,
    targets: Tensor,
    *,
    alpha: Tensor | None,
    gamma: Any,
    ignore_index: int,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    variant: Any = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Softmax focal loss over dimension 1 and its gradient in one Triton launch (kernel contract).

    Per position, with log p = log_softmax(x) over the C classes, om_c = 1 - p_c,
    t_c = (1 - ls) [c == y] + ls / C (or (1 - ls) t_c + ls / C for class probabilities t) and
    w_c = alpha_c t_c::

        loss       = -sum_c w_c om_c^gamma log p_c
        h_c        = om_c^gamma (gamma p_c log p_c / om_c - 1)     (log p_c / om_c := -1 at om_c = 0)
        dloss/dx_j = w_j h_j - p_j sum_c w_c h_c

    (N, C, *d) inputs are read in place (a program takes a block of contiguous positions of one
    image and walks the classes at stride prod(d)): no transpose copy.

    Args:
        x: (N, C) or (N, C, *d) logits, float32/float16/bfloat16.
        targets: integer class indices of shape (N, *d) (any integer dtype, compared in int64 or
            int32: a uint8 label never wraps onto ``ignore_index``); positions equal to
            ``ignore_index`` are ignored. Labels outside [0, C) are not checked here (no host sync):
            they count as positions with no positive class (loss 0); the public losses validate
            them first (``validate_args=True``). Or class probabilities (mixup, cutmix,
            distillation): a floating-point tensor of x's shape; ``ignore_index`` does not apply and
            every position counts.
        alpha: None or a (C,) tensor of non-negative per-class weights.
        gamma: focusing parameter >= 0.
        ignore_index: target value to ignore.
        label_smoothing: ls in [0, 1], as ``F.cross_entropy``.
        reduce: True for the float32 0-d sum over non-ignored positions, False for the float32
            per-position loss of shape (N, *d) (0 where ignored).
        compute_grad: whether to return d(sum of loss)/dx.
        variant: None or a Variant of kind ``"focal"``: ``epsilon`` adds the Poly-1 term
            eps (1 - p_t)^(g_t + 1) with p_t = sum_c t_c p_c. ``gamma`` may be a
            :class:`focalkit.PiecewiseGamma` (g_c at p_c, g_t at p_t).

    Returns:
        ``(loss, count, grad)``: count is the int64 number of non-ignored positions; grad has x's
        shape, dtype and layout (0 at ignored positions), or is None.

    Example:
        >>> import torch
        >>> x = torch.zeros(2, 4); y = torch.tensor([1, -100])
        >>> loss, count, grad = softmax_focal_fwd(x, y, alpha=None, gamma=0.0, ignore_index=-100,
        ...     label_smoothing=0.0, reduce=True, compute_grad=True)
        >>> round(float(loss), 4), int(count)  # log(4) for the one valid position
        (1.3863, 1)
    """
    _check_x(x)
    _check_targets(x, targets)
    gamma, ls = _check_common(gamma, label_smoothing)
    if variant is not None and variant.kind != "focal":
        raise ValueError(f"the softmax kernel takes the focal kind only, got {variant.kind!r}")
    gamma, fam_scalars, fam_const = _family_args(variant, gamma)
    if x.dim() < 2:
        raise ValueError(f"x must be (N, C) or (N, C, *d), got shape {tuple(x.shape)}")
    expected = x.shape[:1] + x.shape[2:]
    soft = targets.is_floating_point()
    if soft:
        if targets.shape != x.shape:
            raise ValueError(
                f"class-probability targets must have x's shape {tuple(x.shape)}, got {tuple(targets.shape)}"
            )
    else:
        targets = _labels(targets, ignore_index)
        if targets.shape != expected:
            raise ValueError(
                f"targets must have shape {tuple(expected)} (x's shape without dimension 1), "
                f"got {tuple(targets.shape)}"
            )
    c = x.shape[1]
    if alpha is not None:
        if not isinstance(alpha, Tensor):
            alpha = torch.as_tensor(alpha, dtype=torch.float32)
        if alpha.shape != (c,):
            raise ValueError(f"alpha must have shape ({c},) (one weight per class), got {tuple(alpha.shape)}")
        alpha = alpha.to(device=x.device, dtype=torch.float32).contiguous()
    x = x.contiguous()
    targets = targets.contiguous()
    dev = x.device
    inner = 1
    for d in x.shape[2:]:
        inner *= d
    positions = x.shape[0] * inner
    grad = torch.empty_like(x, dtype=_grad_dtype(x)) if compute_grad else None
    if positions == 0 or c == 0:
        if grad is not None:
            grad.zero_()
        loss = torch.zeros((), dtype=torch.float32, device=dev) if reduce else torch.zeros(
            expected, dtype=torch.float32, device=dev
        )
        if soft:
            return loss, torch.zeros((), dtype=torch.int64, device=dev), grad
        return loss, (targets != ignore_index).sum(dtype=torch.int64), grad
    _check_runnable(x)

    block_p, block_c, num_warps = _softmax_tiles(c, inner, positions)
    rows = inner == 1
    n_sblocks = 1 if rows else _cdiv(inner, block_p)
    n_prog = _cdiv(positions, block_p) if rows else x.shape[0] * n_sblocks
    psum = torch.empty(n_prog, dtype=torch.float32, device=dev)
    pcnt = torch.empty(n_prog, dtype=torch.int32, device=dev)
    loss_buf = psum if reduce else torch.empty(expected, dtype=torch.float32, device=dev)
    _launcher(K.softmax_focal_kernel)[(n_prog,)](
        x, targets, alpha if alpha is not None else psum, loss_buf,
        grad if compute_grad else psum, psum, pcnt,
        positions, c, inner, n_sblocks, gamma, int(ignore_index), ls,
        fam_scalars[0], *fam_scalars[3:],
        ROWS=rows, HAS_ALPHA=alpha is not None, SMOOTH=ls != 0.0, SOFT=soft, FULL=soft or ls != 0.0,
        GAMMA_ZERO=gamma == 0.0 and fam_const["NTH"] == 0,
        NTH=fam_const["NTH"], HAS_EPS=fam_const["HAS_EPS"],
        REDUCE=bool(reduce), WRITE_GRAD=bool(compute_grad), SINGLE=c <= block_c,
        WIDE=x.numel() + (block_p + 1) * (c + block_c) * inner > _INT32_LIMIT,  # masked lanes' offsets
        BLOCK_P=block_p, BLOCK_C=block_c, num_warps=num_warps,
    )  # fmt: skip
    loss, count = _finish(x, psum, pcnt, positions, loss_buf, reduce)
    return loss, count, grad
