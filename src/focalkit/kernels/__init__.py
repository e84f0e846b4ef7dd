"""Fused focal-loss kernels and their registration with focalkit's dispatcher.

Importing this package (:mod:`focalkit.backends` does it on first use) registers two backends in
the registry (:mod:`focalkit.backends.registry`, a leaf module, so there is no import cycle):

* ``"fused"``: on CPU the C/OpenMP kernel (``focalkit.kernels.cpu``, built at install time), on
  CUDA the Triton kernels (``focalkit.kernels._triton``), called directly; under ``torch.compile``
  through the custom ops ``torch.ops.focalkit.sigmoid_focal_fwd`` / ``softmax_focal_fwd``
  (``focalkit.kernels.ops``, imported only then). Available when at least one of the two can run
  here; calls it cannot take (float64, ``weight``, tensor ``alpha`` for the sigmoid loss, a device
  without its kernel) go to the eager closed form. The softmax kernels take class indices and
  class probabilities (soft targets: mixup, cutmix, distillation), with or without label
  smoothing. On a machine without CUDA neither Triton nor ``torch._dynamo`` is imported.
  The focal family runs in the same kernels (:func:`_kernel_shape_ok`): Poly-1 ``epsilon`` and a
  ``PiecewiseGamma`` of up to :data:`MAX_THRESHOLDS` thresholds in both losses; the kinds
  asymmetric, quality and varifocal in the sigmoid loss, dense or class indices with ``scores``.
* ``"triton"``: the Triton kernels forced on any device, CPU included under Triton's interpreter
  (``TRITON_INTERPRET=1`` set before this package is imported); for tests.

Every Triton call goes through a first-call check against the eager closed form
(:mod:`focalkit.kernels._guard`): a variant that errors or disagrees warns once and falls back to
eager; ``fk.kernel_status()`` reports the checks; ``FOCALKIT_TRITON_CHECK=0`` turns them off.

``fk.set_backend("auto")`` (the default) picks ``"fused"`` where it supports the call.

Example:
    >>> import focalkit as fk
    >>> "eager" in fk.available_backends()
    True
"""

from __future__ import annotations

import os
from typing import Any

import torch

from focalkit._torch_compat import mark_trace_constant
from focalkit.backends.registry import Backend, CallInfo, register_backend
from focalkit.kernels import _guard, cpu

__all__ = ["MAX_THRESHOLDS", "cpu", "fused_available", "kernel_status", "triton_available"]

_FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() not in ("", "0", "false", "no")


def _triton_module() -> Any:
    try:
        from focalkit.kernels import _triton
    except Exception:  # pragma: no cover - broken triton install
        return None
    return _triton


def triton_available() -> bool:
    """Whether the Triton kernels can run here (CUDA, or CPU under ``TRITON_INTERPRET=1``).

    On a machine without CUDA and without the interpreter this is False without importing Triton.
    """
    if os.environ.get("FOCALKIT_DISABLE_TRITON", "0") not in ("", "0"):
        return False
    if not (_interpreting() or torch.cuda.is_available()):
        return False
    mod = _triton_module()
    return bool(mod is not None and mod.triton_available())


def _cuda_triton_available() -> bool:
    if _interpreting() or not torch.cuda.is_available():
        return False
    return triton_available()


def fused_available() -> bool:
    """Whether the ``"fused"`` backend has a kernel for at least one device here."""
    return cpu.available() or _cuda_triton_available()


#: Most thresholds of a PiecewiseGamma the kernels take (both kernels: ``MAX_THRESHOLDS``).
MAX_THRESHOLDS = cpu.MAX_THRESHOLDS


def _kernel_shape_ok(info: CallInfo) -> bool:
    """Whether the compiled kernels compute a call of this shape (else it runs on the eager path).

    The focal family runs in the same two passes as the plain loss: Poly-1 ``epsilon`` and a
    PiecewiseGamma of up to :data:`MAX_THRESHOLDS` thresholds in both; the kinds asymmetric,
    quality and varifocal in the sigmoid pass (dense targets, or class indices with or without
    per-position scores), with a float alpha only for varifocal (its negatives' weight).
    """
    if info.dtype not in _FLOATS or info.weight:
        return False
    kind = "focal" if info.variant is None else info.variant.kind
    if info.piecewise and (kind != "focal" or not 0 < info.thresholds <= MAX_THRESHOLDS):
        return False  # a longer PiecewiseGamma (or one whose length the call did not say): eager
    if info.op == "sigmoid":
        if kind in ("asymmetric", "quality") and info.alpha != "none":
            return False
        return info.alpha in ("none", "float") and not info.soft
    # softmax: class indices or class probabilities (soft targets), label smoothing either way
    return info.op == "softmax" and kind == "focal" and info.alpha in ("none", "tensor")


def _fused_supports(info: CallInfo) -> bool:
    if not _kernel_shape_ok(info):
        return False
    if info.device.type == "cpu":
        return cpu.available()
    if info.device.type == "cuda":
        return _cuda_triton_available()
    return False


def _triton_supports(info: CallInfo) -> bool:
    if not _kernel_shape_ok(info):
        return False
    return (info.device.type == "cuda" or (info.device.type == "cpu" and _interpreting())) and triton_available()


def _triton_sigmoid(x: torch.Tensor, targets: torch.Tensor, **kw: Any) -> Any:
    return _guard.guarded("sigmoid", _triton_module().sigmoid_focal_fwd, x, targets, **kw)


def _triton_softmax(x: torch.Tensor, targets: torch.Tensor, **kw: Any) -> Any:
    return _guard.guarded("softmax", _triton_module().softmax_focal_fwd, x, targets, **kw)


def _fused_sigmoid(x: torch.Tensor, targets: torch.Tensor, **kw: Any) -> Any:
    """The ``"fused"`` kernel: the custom op under torch.compile, a direct call otherwise."""
    if torch.compiler.is_compiling():
        from focalkit.kernels import ops  # registers the custom ops (imports torch._library)

        return ops.sigmoid_focal_fwd(x, targets, **kw)
    if x.device.type == "cpu":
        return cpu.sigmoid_focal_fwd(x, targets, **kw)
    return _triton_sigmoid(x, targets, **kw)


def _fused_softmax(x: torch.Tensor, targets: torch.Tensor, **kw: Any) -> Any:
    """The ``"fused"`` kernel: the custom op under torch.compile, a direct call otherwise."""
    if torch.compiler.is_compiling():
        from focalkit.kernels import ops

        return ops.softmax_focal_fwd(x, targets, **kw)
    if x.device.type == "cpu":
        return cpu.softmax_focal_fwd(x, targets, **kw)
    return _triton_softmax(x, targets, **kw)


def kernel_status() -> dict[str, Any]:
    """What the compiled kernels can do here and what the Triton first-call check found.

    Example:
        >>> import focalkit as fk
        >>> sorted(fk.kernel_status())
        ['cpu_kernel', 'triton', 'triton_checks']
    """
    return {
        "cpu_kernel": "available" if cpu.available() else f"unavailable: {cpu.load_error()}",
        "triton": "available" if triton_available() else "unavailable (no CUDA device, or Triton missing)",
        "triton_checks": _guard.status(),
    }


# Availability is a property of the machine: under torch.compile it is read once at trace time.
for _fn in (triton_available, _cuda_triton_available, fused_available, cpu.available):
    mark_trace_constant(_fn)


#: The ``"fused"`` backend (the eager fast path of the losses, ``focalkit._fastpath``, calls the C
#: kernel directly when the dispatcher answers with this one).
#: Its CPU answers depend on the call alone (the C kernel is loaded once), so the dispatcher caches them.
FUSED = Backend(
    "fused", _fused_sigmoid, _fused_softmax, supports=_fused_supports, is_available=fused_available,
    cpu_answers_fixed=True,
)  # fmt: skip


def _register() -> None:
    register_backend(FUSED)
    register_backend(
        Backend(
            "triton", _triton_sigmoid, _triton_softmax,
            supports=_triton_supports, is_available=triton_available,
        )
    )  # fmt: skip


_register()
