"""A first-call check of the Triton kernels: a safe GPU path for a kernel no CI machine has run.

The first call of each kernel variant (op, dtype, target form, device type, and for the focal
family its member: kind, Poly-1, piecewise gamma) also computes the eager
closed form (:mod:`focalkit.backends.closed_form`) on the same inputs and compares loss, count and
gradient. A compile or launch error, or a mismatch beyond the tolerance below, makes focalkit warn
once and compute that variant with the closed form from then on; a variant that matched runs the
kernel alone afterwards. :func:`status` reports what was checked (``fk.kernel_status()``).

``FOCALKIT_TRITON_CHECK=0`` turns the check off once you trust the kernels on your machine. A call
with non-finite logits is not used for the check (it runs the kernel and leaves the variant
unchecked): the kernels propagate NaN/inf as PyTorch's losses do, which the closed form need not
match value for value.

Tolerances (relative to the largest magnitude of the reference, so cancellation in a sum does not
count as an error): float32 1e-4, bfloat16/float16 2e-2 (both are computed in float32 and stored in
the input's precision); differences below an absolute 1e-6 (float32) or 1e-3 (16-bit) never count:
they are below the resolution of any loss a training step sums.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any, Callable

import torch
from torch import Tensor

from focalkit.backends import closed_form

__all__ = ["guarded", "reset", "status"]

_TOL = {torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 2e-2}
_ATOL = {torch.float32: 1e-6, torch.bfloat16: 1e-3, torch.float16: 1e-3}
_lock = threading.Lock()
_verdicts: dict[tuple[str, ...], str] = {}  # variant -> "ok" | "failed: why"


def _enabled() -> bool:
    return os.environ.get("FOCALKIT_TRITON_CHECK", "1").strip().lower() not in ("0", "false", "no", "off")


def _family_part(kw: dict[str, Any]) -> str | None:
    """The focal-family member of a call as a key part (None for the plain focal loss): its kind,
    ``+poly1`` with an epsilon, ``+piecewise`` with a PiecewiseGamma. Each compiles to its own
    kernel specialization, so each is checked on its own first call."""
    v, piecewise = kw.get("variant"), hasattr(kw.get("gamma"), "thresholds")
    if (v is None or v.plain) and not piecewise:
        return None
    part = "focal" if v is None else v.kind
    if v is not None and v.epsilon != 0.0:
        part += "+poly1"
    if piecewise:
        part += "+piecewise"
    return part


def _variant(op: str, x: Tensor, targets: Tensor, kw: dict[str, Any]) -> tuple[str, ...]:
    form = "labels" if (kw.get("labels") or (op == "softmax" and not targets.is_floating_point())) else "dense"
    if kw.get("scores") is not None:
        form += "+scores"
    key: tuple[str, ...] = (op, str(x.dtype).removeprefix("torch."), form, x.device.type)
    family = _family_part(kw)
    return key if family is None else key + (family,)


def _mismatch(got: tuple[Any, ...], want: tuple[Any, ...], dtype: torch.dtype) -> str | None:
    tol, atol = _TOL.get(dtype, 1e-4), _ATOL.get(dtype, 1e-6)
    for name, a, b in zip(("loss", "count", "grad"), got, want):
        if (a is None) != (b is None):
            return f"{name}: one of kernel/closed form returned None"
        if a is None:
            continue
        a64, b64 = a.detach().double(), b.detach().double()
        if a64.shape != b64.shape:
            return f"{name}: shape {tuple(a64.shape)} != {tuple(b64.shape)}"
        if a64.numel() == 0:
            continue
        if not torch.equal(torch.isfinite(a64), torch.isfinite(b64)):
            return f"{name}: non-finite values where the closed form has none (or the reverse)"
        scale = b64.abs().max().item()
        err = (a64 - b64).abs().nan_to_num(0.0).max().item()
        if err > tol * max(scale, 1e-30) and err > atol:
            return f"{name}: max error {err:.3g} above {tol:g} x {scale:.3g}"
    return None


def guarded(op: str, kernel: Callable[..., Any], x: Tensor, targets: Tensor, **kw: Any) -> Any:
    """Run ``kernel`` (a Triton entry point); on a variant's first call, check it against eager."""
    fallback = closed_form.sigmoid_focal_fwd if op == "sigmoid" else closed_form.softmax_focal_fwd
    if not _enabled() or torch.compiler.is_compiling():
        return kernel(x, targets, **kw)
    key = _variant(op, x, targets, kw)
    verdict = _verdicts.get(key)
    if verdict == "ok":
        return kernel(x, targets, **kw)
    if verdict is not None:
        return fallback(x, targets, **kw)
    if not bool(torch.isfinite(x).all()):
        # NaN/inf logits: the kernel propagates them as PyTorch's losses do, the closed form in its
        # own way; no verdict from such a call (the next finite call of the variant is checked)
        return kernel(x, targets, **kw)
    ref_kw = dict(kw, compute_grad=True)
    try:
        got = kernel(x, targets, **ref_kw)
        why = _mismatch(got, fallback(x, targets, **ref_kw), x.dtype)
    except Exception as exc:  # a compile or launch error of the kernel
        got, why = None, f"{type(exc).__name__}: {exc}"
    with _lock:
        _verdicts[key] = "ok" if why is None else f"failed: {why}"
    if why is not None:
        warnings.warn(
            f"focalkit: the Triton {op} kernel for {key[1]} {key[2]} targets on {key[3]}"
            f"{'' if len(key) < 5 else ' (' + key[4] + ')'} failed its "
            f"first-call check ({why}); this variant now uses the eager closed form. "
            "fk.kernel_status() lists the checks.",
            RuntimeWarning,
            stacklevel=3,
        )
        return fallback(x, targets, **kw)
    assert got is not None
    return got if kw.get("compute_grad", True) else (got[0], got[1], None)


def status() -> dict[str, str]:
    """The variants checked so far: ``"op/dtype/form/device[/family]" -> "ok" | "failed: ..."``."""
    with _lock:
        return {"/".join(k): v for k, v in sorted(_verdicts.items())}


def reset() -> None:
    """Forget every verdict (the next call of each variant is checked again)."""
    with _lock:
        _verdicts.clear()
