"""Running one case on one backend and checking it: the tolerances and the checks.

Checks, for a case on a backend (see :func:`run_case`):

1. **dtype and shape**: the loss and the gradient come back in the logits' dtype, the loss in the
   reference's shape.
2. **finite**: finite inputs give a finite loss and gradient, except where the exact value lies
   beyond the dtype's largest finite number (a float16 sum over many elements, a loss-scaled float16
   gradient): there the result must be inf of the right sign (IEEE rounding of that value).
3. **loss and gradient against the float64 reference** (:mod:`focalkit.testing.reference`, the
   gradient by its fourth-order central differences with an absolute step of 1e-3), both computed
   from the very values the loss saw (the logits rounded to their dtype, as float64). The error is
   normwise: ``max |got - expected| / max(max |expected|, floor)`` must stay below the dtype's
   tolerance (:data:`TOLERANCES`, which says why each value).
4. **half precision against float32** (float16/bfloat16 only): the same backend run on the same
   values in float32 must give, rounded once to the half dtype, the half-precision result within
   one unit in the last place, element by element (what "computed in float32, returned in the
   input's dtype" promises; it is what GradScaler needs: no gradient flushed to zero or rounded
   twice before the loss scale is applied). bfloat16 gradients are saved in bfloat16 by the
   kernel contract (float32's exponent range), so an entry that was below bfloat16's smallest
   normal (1.2e-38) before the incoming gradient scaled it may come back as 0.
5. **gradcheck** (float64, at most 16 logits, |logits| <= 100, the reference and eager backends):
   :func:`torch.autograd.gradcheck` of the loss with respect to the logits.
6. **NaN/inf propagation** (cases with one non-finite logit): the loss of every element/position
   whose reference value is NaN/inf is NaN/inf (for a reduced loss: the loss is), the others stay
   finite and match the reference.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor

import focalkit as fk
from focalkit import backends as _backends
from focalkit.testing.fuzz.cases import HALF_DTYPES, Case, materialize

__all__ = ["TOLERANCES", "Expected", "Failure", "Outcome", "Tolerance", "expected", "run_case"]

FD_STEP = 1e-3  # absolute finite-difference step of the reference gradient (see the module doc)


@dataclass(frozen=True)
class Tolerance:
    """Normwise relative tolerances of one dtype, and the magnitude below which errors are absolute."""

    loss: float
    grad: float
    floor: float
    why: str


#: Tolerances per logits dtype. The loss is computed in float32 for float16/bfloat16 (float64 for
#: float64) and rounded once to the input's dtype.
TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float64: Tolerance(
        loss=1e-10, grad=1e-6, floor=1e-280,
        why="float64 compute (unit roundoff 1.1e-16) through exp/log/pow: about 1e-14 expected, 1e-10 "
        "leaves room for gamma up to 10 amplifying the error of 1 - p_t; the gradient is checked against "
        "finite differences of the reference (step 1e-3: truncation ~1e-12 h^4 f^(5), roundoff "
        "~1e-16 |loss| / 1e-3 ~ 1e-8 of the gradient for losses of 1e4), so 1e-6",
    ),
    torch.float32: Tolerance(
        loss=1e-5, grad=1e-5, floor=1e-25,
        why="float32 unit roundoff 6e-8; a careful implementation stays within a few tens of roundoffs "
        "(gamma * error of 1 - p_t, error of the log/exp, summation of <= 2048 terms), ~2e-6; "
        "1e-5 = 170 roundoffs. Values below 1e-25 are compared in absolute terms: intermediate "
        "products of the modulating factor may underflow float32's normal range (1.2e-38) there",
    ),
    torch.float16: Tolerance(
        loss=2e-3, grad=2e-3, floor=6.1e-5,
        why="computed in float32, rounded once to float16 (unit roundoff 4.9e-4); the gradient of a "
        "reduced loss is rounded again after scaling by the incoming gradient: 2 roundoffs = 9.8e-4, "
        "plus the float32 error; 2e-3. Below float16's smallest normal (6.1e-5) values are "
        "subnormal with a fixed spacing of 6e-8, so errors there are absolute",
    ),
    torch.bfloat16: Tolerance(
        loss=1e-2, grad=1e-2, floor=1e-25,
        why="computed in float32, rounded to bfloat16 (8-bit significand, unit roundoff 3.9e-3), up to "
        "twice for the gradient: 7.8e-3 plus the float32 error; 1e-2. bfloat16 has float32's "
        "exponent range, hence float32's floor",
    ),
}


@dataclass
class Failure:
    """One failed check: which (see the module doc), what was seen, and a known issue that explains it."""

    check: str
    detail: str
    value: float | None = None  # the error (normwise, or in units in the last place for half-*)
    known: str | None = None
    abs_error: float | None = None  # loss/grad: the largest absolute error


@dataclass
class Outcome:
    """The result of one case on one backend."""

    loss: str
    index: int
    backend: str
    dtype: str
    api: str
    device: str = "cpu"
    reached: str = ""
    loss_err: float | None = None
    grad_err: float | None = None
    half_ulps: float | None = None
    overflow: bool = False
    loss_scale: float = 0.0  # the natural scales of the case (see natural_scale)
    grad_scale: float = 0.0
    gradcheck: bool = False
    nonfinite_input: bool = False
    failures: list[Failure] = field(default_factory=list)

    @property
    def unexplained(self) -> list[Failure]:
        return [f for f in self.failures if f.known is None]


@dataclass
class Expected:
    """The reference's loss and gradient (None for a case with a non-finite logit) of a case, and
    their natural scales (see :func:`natural_scale`)."""

    loss: np.ndarray
    grad: np.ndarray | None
    loss_scale: float = 0.0
    grad_scale: float = 0.0
    fd_noise: float = 0.0


#: Roundoffs of the compute dtype, times a case's natural scale, below which errors are absolute.
ABSOLUTE_ROUNDOFFS = 64


def natural_scale(spec: Any, case: Case) -> tuple[float, float, float]:
    """(loss scale, gradient scale, finite-difference noise).

    The scales are what the same call gives at logits 0, where every element is uncertain
    (p = 1/2 or 1/C), so they carry alpha, weight, the reduction and grad_output. The noise bounds
    the rounding error of the reference gradient's central differences: 4 roundoffs of the largest
    per-element loss at the case's logits over the step, times the reduction and grad_output.

    float32 algorithms (log_softmax, and torch's ``binary_cross_entropy_with_logits``) have an
    absolute error of a few roundoffs of this scale, not a relative one: the loss of a confident,
    correct prediction (-log p = 1e-7) comes back with an error of ~6e-8 in float32, as PyTorch's own
    cross-entropy does. Errors are therefore measured against at least ``ABSOLUTE_ROUNDOFFS``
    roundoffs of this scale (see :func:`floor_for`).
    """
    x, t, kw = reference_inputs(case)
    zero = np.zeros_like(x)
    with np.errstate(all="ignore"):
        per = np.abs(np.asarray(spec.reference(zero, t, **{**kw, "reduction": "none"}), dtype=np.float64))
        red = np.abs(np.asarray(spec.reference(zero, t, **kw), dtype=np.float64))
        here = np.abs(np.asarray(spec.reference(x, t, **{**kw, "reduction": "none"}), dtype=np.float64))
    if not per.size:
        return 0.0, 0.0, 0.0
    total = float(per.sum())
    factor = 1.0 if kw["reduction"] == "none" else (float(red) / total if total > 0 else 1.0)
    go = float(case.grad_output.double().abs().max()) if case.grad_output.numel() else 0.0
    noise = 4 * 2.0**-52 * float(np.nanmax(here, initial=0.0)) / FD_STEP * factor * go
    return float(red.max()), float(per.max()) * factor * go, noise


def floor_for(dtype: torch.dtype, tol: "Tolerance", rel: float, scale: float) -> float:
    """The magnitude below which errors of a result of natural scale ``scale`` are absolute."""
    unit = 2.0**-53 if dtype == torch.float64 else 2.0**-24  # unit roundoff of the compute dtype
    return max(tol.floor, ABSOLUTE_ROUNDOFFS * unit * scale / rel)


def reference_inputs(case: Case) -> tuple[np.ndarray, Any, dict[str, Any]]:
    """(logits, targets, kwargs) as the reference takes them, from the values the loss sees."""
    kw = {k: v for k, v in case.kwargs.items() if k != "validate_args"}
    kw.update(case.ref_kwargs)
    if isinstance(kw.get("normalizer"), Tensor):
        kw["normalizer"] = float(kw["normalizer"].double().reshape(()))
    targets = case.targets if case.ref_targets is None else case.ref_targets
    return case.logits.double().numpy(), targets, kw


def expected(spec: Any, case: Case) -> Expected:
    """The float64 reference loss and finite-difference gradient of ``case`` (backend-independent)."""
    x, t, kw = reference_inputs(case)
    with np.errstate(all="ignore"):  # NaN/inf logits: the reference's NaN is the expectation
        loss = np.asarray(spec.reference(x, t, **kw), dtype=np.float64)
    if case.nonfinite is not None:
        return Expected(loss, None)
    go = case.grad_output.double().numpy()
    if kw["reduction"] == "none":
        grad = spec.reference_grad(x, t, grad_output=go, step=FD_STEP, **kw)
    else:
        grad = spec.reference_grad(x, t, step=FD_STEP, **kw) * float(go)
    return Expected(loss, np.asarray(grad, dtype=np.float64), *natural_scale(spec, case))


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Record the backend each loss call reaches (the dispatcher's choice; none: the composed path)."""
    seen: list[str] = []
    real = _backends.resolve

    def spy(info: Any) -> Any:
        chosen = real(info)
        seen.append("reference" if chosen is None else chosen.name)
        return chosen

    _backends.resolve = spy
    try:
        yield seen
    finally:
        _backends.resolve = real


def call(spec: Any, case: Case, x: Tensor, t: Tensor, kwargs: dict[str, Any]) -> Tensor:
    """The loss of ``case`` through its API (function, module or FocalLoss)."""
    if case.api == "function":
        return spec.function(x, t, **kwargs)
    ctor = dict(kwargs)
    at_call = {}
    if case.at_call:
        at_call = {"weight": ctor.pop("weight"), "normalizer": ctor.pop("normalizer")}
    if case.api == "module":
        crit = spec.module(**ctor)
    else:
        crit = fk.FocalLoss(case.api.split(":", 1)[1], **ctor)
    return crit(x, t, **{k: v for k, v in at_call.items() if v is not None})


def _spacing(v: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Distance to the next representable number of ``dtype`` above |v| (v representable)."""
    fi = torch.finfo(dtype)
    digits = 11 if dtype == torch.float16 else 8
    emin = math.log2(fi.tiny)
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.abs(v)))
    return np.exp2(np.maximum(e, emin) - (digits - 1))


def _overflow_threshold(dtype: torch.dtype) -> float:
    """The smallest magnitude that rounds to inf in ``dtype`` (its max plus half a unit there)."""
    fi = torch.finfo(dtype)
    return float(fi.max) + 2.0 ** (math.floor(math.log2(fi.max)) - 1) * fi.eps


def _where(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(mask.reshape(-1))[0]), mask.shape))


def compare(
    actual: Tensor, want: np.ndarray, dtype: torch.dtype, rel: float, floor: float
) -> tuple[float, str | None, bool]:
    """(normwise error, problem or None, whether an exact value overflowed the dtype) of a result.

    The error is ``max |actual - want|`` over ``max(max |want|, floor)``; ``floor`` is where errors
    become absolute (see :data:`TOLERANCES` and :func:`natural_scale`).
    """
    a = actual.detach().cpu().double().numpy()
    b = np.asarray(want, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf, f"shape {a.shape}, expected {b.shape}", False
    if b.size == 0:
        return 0.0, None, False
    thr = _overflow_threshold(dtype)
    over = np.abs(b) >= thr * (1 + rel)
    border = (np.abs(b) > thr * (1 - rel)) & ~over
    same_inf = np.isinf(a) & (np.sign(a) == np.sign(b))
    if (over & ~same_inf).any():
        i = _where(over & ~same_inf)
        return math.inf, f"at {i} the exact value {b[i]:.6g} is beyond the dtype's range, got {a[i]:.6g} (expected inf)", True
    inside = ~over & ~(border & same_inf)  # a borderline value may round either way
    bad = inside & ~np.isfinite(a)
    if bad.any():
        i = _where(bad)
        n = int(bad.sum())
        return math.inf, f"{n} of {b.size} non-finite where the reference is finite, e.g. at {i}: got {a[i]}, expected {b[i]:.6g}", bool(over.any())
    scale = max(float(np.abs(b[inside]).max(initial=0.0)), floor)
    diff = np.where(inside, np.abs(a - b), 0.0)
    err = float(diff.max()) / scale
    if err > rel:
        i = _where(diff == diff.max())
        return err, (f"max error {err:.3g} of the largest value {scale:.4g} (tolerance {rel:g}) at {i}: "
                     f"got {a[i]:.9g}, expected {b[i]:.9g}"), bool(over.any())
    return err, None, bool(over.any())


def compare_half(actual: Tensor, twin: Tensor, lift: float = 1.0) -> tuple[float, str | None]:
    """(max error in units in the last place, problem) of a half-precision result against its
    float32 twin rounded once to the half dtype; more than one unit is a problem.

    ``lift``: the largest factor the incoming gradient multiplied the result by (bfloat16, below).
    """
    dtype = actual.dtype
    a = actual.detach().cpu().double().numpy()
    e = twin.detach().cpu().to(dtype).double().numpy()
    if a.shape != e.shape:
        return math.inf, f"shape {a.shape}, float32 twin {e.shape}"
    if a.size == 0:
        return 0.0, None
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    if dtype == torch.bfloat16:
        # the kernel contract saves bfloat16 gradients in bfloat16 (float32's range), so a value that
        # was below bfloat16's smallest normal before the incoming gradient lifted it is not promised
        tiny = torch.finfo(dtype).tiny * max(lift, 1.0)
        same |= (np.abs(e) < tiny) & (np.abs(a) < tiny)
    with np.errstate(invalid="ignore"):
        ulps = np.where(same, 0.0, np.abs(a - e) / _spacing(e, dtype))
    ulps = np.where(np.isnan(ulps), np.inf, ulps)
    worst = float(ulps.max())
    if worst <= 1.0:
        return worst, None
    bad = ulps > 1.0
    flushed = int((bad & (a == 0) & (e != 0)).sum())
    i = _where(ulps == worst)
    return worst, (f"{int(bad.sum())} of {a.size} more than 1 ulp from the float32 result rounded to {dtype}"
                   + (f" ({flushed} flushed to 0)" if flushed else "")
                   + f", e.g. at {i}: got {a[i]:.6g}, float32 gives {e[i]:.6g}")


def _run(spec: Any, case: Case, backend: str, device: Any, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor, str]:
    with recording() as seen, fk.use_backend(backend):
        x, t, kw = materialize(case, device, dtype)
        if dtype is not None:
            kw = dict(kw)
        out = call(spec, case, x, t, kw)
    go = case.grad_output.to(device=device, dtype=out.dtype)
    out.backward(go)
    grad = x.grad if x.grad is not None else torch.zeros_like(x)
    reached = "+".join(sorted(set(seen))) or "reference"
    return out.detach(), grad, reached


def run_case(spec: Any, case: Case, backend: str, want: Expected, *, device: Any = "cpu") -> Outcome:
    """Run ``case`` on ``backend`` and apply every check (see the module doc)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN cases: NumPy (Triton's interpreter) warn
        return _run_case(spec, case, backend, want, device)


def _run_case(spec: Any, case: Case, backend: str, want: Expected, device: Any) -> Outcome:
    o = Outcome(loss=case.loss, index=case.index, backend=backend, dtype=str(case.dtype).replace("torch.", ""),
                api=case.api, device=torch.device(device).type, nonfinite_input=case.nonfinite is not None)
    tol = TOLERANCES[case.dtype]
    try:
        out, grad, o.reached = _run(spec, case, backend, device)
    except Exception as exc:  # a valid call must not raise
        o.failures.append(Failure("exception", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
        return o
    if out.dtype != case.dtype or grad.dtype != case.dtype:
        o.failures.append(Failure("dtype", f"loss {out.dtype}, grad {grad.dtype}, logits {case.dtype}"))
    if case.nonfinite is not None:
        _check_propagation(o, out, want.loss, tol)
        return o
    floor = tol.floor if spec.exact_tails else floor_for(case.dtype, tol, tol.loss, want.loss_scale)
    o.loss_err, problem, over = compare(out, want.loss, case.dtype, tol.loss, floor)
    o.loss_scale, o.grad_scale = want.loss_scale, want.grad_scale
    if problem:
        o.failures.append(Failure("loss-nonfinite" if "non-finite" in problem else "loss", problem, o.loss_err,
                                  abs_error=_abs_error(out, want.loss)))
    assert want.grad is not None
    floor = max(floor_for(case.dtype, tol, tol.grad, want.grad_scale), want.fd_noise / tol.grad)
    o.grad_err, problem, over_g = compare(grad, want.grad, case.dtype, tol.grad, floor)
    o.overflow = over or over_g
    if problem:
        o.failures.append(Failure("grad-nonfinite" if "non-finite" in problem else "grad", problem, o.grad_err,
                                  abs_error=_abs_error(grad, want.grad)))
    if case.dtype in HALF_DTYPES:
        try:
            out32, grad32, _ = _run(spec, case, backend, device, torch.float32)
        except Exception as exc:
            o.failures.append(Failure("exception", f"float32 twin: {type(exc).__name__}: {exc}"))
            return o
        u1, p1 = compare_half(out, out32)
        lift = float(case.grad_output.double().abs().max()) if case.grad_output.numel() else 1.0
        u2, p2 = compare_half(grad, grad32, lift)
        o.half_ulps = max(u1, u2)
        if p1:
            o.failures.append(Failure("half-loss", p1, u1))
        if p2:
            o.failures.append(Failure("half-grad", p2, u2))
    if (case.dtype == torch.float64 and backend in ("reference", "eager") and 0 < case.logits.numel() <= 16
            and float(case.logits.abs().max()) <= 100.0):
        o.gradcheck = True
        problem = _gradcheck(spec, case, backend, device)
        if problem:
            o.failures.append(Failure("gradcheck", problem))
    return o


def _abs_error(actual: Tensor, want: np.ndarray) -> float:
    a = actual.detach().cpu().double().numpy()
    d = np.abs(a - want) if a.shape == np.shape(want) else np.array([np.inf])
    return float(np.max(np.where(np.isnan(d), np.inf, d), initial=0.0))


def _gradcheck(spec: Any, case: Case, backend: str, device: Any) -> str | None:
    x0, t, kw = materialize(case, device)
    x0 = x0.detach().clone().requires_grad_(True)

    def f(z: Tensor) -> Tensor:
        return call(spec, case, z, t, kw)

    with fk.use_backend(backend):
        try:
            torch.autograd.gradcheck(f, (x0,), eps=1e-6, atol=1e-7, rtol=1e-5, raise_exception=True)
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


def _check_propagation(o: Outcome, out: Tensor, want: np.ndarray, tol: Tolerance) -> None:
    a = out.detach().cpu().double().numpy()
    b = np.asarray(want, dtype=np.float64)
    if a.shape != b.shape:
        o.failures.append(Failure("nan-propagation", f"shape {a.shape}, expected {b.shape}"))
        return
    lost = ~np.isfinite(b) & np.isfinite(a)
    if lost.any():
        i = _where(lost)
        o.failures.append(Failure(
            "nan-propagation",
            f"a non-finite logit gives a finite loss: {int(lost.sum())} of {b.size} entries, e.g. at {i}: "
            f"got {a[i]:.6g}, expected {b[i]}",
        ))
    keep = np.isfinite(b)
    if keep.any() and b.ndim:
        if (~np.isfinite(a[keep])).any():
            o.failures.append(Failure("nan-propagation", "NaN/inf leaked into entries whose reference is finite"))
