"""The eager fast path of the losses: the common call on CPU with the least Python in between.

Most classifiers train with small loss tensors, where a loss costs its Python and dispatch
overhead, not its arithmetic: ``F.cross_entropy`` takes ~5 us forward at (32, 10), and the general
path of :func:`focalkit.softmax_focal_loss` (argument checks, target checks, the dispatcher, the
autograd Function, 0-d tensor arithmetic for the reduction) took ~60 times that. This module takes
the call that most training loops make and runs it with the same checks, the same kernel and the
same float32 arithmetic, in fewer, cheaper steps:

* argument checks on exact types (``type(gamma) is float``), each one the condition of the check
  function of :mod:`focalkit._validation` that the general path calls; any other argument (a
  tensor gamma, a weight, a normalizer, ...) goes to the general path, which checks it there;
* the range of class indices is checked by the C kernel in the pass that computes the loss (it
  counts labels outside [0, C) that are not ``ignore_index``); on such labels the fast path gives
  the call to the general path, which raises the same ``ValueError`` as before;
* the dispatcher is asked with a prebuilt :class:`~focalkit.backends.registry.CallInfo` (its answer
  is cached), and only its ``"fused"`` answer on CPU is taken here;
* the reduction is done on Python floats rounded to float32 (:func:`focalkit._autograd.f32`): the
  same values as the 0-d tensor ops of the general path (tests/core/test_fastpath.py compares the
  two bit for bit).

Each function returns the loss, or None when the call is not the common one (the caller then runs
the general path). Taken: CPU, float32 or bfloat16 contiguous logits (not a tensor subclass),
reduction ``"mean"`` or ``"sum"``, no ``weight``/``normalizer``, the plain focal loss (``epsilon``
0, a float ``gamma``), the default backend (or
``"fused"``), outside ``torch.compile``, functorch transforms, ``torch.jit.trace`` and autocast;
the softmax loss with int64 class indices, or float32 class probabilities of the logits' shape
(mixup/cutmix/distillation, checked in [0, 1]), and no ``alpha``; the sigmoid loss with float32 (or bfloat16 /
float16) targets of the logits' shape that do not require grad, a float ``alpha`` (or None), no ``ignore_index`` and binary label smoothing.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable

import torch
from torch import Tensor

from focalkit import _validation as V, backends
from focalkit._autograd import ScalarLossFunction, f32
from focalkit._torch_compat import direct_apply, transforms_active
from focalkit.backends.registry import CallInfo

__all__ = ["sigmoid_focal_loss", "softmax_focal_loss"]

_TENSOR_TYPES = (Tensor, torch.nn.Parameter)
_DTYPES = (torch.float32, torch.bfloat16)
#: Sigmoid targets: float32, or a type float32 holds exactly (the kernel reads float32 targets).
_DTYPES_T = (torch.float32, torch.bfloat16, torch.float16)
_CPU = torch.device("cpu")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FINITE_MAX = 1.7976931348623157e308
#: The CallInfo of the fast path's calls, per (op, dtype), built once.
_INFO = {
    (op, dt): CallInfo(op=op, device=_CPU, dtype=dt, labels=op == "softmax", soft=False,
                       alpha="none" if op == "softmax" else "float", weight=False, reduce=True)
    for op in ("sigmoid", "softmax") for dt in _DTYPES
}  # fmt: skip
_SIGMOID_NO_ALPHA = {dt: CallInfo(op="sigmoid", device=_CPU, dtype=dt, labels=False, soft=False, alpha="none",
                                  weight=False, reduce=True) for dt in _DTYPES}  # fmt: skip
_SOFT = {dt: CallInfo(op="softmax", device=_CPU, dtype=dt, labels=False, soft=True, alpha="none", weight=False,
                      reduce=True) for dt in _DTYPES}  # fmt: skip
_kernels: Any = None
#: ScalarLossFunction.apply without its Python layer (the fast path runs outside functorch transforms).
_apply = direct_apply(ScalarLossFunction)


def _fused() -> Any:
    """The ``focalkit.kernels`` package (imported on first use, as the dispatcher does)."""
    global _kernels
    if _kernels is None:
        _kernels = importlib.import_module("focalkit.kernels")
    return _kernels


def _real(v: Any) -> bool:
    """A finite Python float or int (not bool): what :func:`focalkit._validation.check_real` accepts
    without looking further (NumPy numbers and tensors go to the general path)."""
    t = type(v)
    return (t is float and -_FINITE_MAX <= v <= _FINITE_MAX) or (t is int and -(2**53) <= v <= 2**53)


def _common(
    logits: Any, reduction: Any, gamma: Any, label_smoothing: Any, weight: Any, normalizer: Any, epsilon: Any
) -> bool:
    """The checks both losses share, on exact types; False sends the call to the general path."""
    return (
        type(logits) in _TENSOR_TYPES
        and (type(epsilon) is float or type(epsilon) is int)
        and epsilon == 0  # the plain focal loss (check_epsilon passes); Poly-1: the general path
        and logits.dtype in _DTYPES
        and logits.is_cpu
        and (reduction == "mean" or reduction == "sum")
        and type(reduction) is str
        and weight is None
        and normalizer is None
        and _real(gamma)
        and gamma >= 0  # check_gamma
        and _real(label_smoothing)
        and 0 <= label_smoothing <= 1  # check_label_smoothing
        and logits.is_contiguous()
        and not torch.compiler.is_compiling()
        and not transforms_active()
        and (logits.dtype == torch.float32 or not torch.is_autocast_enabled("cpu"))
    )


def _run(
    info: CallInfo, kernel_name: str, x: Tensor, targets: Tensor, kw: dict[str, Any], reduction: str,
    composed_loss: Callable[..., Tensor],
) -> Tensor | None:
    """Resolve, run the C kernel, wrap the result; None when the call belongs to the general path.

    ``composed_loss(op, targets, kwargs, reduction, normalizer, x)`` is the general path's composed
    loss, the ``recompute`` of a differentiable backward (``create_graph=True``).
    """
    backend = backends.resolve(info)  # the module attribute: tests record the backends reached
    if backend is None or backend.name != "fused":
        return None
    kernels = _fused()
    if backend is not kernels.FUSED:  # a plugin registered under the name "fused"
        return None
    cpu = kernels.cpu
    need_grad = x.requires_grad and torch.is_grad_enabled()
    try:
        total, count, grad = getattr(cpu, kernel_name)(
            x, targets, **kw, reduce=True, compute_grad=need_grad, scalars=True
        )
    except cpu.BadLabelsError:
        return None  # the general path raises the same error as before (validate_args message)
    den = f32(float(max(count, 1))) if reduction == "mean" else None
    if need_grad:
        op = info.op

        def recompute() -> Callable[[Tensor], Tensor]:
            return functools.partial(composed_loss, op, targets, kw, reduction, None)

        return _apply(x, total, den, grad, recompute, x.dtype)
    # the float32 value, rounded once more for bfloat16 logits (as out.to(x.dtype) of the general path)
    return torch.scalar_tensor(f32(total) if den is None else f32(f32(total) / den), dtype=x.dtype)


def softmax_focal_loss(
    logits: Any, targets: Any, alpha: Any, gamma: Any, reduction: Any, weight: Any, normalizer: Any,
    ignore_index: Any, label_smoothing: Any, epsilon: Any, composed_loss: Callable[..., Tensor],
    validate_args: Any = True,
) -> Tensor | None:
    """:func:`focalkit.softmax_focal_loss` of the common call, or None (see the module docstring)."""
    if type(targets) is Tensor and targets.dtype == torch.float32:
        return _softmax_soft(logits, targets, alpha, gamma, reduction, weight, normalizer, ignore_index,
                             label_smoothing, epsilon, composed_loss, validate_args)  # fmt: skip
    if not (
        alpha is None
        and type(targets) is Tensor
        and targets.dtype == torch.int64
        and type(ignore_index) is int
        and _INT64_MIN <= ignore_index <= _INT64_MAX
        and _common(logits, reduction, gamma, label_smoothing, weight, normalizer, epsilon)
        and logits.dim() >= 2
        and logits.shape[1] >= 2
        and targets.shape == logits.shape[:1] + logits.shape[2:]
    ):
        return None
    kw = {"alpha": None, "gamma": float(gamma), "ignore_index": ignore_index, "label_smoothing": float(label_smoothing)}
    info = _INFO["softmax", logits.dtype]
    return _run(info, "softmax_focal_fwd", logits, targets, kw, reduction, composed_loss)


def _softmax_soft(
    logits: Any, targets: Tensor, alpha: Any, gamma: Any, reduction: Any, weight: Any, normalizer: Any,
    ignore_index: Any, label_smoothing: Any, epsilon: Any, composed_loss: Callable[..., Tensor],
    validate_args: Any,
) -> Tensor | None:
    """Class-probability targets (mixup, cutmix, distillation): float32, the logits' shape."""
    if not (
        alpha is None
        and type(ignore_index) is int
        and _INT64_MIN <= ignore_index <= _INT64_MAX  # check_ignore_index (unused by soft targets)
        and not targets.requires_grad  # d(loss)/d(targets): the composed path
        and _common(logits, reduction, gamma, label_smoothing, weight, normalizer, epsilon)
        and logits.dim() >= 2
        and logits.shape[1] >= 2
        and targets.shape == logits.shape
        and targets.numel() > 0
    ):
        return None
    if validate_args:  # targets in [0, 1] (NaN fails), as parse_softmax_targets; else the general path
        r = V.small_range(targets, None)
        if r is None:
            lo, hi = torch.aminmax(targets)
            r = (float(lo), float(hi))
        if not r or not (r[0] >= 0 and r[1] <= 1):
            return None
    kw = {"alpha": None, "gamma": float(gamma), "ignore_index": ignore_index, "label_smoothing": float(label_smoothing)}
    return _run(_SOFT[logits.dtype], "softmax_focal_fwd", logits, targets, kw, reduction, composed_loss)


def sigmoid_focal_loss(
    logits: Any, targets: Any, alpha: Any, gamma: Any, reduction: Any, weight: Any, normalizer: Any,
    ignore_index: Any, label_smoothing: Any, validate_args: Any, label_smoothing_mode: Any, epsilon: Any,
    composed_loss: Callable[..., Tensor],
) -> Tensor | None:
    """:func:`focalkit.sigmoid_focal_loss` of the common call, or None (see the module docstring)."""
    if not (
        (alpha is None or (_real(alpha) and 0 <= alpha <= 1))  # check_alpha_scalar
        and ignore_index is None
        and label_smoothing_mode == "binary"
        and type(label_smoothing_mode) is str
        and type(targets) is Tensor
        and targets.dtype in _DTYPES_T
        and not targets.requires_grad  # d(loss)/d(targets): the composed path
        and _common(logits, reduction, gamma, label_smoothing, weight, normalizer, epsilon)
        and targets.shape == logits.shape
        and targets.numel() > 0
    ):
        return None
    if targets.dtype is not torch.float32:
        targets = targets.float()  # exact; the kernel reads float32 targets (it would convert them)
    if validate_args:  # targets in [0, 1] (NaN fails): on small tensors here, else the general path
        r = V.small_range(targets, None)
        if not r or not (r[0] >= 0 and r[1] <= 1):
            return None
    a = None if alpha is None else float(alpha)
    kw = {"labels": False, "alpha": a, "gamma": float(gamma), "ignore_index": None,
          "label_smoothing": float(label_smoothing)}  # fmt: skip
    info = _INFO["sigmoid", logits.dtype] if a is not None else _SIGMOID_NO_ALPHA[logits.dtype]
    return _run(info, "sigmoid_focal_fwd", logits, targets, kw, reduction, composed_loss)
