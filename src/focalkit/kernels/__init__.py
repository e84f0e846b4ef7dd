"""Fused focal-loss kernels and their registration with focalkit's dispatcher.

Importing this package (:mod:`focalkit.backends` does it on first use) registers two backends in
the registry (:mod:`focalkit.backends.registry`, a leaf module, so there is no import cycle):

* ``"fused"``: the custom ops ``torch.ops.focalkit.sigmoid_focal_fwd`` / ``softmax_focal_fwd``
  (``focalkit.kernels.ops``): on CPU the C/OpenMP kernel (``focalkit.kernels.cpu``, built at install
  time), on CUDA the Triton kernels (``focalkit.kernels._triton``). Available when at least one of
  the two can run here; calls it cannot take (float64, ``weight``, tensor ``alpha`` for the sigmoid
  loss, soft targets for the softmax loss, a device without its kernel) go to the eager closed form.
* ``"triton"``: the Triton kernels forced on any device, CPU included under Triton's interpreter
  (``TRITON_INTERPRET=1`` set before this package is imported); for tests.

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
from focalkit.kernels import cpu

__all__ = ["cpu", "fused_available", "triton_available"]

_FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def _triton_module() -> Any:
    try:
        from focalkit.kernels import _triton
    except Exception:  # pragma: no cover - broken triton install
        return None
    return _triton


def triton_available() -> bool:
    """Whether the Triton kernels can run here (CUDA, or CPU under ``TRITON_INTERPRET=1``)."""
    if os.environ.get("FOCALKIT_DISABLE_TRITON", "0") not in ("", "0"):
        return False
    mod = _triton_module()
    return bool(mod is not None and mod.triton_available())


def _cuda_triton_available() -> bool:
    mod = _triton_module()
    if mod is None or mod._interpreting():
        return False
    return mod.triton_available()


def fused_available() -> bool:
    """Whether the ``"fused"`` backend has a kernel for at least one device here."""
    return cpu.available() or _cuda_triton_available()


def _kernel_shape_ok(info: CallInfo) -> bool:
    if info.dtype not in _FLOATS or info.weight or info.soft:
        return False
    if info.op == "sigmoid":
        return info.alpha in ("none", "float")
    return info.op == "softmax" and info.alpha in ("none", "tensor")


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
    mod = _triton_module()
    if mod is None:
        return False
    return info.device.type == "cuda" or (info.device.type == "cpu" and mod._interpreting())


def _triton_sigmoid(x: torch.Tensor, targets: torch.Tensor, **kw: Any) -> Any:
    return _triton_module().sigmoid_focal_fwd(x, targets, **kw)


def _triton_softmax(x: torch.Tensor, targets: torch.Tensor, **kw: Any) -> Any:
    return _triton_module().softmax_focal_fwd(x, targets, **kw)


# Availability is a property of the machine: under torch.compile it is read once at trace time.
for _fn in (triton_available, _cuda_triton_available, fused_available, cpu.available):
    mark_trace_constant(_fn)


def _register() -> None:
    from focalkit.kernels import ops

    register_backend(
        Backend(
            "fused", ops.sigmoid_focal_fwd, ops.softmax_focal_fwd,
            supports=_fused_supports, is_available=fused_available,
        )
    )  # fmt: skip
    register_backend(
        Backend(
            "triton", _triton_sigmoid, _triton_softmax,
            supports=_triton_supports, is_available=triton_available,
        )
    )  # fmt: skip


_register()
