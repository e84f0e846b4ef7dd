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
* target values are checked by the kernel's entry point (:mod:`focalkit.kernels.cpu_fast`): class
  indices outside [0, C) that are not ``ignore_index`` are counted in the pass that computes the
  loss, float targets outside [0, 1] (NaN included) in one read before it (multi-threaded from
  65,536 elements); on bad targets the fast path gives the call to the general path, which raises
  the same ``ValueError`` as before;
* the dispatcher is asked with a prebuilt :class:`~focalkit.backends.registry.CallInfo` (its answer
  is cached), and only its ``"fused"`` answer on CPU is taken here;
* the kernel is called through the library's own Python entry points, not ctypes, and returns the
  reduced loss already rounded to float32 as the 0-d tensor ops of the general path round it
  (tests/core/test_fastpath.py compares the two paths bit for bit);
* one autograd Function node (:class:`focalkit._autograd.ScalarLossFunction`) with the fewest
  arguments, whose backward scales the saved gradient in place through its pointer.

Each function returns the loss, or None when the call is not the common one (the caller then runs
the general path). Taken: CPU, float32 or bfloat16 contiguous logits (not a tensor subclass),
reduction ``"mean"`` or ``"sum"``, no ``weight``/``normalizer``, the plain focal loss (``epsilon``
0, a float ``gamma``), the default backend (or ``"fused"``), outside ``torch.compile``, functorch
transforms, ``torch.jit.trace`` and autocast; the softmax loss with int64 class indices, or float32
class probabilities of the logits' shape (mixup/cutmix/distillation), and no ``alpha``; the
sigmoid loss with float32 (or bfloat16 / float16) targets of the logits' shape that do not require
grad, a float ``alpha`` (or None), no ``ignore_index`` and binary label smoothing.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import torch
from torch import Tensor

from focalkit import backends
from focalkit._autograd import ScalarLossFunction
from focalkit._torch_compat import direct_apply, plain_eager
from focalkit.backends.registry import CallInfo

__all__ = ["sigmoid_focal_loss", "softmax_focal_loss"]

_TENSOR_TYPES = (Tensor, torch.nn.Parameter)
_DTYPES = (torch.float32, torch.bfloat16)
#: Sigmoid targets: float32, or a type float32 holds exactly (the kernel reads float32 targets).
_DTYPES_T = (torch.float32, torch.bfloat16, torch.float16)
_CPU = torch.device("cpu")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FINITE_MAX = 1.7976931348623157e308
#: The CallInfo of the fast path's calls, per logits dtype, built once.
_LABELS = {dt: CallInfo(op="softmax", device=_CPU, dtype=dt, labels=True, soft=False, alpha="none", weight=False,
                        reduce=True) for dt in _DTYPES}  # fmt: skip
_SIGMOID = {dt: CallInfo(op="sigmoid", device=_CPU, dtype=dt, labels=False, soft=False, alpha="float",
                         weight=False, reduce=True) for dt in _DTYPES}  # fmt: skip
_SIGMOID_NO_ALPHA = {dt: CallInfo(op="sigmoid", device=_CPU, dtype=dt, labels=False, soft=False, alpha="none",
                                  weight=False, reduce=True) for dt in _DTYPES}  # fmt: skip
_SOFT = {dt: CallInfo(op="softmax", device=_CPU, dtype=dt, labels=False, soft=True, alpha="none", weight=False,
                      reduce=True) for dt in _DTYPES}  # fmt: skip
_kernels: Any = None
_cpu_fast_module: Any = None
#: The fused backend, once the dispatcher has given it a call.
_FUSED: list[Any] = [None]
#: Gradient buffers of at least this many elements come from the CPU kernel's pool.
_POOLED = 1 << 18
#: ScalarLossFunction.apply without its Python layer (the fast path runs outside functorch transforms).
_apply = direct_apply(ScalarLossFunction)


def _fused() -> Any:
    """The ``focalkit.kernels`` package (imported on first use, as the dispatcher does)."""
    global _kernels
    if _kernels is None:
        _kernels = importlib.import_module("focalkit.kernels")
    return _kernels


def _cpu_fast() -> Any:
    """The CPU kernel's fast entry points module (imported on first use)."""
    global _cpu_fast_module
    if _cpu_fast_module is None:
        _cpu_fast_module = importlib.import_module("focalkit.kernels.cpu_fast")
    return _cpu_fast_module


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
        and weight is None
        and normalizer is None
        and (type(epsilon) is float or type(epsilon) is int)
        and epsilon == 0  # the plain focal loss (check_epsilon passes); Poly-1: the general path
        and (reduction == "mean" or reduction == "sum")
        and type(reduction) is str
        and (0 <= gamma <= _FINITE_MAX if type(gamma) is float else _real(gamma) and gamma >= 0)  # check_gamma
        and (0 <= label_smoothing <= 1 if type(label_smoothing) is float else _real(label_smoothing)
             and 0 <= label_smoothing <= 1)  # check_label_smoothing
        and logits.is_cpu
        and logits.is_contiguous()
        and (logits.dtype is torch.float32 or logits.dtype is torch.bfloat16 and not torch.is_autocast_enabled("cpu"))
        and plain_eager()
    )  # fmt: skip


def _entry_points(info: CallInfo) -> Any:
    """The kernel's fast entry points when the dispatcher gives ``info`` to the fused CPU kernel,
    else None (the caller then runs the general path)."""
    backend = backends.resolve(info)  # the module attribute: tests record the backends reached
    if backend is None or backend is not _FUSED[0]:
        if backend is None or backend.name != "fused" or backend is not _fused().FUSED:
            return None  # another backend, or a plugin registered under the name "fused"
        _FUSED[0] = backend
    return _cpu_fast().entry_points()


def _grad_buffer(x: Tensor) -> Tensor | None:
    """The gradient buffer of a call that needs one (from the kernel's pool when large), else None."""
    if not (x.requires_grad and torch.is_grad_enabled()):
        return None
    return torch.empty_like(x) if x.numel() < _POOLED else _fused().cpu._grad_buffer(x)


def softmax_focal_loss(
    logits: Any, targets: Any, alpha: Any, gamma: Any, reduction: Any, weight: Any, normalizer: Any,
    ignore_index: Any, label_smoothing: Any, epsilon: Any, composed_loss: Callable[..., Tensor],
    validate_args: Any = True,
) -> Tensor | None:
    """:func:`focalkit.softmax_focal_loss` of the common call, or None (see the module docstring)."""
    if not (
        type(targets) is Tensor
        and alpha is None
        and type(ignore_index) is int
        and _INT64_MIN <= ignore_index <= _INT64_MAX  # check_ignore_index (unused by soft targets)
        and _common(logits, reduction, gamma, label_smoothing, weight, normalizer, epsilon)
        and targets.is_cpu
        and logits.dim() >= 2
    ):
        return None
    shape = logits.shape
    soft = targets.dtype is torch.float32
    if soft:  # class probabilities (mixup, cutmix, distillation): float32, the logits' shape
        if targets.requires_grad or targets.shape != shape or shape[1] < 2 or targets.numel() == 0:
            return None  # d(loss)/d(targets), or a shape the general path reports
        check = bool(validate_args)  # targets in [0, 1], NaN fails (parse_softmax_targets): by the entry point
        ep = _entry_points(_SOFT[logits.dtype])
    else:
        if targets.dtype is not torch.int64 or shape[1] < 2:
            return None
        if (targets.dim() != 1 or targets.shape[0] != shape[0]) if len(shape) == 2 else (
            targets.shape != shape[:1] + shape[2:]
        ):
            return None  # a shape the general path reports
        ep = _entry_points(_LABELS[logits.dtype])
    if ep is None:
        return None
    n, c = shape[0], shape[1]
    grad = _grad_buffer(logits)
    g, ls = float(gamma), float(label_smoothing)
    t = targets if targets.is_contiguous() else targets.contiguous()
    args = (logits.data_ptr(), 0 if logits.dtype is torch.float32 else 1, t.data_ptr())
    if soft:
        args += (0, n, c, logits.numel() // max(n * c, 1), g, ls)
        loss, den, nbad = ep.softmax_soft(*args, None if grad is None else grad.data_ptr(), torch.get_num_threads(),
                                          reduction == "mean", check)  # fmt: skip
    else:
        args += (n, c, logits.numel() // max(n * c, 1), g, ignore_index, ls)
        loss, den, nbad = ep.softmax_labels(*args, None if grad is None else grad.data_ptr(),
                                            torch.get_num_threads(), reduction == "mean")  # fmt: skip
    if nbad:
        return None  # the general path raises the validation error
    if grad is None:  # the float32 value, rounded once more for bfloat16 logits (as out.to(x.dtype))
        return torch.scalar_tensor(loss, dtype=logits.dtype)
    kw = {"alpha": None, "gamma": g, "ignore_index": ignore_index, "label_smoothing": ls}
    return _apply(logits, loss, grad, (den, ep.scale, (composed_loss, "softmax", targets, kw, reduction), logits.dtype))


def sigmoid_focal_loss(
    logits: Any, targets: Any, alpha: Any, gamma: Any, reduction: Any, weight: Any, normalizer: Any,
    ignore_index: Any, label_smoothing: Any, validate_args: Any, label_smoothing_mode: Any, epsilon: Any,
    composed_loss: Callable[..., Tensor],
) -> Tensor | None:
    """:func:`focalkit.sigmoid_focal_loss` of the common call, or None (see the module docstring)."""
    if not (
        type(targets) is Tensor
        and ignore_index is None
        and (alpha is None or (_real(alpha) and 0 <= alpha <= 1))  # check_alpha_scalar
        and label_smoothing_mode == "binary"
        and type(label_smoothing_mode) is str
        and _common(logits, reduction, gamma, label_smoothing, weight, normalizer, epsilon)
        and targets.dtype in _DTYPES_T
        and targets.is_cpu
        and not targets.requires_grad  # d(loss)/d(targets): the composed path
        and targets.shape == logits.shape
        and targets.numel() > 0
    ):
        return None
    if targets.dtype is not torch.float32:
        targets = targets.float()  # exact; the kernel reads float32 targets
    check = bool(validate_args)  # targets in [0, 1], NaN fails: by the entry point
    ep = _entry_points(_SIGMOID[logits.dtype] if alpha is not None else _SIGMOID_NO_ALPHA[logits.dtype])
    if ep is None:
        return None
    grad = _grad_buffer(logits)
    a, g, ls = (0.0 if alpha is None else float(alpha)), float(gamma), float(label_smoothing)
    t = targets if targets.is_contiguous() else targets.contiguous()
    loss, den, nbad = ep.sigmoid_dense(
        logits.data_ptr(), 0 if logits.dtype is torch.float32 else 1, t.data_ptr(), logits.numel(), a,
        alpha is not None, g, ls, None if grad is None else grad.data_ptr(), torch.get_num_threads(),
        reduction == "mean", check,
    )  # fmt: skip
    if nbad:
        return None  # the general path raises the validation error
    if grad is None:
        return torch.scalar_tensor(loss, dtype=logits.dtype)
    kw = {"labels": False, "alpha": None if alpha is None else a, "gamma": g, "ignore_index": None,
          "label_smoothing": ls}  # fmt: skip
    return _apply(logits, loss, grad, (den, ep.scale, (composed_loss, "sigmoid", targets, kw, reduction), logits.dtype))
