"""The fused kernels as PyTorch custom ops: ``torch.ops.focalkit.sigmoid_focal_fwd`` / ``softmax_focal_fwd``.

Registering the kernels with ``torch.library.custom_op`` makes them opaque, shape-known nodes for
``torch.compile`` (a compiled user model does not break its graph at the loss) and lets PyTorch
dispatch by device: the CPU implementation is the C/OpenMP kernel (``focalkit.kernels.cpu``), the
CUDA implementation the Triton kernels (``focalkit.kernels._triton``).

Both ops follow the kernel contract of :mod:`focalkit.backends` and return ``(loss, count, grad)``;
when ``compute_grad`` is false ``grad`` is an empty tensor (custom ops cannot return None).
The member of the focal family travels as plain schema values (custom ops take no Python
objects): ``kind, epsilon, gamma_neg, clip, iou_weighted`` (the Variant) and ``thresholds,
gamma_values`` (a PiecewiseGamma; both empty for a float gamma); ``scores`` is the optional
per-position target score of class-index quality / varifocal calls. They
are forward-only: the gradient is an output, and the one autograd path that turns it into a
backward is :class:`focalkit._autograd.FocalLossFunction`, which the losses call. Differentiate
through :func:`focalkit.sigmoid_focal_loss` / :func:`focalkit.softmax_focal_loss`, not the ops.

Example (needs the C kernel; the test suite skips it, visibly, where it is not built):
    >>> import torch
    >>> from focalkit.kernels import ops
    >>> loss, count, grad = ops.sigmoid_focal_fwd(torch.zeros(2, 3), torch.ones(2, 3), labels=False,
    ...     alpha=None, gamma=2.0, ignore_index=None, label_smoothing=0.0, reduce=True,
    ...     compute_grad=True)
    >>> print(round(loss.item(), 4), count.item(), tuple(grad.shape))
    1.0397 6 (2, 3)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from focalkit.backends.registry import Variant
from focalkit.gamma import PiecewiseGamma
from focalkit.kernels import cpu

__all__ = ["cpu_kernel_available", "sigmoid_focal_fwd", "softmax_focal_fwd"]


def cpu_kernel_available() -> bool:
    """Whether the ops have a working CPU implementation (the C extension was built)."""
    return cpu.available()


def _triton() -> Any:
    from focalkit.kernels import _triton

    return _triton


def _empty_grad(x: Tensor) -> Tensor:
    return x.new_empty((0,))


def _unpack(
    gamma: float, kind: str, epsilon: float, gamma_neg: float, clip: float, iou_weighted: bool,
    thresholds: list[float], gamma_values: list[float],
) -> tuple[Any, Variant | None]:  # fmt: skip
    """The kernel contract's (gamma, variant) from the ops' schema values."""
    g: Any = PiecewiseGamma(thresholds, gamma_values) if gamma_values else gamma
    v = Variant(kind, epsilon, gamma_neg, clip, iou_weighted)  # type: ignore[arg-type]
    return g, (None if v == Variant() else v)


def _pack(gamma: Any, variant: Variant | None) -> tuple[Any, ...]:
    """The ops' schema values of (gamma, variant): the inverse of :func:`_unpack`."""
    v = variant if variant is not None else Variant()
    if isinstance(gamma, PiecewiseGamma):
        g, th, vals = float(max(gamma.values)), [float(t) for t in gamma.thresholds], [float(a) for a in gamma.values]
    else:
        g, th, vals = float(gamma), [], []
    return (g, str(v.kind), float(v.epsilon), float(v.gamma_neg), float(v.clip), bool(v.iou_weighted), th, vals)


# ----------------------------------------------------------------------------- sigmoid


@torch.library.custom_op("focalkit::sigmoid_focal_fwd", mutates_args=(), device_types="cpu")
def _sigmoid_op(
    x: Tensor,
    targets: Tensor,
    labels: bool,
    alpha: float | None,
    gamma: float,
    ignore_index: int | None,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    kind: str = "focal",
    epsilon: float = 0.0,
    gamma_neg: float = 0.0,
    clip: float = 0.0,
    iou_weighted: bool = True,
    thresholds: list[float] | None = None,
    gamma_values: list[float] | None = None,
    scores: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    g, v = _unpack(gamma, kind, epsilon, gamma_neg, clip, iou_weighted, list(thresholds or ()), list(gamma_values or ()))
    loss, count, grad = cpu.sigmoid_focal_fwd(
        x, targets, labels=labels, alpha=alpha, gamma=g, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduce=reduce, compute_grad=compute_grad, variant=v,
        scores=scores,
    )  # fmt: skip
    return loss, count, _empty_grad(x) if grad is None else grad


@_sigmoid_op.register_kernel("cuda")
def _sigmoid_op_cuda(
    x: Tensor, targets: Tensor, labels: bool, alpha: float | None, gamma: float,
    ignore_index: int | None, label_smoothing: float, reduce: bool, compute_grad: bool,
    kind: str = "focal", epsilon: float = 0.0, gamma_neg: float = 0.0, clip: float = 0.0,
    iou_weighted: bool = True, thresholds: list[float] | None = None,
    gamma_values: list[float] | None = None, scores: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    g, v = _unpack(gamma, kind, epsilon, gamma_neg, clip, iou_weighted, list(thresholds or ()), list(gamma_values or ()))
    loss, count, grad = _triton().sigmoid_focal_fwd(
        x, targets, labels=labels, alpha=alpha, gamma=g, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduce=reduce, compute_grad=compute_grad, variant=v,
        scores=scores,
    )  # fmt: skip
    return loss, count, _empty_grad(x) if grad is None else grad


@_sigmoid_op.register_fake
def _sigmoid_fake(
    x: Tensor, targets: Tensor, labels: bool, alpha: float | None, gamma: float,
    ignore_index: int | None, label_smoothing: float, reduce: bool, compute_grad: bool,
    kind: str = "focal", epsilon: float = 0.0, gamma_neg: float = 0.0, clip: float = 0.0,
    iou_weighted: bool = True, thresholds: list[float] | None = None,
    gamma_values: list[float] | None = None, scores: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    loss = x.new_empty((), dtype=torch.float32) if reduce else x.new_empty(x.shape, dtype=torch.float32)
    count = x.new_empty((), dtype=torch.int64)
    grad = x.new_empty(x.shape, dtype=torch.float32 if x.dtype == torch.float16 else x.dtype) if compute_grad else x.new_empty((0,))
    return loss, count, grad


# ----------------------------------------------------------------------------- softmax


@torch.library.custom_op("focalkit::softmax_focal_fwd", mutates_args=(), device_types="cpu")
def _softmax_op(
    x: Tensor,
    targets: Tensor,
    alpha: Tensor | None,
    gamma: float,
    ignore_index: int,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    epsilon: float = 0.0,
    thresholds: list[float] | None = None,
    gamma_values: list[float] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    g, v = _unpack(gamma, "focal", epsilon, 0.0, 0.0, True, list(thresholds or ()), list(gamma_values or ()))
    loss, count, grad = cpu.softmax_focal_fwd(
        x, targets, alpha=alpha, gamma=g, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduce=reduce, compute_grad=compute_grad, variant=v,
    )  # fmt: skip
    return loss, count, _empty_grad(x) if grad is None else grad


@_softmax_op.register_kernel("cuda")
def _softmax_op_cuda(
    x: Tensor, targets: Tensor, alpha: Tensor | None, gamma: float, ignore_index: int,
    label_smoothing: float, reduce: bool, compute_grad: bool, epsilon: float = 0.0,
    thresholds: list[float] | None = None, gamma_values: list[float] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    g, v = _unpack(gamma, "focal", epsilon, 0.0, 0.0, True, list(thresholds or ()), list(gamma_values or ()))
    loss, count, grad = _triton().softmax_focal_fwd(
        x, targets, alpha=alpha, gamma=g, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduce=reduce, compute_grad=compute_grad, variant=v,
    )  # fmt: skip
    return loss, count, _empty_grad(x) if grad is None else grad


@_softmax_op.register_fake
def _softmax_fake(
    x: Tensor, targets: Tensor, alpha: Tensor | None, gamma: float, ignore_index: int,
    label_smoothing: float, reduce: bool, compute_grad: bool, epsilon: float = 0.0,
    thresholds: list[float] | None = None, gamma_values: list[float] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    pos = x.shape[:1] + x.shape[2:]
    loss = x.new_empty((), dtype=torch.float32) if reduce else x.new_empty(pos, dtype=torch.float32)
    count = x.new_empty((), dtype=torch.int64)
    grad = x.new_empty(x.shape, dtype=torch.float32 if x.dtype == torch.float16 else x.dtype) if compute_grad else x.new_empty((0,))
    return loss, count, grad


# ----------------------------------------------------------------------------- contract functions


def sigmoid_focal_fwd(
    x: Tensor,
    targets: Tensor,
    *,
    labels: bool,
    alpha: float | None,
    gamma: float,
    ignore_index: int | None,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    variant: Variant | None = None,
    scores: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The kernel contract of ``focalkit.backends`` through ``torch.ops.focalkit.sigmoid_focal_fwd``.

    Dispatches on x's device (CPU: C kernel; CUDA: Triton). See ``focalkit.kernels.cpu`` for the
    math and the argument meanings (``gamma`` a float or a PiecewiseGamma, ``variant`` the member
    of the focal family). Returns ``(loss, count, grad or None)``.
    """
    g, kind, eps, gneg, clip, iou, th, vals = _pack(gamma, variant)
    loss, count, grad = torch.ops.focalkit.sigmoid_focal_fwd(
        x, targets, bool(labels), None if alpha is None else float(alpha), g,
        None if ignore_index is None else int(ignore_index), float(label_smoothing), bool(reduce),
        bool(compute_grad), kind, eps, gneg, clip, iou, th, vals, scores,
    )  # fmt: skip
    return loss, count, grad if compute_grad else None


def softmax_focal_fwd(
    x: Tensor,
    targets: Tensor,
    *,
    alpha: Tensor | None,
    gamma: float,
    ignore_index: int,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    variant: Variant | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The kernel contract through ``torch.ops.focalkit.softmax_focal_fwd`` (softmax over dim 1)."""
    if alpha is not None:
        alpha = alpha.to(device=x.device, dtype=torch.float32)
    g, _, eps, _, _, _, th, vals = _pack(gamma, variant)
    loss, count, grad = torch.ops.focalkit.softmax_focal_fwd(
        x, targets, alpha, g, int(ignore_index), float(label_smoothing), bool(reduce),
        bool(compute_grad), eps, th, vals,
    )  # fmt: skip
    return loss, count, grad if compute_grad else None
