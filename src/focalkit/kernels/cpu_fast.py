"""The CPU kernel's entry points for the losses' eager fast path (:mod:`focalkit._fastpath`).

:func:`focalkit.kernels.cpu.softmax_focal_fwd` and its sigmoid sibling check their arguments,
convert dtypes and build tensors for any caller. The fast path has checked everything already, and
on a small batch the loss costs its per-call overhead, not its arithmetic, so it calls these
instead: each takes data pointers and sizes, runs one exported kernel, and returns
``(loss, den, nbad)``:

* ``loss``: the reduced loss as a Python float, rounded to float32 exactly as the general path's
  0-d tensor ops round it (``sum``: ``f32(total)``; ``mean``: ``f32(f32(total) / den)``);
* ``den``: the float32 denominator ``f32(max(count, 1))`` for ``mean``, 0.0 for ``sum``;
* ``nbad``: labels outside [0, C) that are not ``ignore_index`` (counted by the pass), or
  (``check``) float targets outside [0, 1] or NaN (class probabilities: counted by the softmax pass
  as it reads them; the sigmoid's dense targets: one read before the pass, which then does not
  run); when nonzero, the loss is NaN and the caller takes the general path, which raises the
  validation error.

``scale(g, code, numel, grad_out, den)`` multiplies a saved gradient in place by
``f = f32(grad_out / den)`` (``den`` 0: by ``f32(grad_out)``), float32 or bfloat16 (computed in
float32 and rounded to nearest even, as ``Tensor.mul_`` with a Python scalar), and returns ``f``.

Two implementations, same results (tests/kernels/test_cpu_fast.py): the kernel library's own
Python entry points (``_focal_cpu_py.c``, compiled into the same shared library, a few hundred
nanoseconds a call), and the same steps over ctypes (microseconds: argument conversion) for a build
that only ctypes can load, or another build swapped in by the benchmark (``cpu._lib``).
"""

from __future__ import annotations

import ctypes
import importlib
import os
from typing import Any

import torch

from focalkit.kernels import cpu

__all__ = ["entry_points"]

_f32 = ctypes.c_float
_i64, _byref = ctypes.c_int64, ctypes.byref
_cache: list[Any] = [None, None]  # [the ctypes library, its entry points]


def entry_points() -> Any:
    """The entry points for the loaded kernel (``cpu._lib``), or None when it is not available."""
    lib = cpu._lib if cpu._loaded else cpu._load()
    if lib is None:
        return None
    if _cache[0] is not lib:
        _cache[1] = _native(lib) or _CtypesEntryPoints(lib)
        _cache[0] = lib
    return _cache[1]


def _native(lib: Any) -> Any:
    """The extension module of the library file ``lib`` was loaded from, if it is one."""
    loaded, path = cpu._lib_file
    if lib is not loaded or path is None:
        return None
    try:
        mod = importlib.import_module("focalkit.kernels._focal_cpu")
    except ImportError:
        return None
    same = os.path.realpath(getattr(mod, "__file__", "") or "") == os.path.realpath(path)
    return mod if same and hasattr(mod, "softmax_labels") else None


def _result(total: float, count: int, mean: int, nbad: int) -> tuple[float, float, int]:
    if nbad:
        return float("nan"), 0.0, nbad
    ft = _f32(total).value
    if not mean:
        return ft, 0.0, 0
    den = _f32(float(max(count, 1))).value
    return _f32(ft / den).value, den, 0


def _outside_unit(t_ptr: int, tcode: int, numel: int) -> int:
    """Values outside [0, 1] (NaN included) of a float32 / bfloat16 array (the ctypes fallback)."""
    if numel == 0:
        return 0
    dtype = torch.float32 if tcode == 0 else torch.bfloat16
    raw = (ctypes.c_uint8 * (numel * dtype.itemsize)).from_address(t_ptr)
    t = torch.frombuffer(raw, dtype=dtype)
    return int((~((t >= 0) & (t <= 1))).sum())


class _CtypesEntryPoints:
    """The entry points of ``_focal_cpu_py.c`` over ctypes (same arguments, same results)."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib

    def softmax_labels(self, x: int, xcode: int, y: int, n: int, c: int, inner: int, gamma: float,
                       ignore: int, ls: float, grad: int | None, nthreads: int, mean: int) -> tuple:  # fmt: skip
        count, nbad = _i64(0), _i64(0)
        total = 0.0
        if n * c * inner > 0:
            total = self._lib.fk_softmax_labels(x, xcode, y, n, c, inner, None, gamma, ignore, ls, None, grad,
                                                _byref(count), _byref(nbad), nthreads)  # fmt: skip
        return _result(total, count.value, mean, nbad.value)

    def softmax_soft(self, x: int, xcode: int, t: int, tcode: int, n: int, c: int, inner: int, gamma: float,
                     ls: float, grad: int | None, nthreads: int, mean: int, check: int) -> tuple:  # fmt: skip
        count, nbad = _i64(0), _i64(0)
        total = 0.0
        if n * c * inner > 0:
            if hasattr(self._lib, "fk_softmax_soft_nbad"):  # the pass counts targets outside [0, 1]
                total = self._lib.fk_softmax_soft_nbad(x, xcode, t, tcode, n, c, inner, None, gamma, ls, None, grad,
                                                       _byref(count), _byref(nbad), nthreads)  # fmt: skip
            else:  # an older build (ABI < 5) swapped in by the benchmark
                nbad.value = _outside_unit(t, tcode, n * c * inner)
                total = self._lib.fk_softmax_soft(x, xcode, t, tcode, n, c, inner, None, gamma, ls, None, grad,
                                                  _byref(count), nthreads)  # fmt: skip
        return _result(total, count.value, mean, nbad.value if check else 0)

    def sigmoid_dense(self, x: int, xcode: int, t: int, numel: int, alpha: float, has_alpha: int, gamma: float,
                      ls: float, grad: int | None, nthreads: int, mean: int, check: int) -> tuple:  # fmt: skip
        count = _i64(0)
        nbad = _outside_unit(t, 0, numel) if check else 0
        total = 0.0
        if not nbad and numel > 0:
            total = self._lib.fk_sigmoid_dense(x, xcode, t, numel, alpha, has_alpha, gamma, 0, 0.0, ls, None, grad,
                                               _byref(count), nthreads)  # fmt: skip
        return _result(total, count.value, mean, nbad)

    @staticmethod
    def scale(g: int, code: int, numel: int, grad_out: float, den: float) -> float:
        f = _f32(grad_out / den if den != 0.0 else grad_out).value
        if numel:
            dtype = torch.float32 if code == 0 else torch.bfloat16
            raw = (ctypes.c_uint8 * (numel * dtype.itemsize)).from_address(g)
            torch.frombuffer(raw, dtype=dtype).mul_(f)
        return f
