"""Input checks shared by the functional API, the modules, the kernels' entry points and the tools.

One check per concept (as in torchmetrics). Shape, type and argument checks are cheap and always
run. Checks that must read tensor values (target range, non-negative finite weights, alpha and
normalizer values held in tensors) force a host sync on GPU; they run when ``validate_args=True``
(the default) and are skipped with ``validate_args=False``. Under ``torch.compile`` they become
assertions inside the graph (:func:`focalkit._torch_compat.assert_in_graph`): the same condition,
a shorter message without the offending values, and no graph break.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Sequence

import torch
from torch import Tensor

from focalkit._torch_compat import assert_in_graph
from focalkit.gamma import PiecewiseGamma

REDUCTIONS = ("none", "mean", "sum")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SMALL = 1 << 16  # up to this many elements, value checks of CPU tensors run in NumPy
_NUMPY_OK = (torch.int64, torch.int32, torch.float32, torch.float64, torch.uint8, torch.int16, torch.int8)
# Integer types in which ignore_index (-100 by default) would wrap: compared after widening to int64.
_NARROW_INTS = (torch.uint8, torch.int8, torch.int16)


def _require(ok: Tensor, message: Any) -> None:
    """Raise ``ValueError(message())`` when the 0-d bool tensor ``ok`` is False (one host sync).

    Under ``torch.compile`` the check is an assertion in the graph instead (no graph break).
    """
    if torch.compiler.is_compiling():
        assert_in_graph(ok, message(None))
    elif not bool(ok):
        raise ValueError(message(ok))


def check_logits(logits: Any) -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(
            f"logits must be a floating-point tensor (float32, float16, bfloat16 or float64), "
            f"got {logits.dtype}; convert with logits.float()"
        )


def check_targets_type(targets: Any) -> Tensor:
    """The targets tensor; narrow integer types (uint8, int8, int16) widened to int64.

    ``ignore_index`` (-100 by default) cast to uint8 is 156: comparing in the narrow type would
    silently drop class 156. Widening makes every comparison exact.
    """
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if targets.is_complex():
        raise TypeError(f"targets must be a real tensor, got {targets.dtype}")
    if targets.dtype in _NARROW_INTS:
        targets = targets.long()
    return targets


def check_reduction(reduction: Any) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_real(name: str, value: Any) -> float:
    """A finite real number (a Python/NumPy number or a one-element tensor), as a float."""
    if isinstance(value, Tensor) and value.numel() == 1 and not value.requires_grad and not value.is_complex():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number, got {v}")
    return v


def check_gamma(gamma: Any, name: str = "gamma", *, maximum: float | None = None) -> Any:
    """The focusing parameter: a finite number >= 0 (and <= ``maximum`` when given), as a float.

    A :class:`focalkit.PiecewiseGamma` (sample-dependent gamma, FLSD-53) is returned as it is (its
    values were checked when it was built; ``maximum`` bounds its largest value).
    """
    if isinstance(gamma, PiecewiseGamma):
        if maximum is not None and gamma.max > maximum:
            raise ValueError(f"{name} must be in [0, {maximum:g}], got {gamma!r}")
        return gamma
    if isinstance(gamma, bool) or not isinstance(gamma, (numbers.Real, Tensor)):
        raise TypeError(f"{name} must be a real number, got {type(gamma).__name__}")
    try:
        g = check_real(name, gamma)
    except ValueError:
        raise ValueError(f"{name} must be a finite number >= 0, got {float(gamma)}") from None
    if g < 0 or (maximum is not None and g > maximum):
        bound = f"in [0, {maximum:g}]" if maximum is not None else "a finite number >= 0"
        raise ValueError(f"{name} must be {bound}, got {g}")
    return g


def check_epsilon(epsilon: Any, name: str = "epsilon") -> float:
    """The Poly-1 coefficient (Leng et al. 2022): a finite number >= -1 (see :func:`warn_negative_poly`)."""
    e = check_real(name, epsilon)
    if e < -1.0:
        raise ValueError(f"{name} (the Poly-1 coefficient) must be >= -1, got {e}")
    return e


def warn_negative_poly(epsilon: float, alpha: Any, sigmoid: bool) -> None:
    """Warn when a negative Poly-1 term can outweigh the alpha-scaled focal term.

    Per element the loss is (1 - p_t)^gamma [alpha_t (-log p_t) + epsilon (1 - p_t)]; since
    -log p_t >= 1 - p_t it is >= 0 wherever alpha_t + epsilon >= 0. Below that (RetinaNet's
    alpha = 0.25 with the paper's epsilon = -1) the loss of an element can fall as its prediction
    gets worse, and training can collapse (measured: `focalkit compare` on ``dense``, AP 0.000).
    The call is computed as asked; the warning says so once per call site.
    """
    if epsilon >= 0 or alpha is None:
        return
    if isinstance(alpha, Tensor):
        if torch.compiler.is_compiling() or alpha.numel() == 0:
            return
        lo = float(alpha.min()) if not sigmoid else min(float(alpha.min()), 1.0 - float(alpha.max()))
    else:
        lo = min(float(alpha), 1.0 - float(alpha)) if sigmoid else float(alpha)
    if lo + epsilon < 0:
        warnings.warn(
            f"epsilon={epsilon} with alpha_t as low as {lo:g}: where alpha_t + epsilon < 0 the Poly-1 "
            "loss rewards wrong predictions (the loss falls as p_t falls); use alpha=None or "
            f"epsilon >= -{lo:g}",
            UserWarning,
            stacklevel=3,
        )


def check_float_gamma(gamma: Any, name: str) -> float:
    """An exponent that must be one number (gamma_pos, gamma_neg, beta): finite, >= 0."""
    if isinstance(gamma, PiecewiseGamma):
        raise TypeError(f"{name} must be a real number >= 0, got a PiecewiseGamma (only gamma takes one)")
    return check_gamma(gamma, name)


def check_non_negative(name: str, value: Any) -> float:
    """A finite number >= 0 (a weight such as VFL's alpha of the negatives)."""
    v = check_real(name, value)
    if v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    return v


def check_clip(clip: Any) -> float:
    """ASL's probability shift of the negatives: a number in [0, 1)."""
    c = check_real("clip", clip)
    if not 0.0 <= c < 1.0:
        raise ValueError(f"clip (the probability shift of the negatives) must be in [0, 1), got {c}")
    return c


def check_bool(name: str, value: Any) -> bool:
    """A flag: a Python bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_scores(scores: Any, targets: Tensor, labels: bool, validate_args: bool) -> Tensor | None:
    """Per-position quality scores in [0, 1] that go with class-index targets (QFL / VFL).

    ``scores`` has the targets' shape (the logits' shape without the class dimension 1) and gives
    the target score of each position's labelled class; it is only meaningful with class indices.
    """
    if scores is None:
        return None
    if not isinstance(scores, Tensor):
        raise TypeError(f"scores must be a torch.Tensor or None, got {type(scores).__name__}")
    if not labels:
        raise ValueError(
            "scores go with class-index targets (class dimension removed); with targets of the logits' "
            "shape the target values themselves are the scores"
        )
    if not scores.is_floating_point():
        raise TypeError(f"scores must be a floating-point tensor, got {scores.dtype}")
    if scores.shape != targets.shape:
        raise ValueError(
            f"scores of shape {tuple(scores.shape)} must have the class-index targets' shape {tuple(targets.shape)}"
        )
    if validate_args and scores.numel():
        _check_range(scores, 0, 1, None, lambda lo, hi: "scores must be in [0, 1]" + _got(lo, hi, False))
    return scores


def check_alpha_scalar(alpha: Any, name: str = "alpha") -> float:
    """A scalar alpha, the weight of positives: a number in [0, 1]."""
    a = check_real(name, alpha)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (the weight of positives), got {a}")
    return a


def check_probability(name: str, p: Any) -> float:
    """A probability strictly between 0 and 1."""
    v = check_real(name, p)
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {v}")
    return v


def check_count(name: str, n: Any) -> int:
    """A count: an int >= 0."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return int(n)


def check_label_smoothing(label_smoothing: Any) -> float:
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real):
        raise TypeError(f"label_smoothing must be a float in [0, 1], got {type(label_smoothing).__name__}")
    ls = float(label_smoothing)
    if not 0.0 <= ls <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {ls}")
    return ls


LABEL_SMOOTHING_MODES = ("binary", "uniform")


def check_label_smoothing_mode(mode: Any, logits: Tensor | None = None) -> str:
    """Where the sigmoid loss smooths its targets: ``"binary"`` toward 1/2, ``"uniform"`` toward 1/C."""
    if not isinstance(mode, str):
        raise TypeError(f"label_smoothing_mode must be a string {LABEL_SMOOTHING_MODES}, got {type(mode).__name__}")
    if mode not in LABEL_SMOOTHING_MODES:
        raise ValueError(f"label_smoothing_mode must be one of {LABEL_SMOOTHING_MODES}, got {mode!r}")
    if mode == "uniform" and logits is not None and (logits.dim() < 2 or logits.shape[1] < 2):
        raise ValueError(
            'label_smoothing_mode="uniform" smooths toward 1/C over the C = logits.shape[1] classes and needs '
            f"logits of shape (N, C, ...) with C >= 2, got shape {tuple(logits.shape)}; one binary output "
            'smooths toward 1/2 (label_smoothing_mode="binary")'
        )
    return mode


def check_ignore_index(ignore_index: Any, *, allow_none: bool) -> None:
    if ignore_index is None:
        if not allow_none:
            raise TypeError("ignore_index must be an int for the softmax focal loss (default -100)")
        return
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")
    if not _INT64_MIN <= ignore_index <= _INT64_MAX:
        raise ValueError(f"ignore_index must fit in int64 (the targets' type), got {ignore_index}")


def check_normalizer(normalizer: Any, reduction: str, validate_args: bool) -> Any:
    """Returns the normalizer with 0 replaced by 1 (a number or a 0-d tensor), or None."""
    if normalizer is None:
        return None
    if reduction == "none":
        raise ValueError('normalizer divides the summed loss; it cannot be used with reduction="none"')
    if isinstance(normalizer, Tensor):
        if normalizer.numel() != 1:
            raise ValueError(f"normalizer must be a number or a one-element tensor, got shape {tuple(normalizer.shape)}")
        if normalizer.is_complex():
            raise TypeError("normalizer must be real")
        if normalizer.dtype == torch.bool:
            raise TypeError("normalizer must be a number or a real tensor, got a bool tensor")
        normalizer = normalizer.reshape(())
        if validate_args:
            n_t = normalizer
            _require(
                torch.isfinite(n_t) & (n_t >= 0),
                lambda ok: "normalizer must be a finite number >= 0"
                + ("" if ok is None else f", got {n_t.item()}"),
            )
        return torch.where(normalizer == 0, torch.ones_like(normalizer), normalizer)
    if isinstance(normalizer, bool) or not isinstance(normalizer, numbers.Real):
        raise TypeError(f"normalizer must be a number or a tensor, got {type(normalizer).__name__}")
    n = float(normalizer)
    if not n >= 0 or n == float("inf"):
        raise ValueError(f"normalizer must be a finite number >= 0, got {n}")
    return 1.0 if n == 0 else n


def check_weight(weight: Any, loss_shape: torch.Size, validate_args: bool) -> Tensor | None:
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        raise TypeError(f"weight must be a torch.Tensor or None, got {type(weight).__name__}")
    if weight.is_complex() or weight.dtype == torch.bool:
        raise TypeError(f"weight must be a real floating or integer tensor, got {weight.dtype}")
    try:
        shape = torch.broadcast_shapes(weight.shape, loss_shape)
    except RuntimeError:
        shape = None
    if shape != loss_shape:
        raise ValueError(
            f"weight of shape {tuple(weight.shape)} does not broadcast to the per-element loss "
            f"of shape {tuple(loss_shape)}"
        )
    if validate_args and weight.numel():
        _require(
            ((weight >= 0) & torch.isfinite(weight)).all(),
            lambda ok: "weight must be finite and non-negative (no NaN or inf)",
        )
    return weight


def _alpha_tensor(alpha: Any, name: str = "alpha") -> Tensor:
    if isinstance(alpha, Tensor):
        if alpha.is_complex() or alpha.dtype == torch.bool:
            raise TypeError(f"{name} must be a real tensor, got {alpha.dtype}")
        return alpha
    if isinstance(alpha, (Sequence,)) and not isinstance(alpha, str):
        try:
            # float64: converted to the logits' compute dtype where it is used (float64 stays exact)
            return torch.tensor([float(a) for a in alpha], dtype=torch.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a sequence of numbers") from None
    if hasattr(alpha, "__array__"):
        return torch.as_tensor(alpha, dtype=torch.float64)
    raise TypeError(f"{name} must be None, a float, a sequence or a tensor, got {type(alpha).__name__}")


def check_sigmoid_alpha(alpha: Any, logits: Tensor, validate_args: bool) -> float | Tensor | None:
    """None, a float in [0, 1], or a tensor broadcastable to the logits.

    A 1-D tensor of length C = logits.shape[1] is taken as per-class along dimension 1.
    """
    if alpha is None:
        return None
    if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        return check_alpha_scalar(alpha)
    if isinstance(alpha, bool):
        raise TypeError("alpha must be None, a float in [0, 1] or a tensor, got bool")
    a_t = _alpha_tensor(alpha)
    if a_t.dim() == 1 and logits.dim() >= 2 and a_t.shape[0] == logits.shape[1] and logits.dim() > 2:
        a_t = a_t.reshape((1, -1) + (1,) * (logits.dim() - 2))
    try:
        shape = torch.broadcast_shapes(a_t.shape, logits.shape)
    except RuntimeError:
        shape = None
    if shape != logits.shape:
        raise ValueError(
            f"alpha of shape {tuple(a_t.shape)} does not broadcast to the logits of shape "
            f"{tuple(logits.shape)} (a 1-D alpha must have length C = logits.shape[1])"
        )
    if validate_args and a_t.numel():
        _require(((a_t >= 0) & (a_t <= 1)).all(), lambda ok: "alpha values must be in [0, 1] (the weight of positives)")
    return a_t


def check_softmax_alpha(alpha: Any, num_classes: int, validate_args: bool) -> Tensor | None:
    """None or a length-C tensor of non-negative per-class weights."""
    if alpha is None:
        return None
    if isinstance(alpha, numbers.Real):
        raise TypeError(
            "alpha for the softmax focal loss must be None or a length-C sequence/tensor of per-class "
            f"weights, got the number {alpha!r}: one scalar multiplies every class alike, so it would "
            "only rescale the loss (use the sigmoid focal loss for the binary alpha of the paper)"
        )
    a_t = _alpha_tensor(alpha)
    if a_t.dim() != 1 or a_t.shape[0] != num_classes:
        raise ValueError(
            f"alpha must have one weight per class, length C = {num_classes}, got shape {tuple(a_t.shape)}"
        )
    if validate_args:
        _require(((a_t >= 0) & torch.isfinite(a_t)).all(), lambda ok: "alpha values must be finite and >= 0")
    return a_t


def small_range(t: Tensor, ignore_index: int | None) -> tuple[float, ...] | None:
    """``(min, max)`` of a small CPU tensor with ``ignore_index`` left out, read with NumPy.

    ``()`` when nothing is left; None when ``t`` is not a small CPU tensor NumPy can read (then
    :func:`_check_range` uses torch ops). A NaN anywhere gives NaN bounds. NumPy on the tensor's
    memory costs a few microseconds where the torch ops cost tens: per-call overhead matters for
    small classification batches. Not for use under ``torch.compile``.
    """
    if not (t.device.type == "cpu" and t.numel() <= _SMALL and t.dtype in _NUMPY_OK):
        return None
    try:  # tensors without storage (functorch wrappers, tracers) take the torch path
        a = t.detach().numpy()
    except (RuntimeError, TypeError):
        return None
    if a.size == 0:
        return ()
    lo, hi = float(a.min()), float(a.max())
    if ignore_index is not None and (lo == ignore_index or hi == ignore_index):
        a = a[a != ignore_index]  # the ignored value is an extreme: look again without it
        if a.size == 0:
            return ()
        lo, hi = float(a.min()), float(a.max())
    return lo, hi


def _check_range(
    t: Tensor, lo_ok: float, hi_ok: float, ignore_index: int | None, message: Any
) -> None:
    """Values of ``t`` (ignore_index aside) in [lo_ok, hi_ok]; NaN fails. One pass, one host sync.

    ``message(lo, hi)`` builds the error text from the observed range (None, None under compile).
    """
    r = None if torch.compiler.is_compiling() else small_range(t, ignore_index)
    if r is not None:
        if r and not (r[0] >= lo_ok and r[1] <= hi_ok):
            raise ValueError(message(*r))
        return
    if ignore_index is not None:
        t = torch.where(t == ignore_index, torch.zeros((), dtype=t.dtype, device=t.device), t)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    lo, hi = torch.aminmax(t)
    ok = (lo >= lo_ok) & (hi <= hi_ok)  # False for NaN too
    if torch.compiler.is_compiling():
        assert_in_graph(ok, message(None, None))
        return
    lo_f, hi_f = torch.stack([lo, hi]).tolist()
    if not (lo_f >= lo_ok and hi_f <= hi_ok):
        raise ValueError(message(lo_f, hi_f))


def _got(lo: Any, hi: Any, as_int: bool) -> str:
    if lo is None:
        return ""
    return f", got values in [{int(lo)}, {int(hi)}]" if as_int else f", got values in [{lo}, {hi}]"


def parse_sigmoid_targets(
    logits: Tensor, targets: Tensor, ignore_index: int | None, validate_args: bool
) -> tuple[Tensor, bool]:
    """Returns ``(targets, labels)``: ``labels`` is True for class indices (class dimension removed).

    With a single class (logits (N, 1, ...)), integer or float targets without the class dimension
    are binary labels, 1 = positive (the usual binary head): they are returned with the dimension
    put back, never read as class indices where the value C = 1 would mean background.
    """
    expected = logits.shape[:1] + logits.shape[2:]
    if logits.dim() >= 2 and logits.shape[1] == 1 and targets.shape == expected and targets.shape != logits.shape:
        targets = targets.unsqueeze(1)
    if targets.shape == logits.shape:
        if validate_args and targets.numel() and targets.dtype != torch.bool:
            ii = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
            if targets.is_floating_point():
                _check_range(targets, 0, 1, ignore_index, lambda lo, hi: (
                    f"targets of the logits' shape must be in [0, 1] (hard or soft labels{ii})" + _got(lo, hi, False)))
            else:
                _check_range(targets, 0, 1, ignore_index, lambda lo, hi: (
                    f"integer targets of the logits' shape are 0/1 labels (a binary mask{ii})" + _got(lo, hi, True)
                    + "; for class indices drop the class dimension 1 from the targets' shape"))
        return targets, False
    if logits.dim() >= 2 and targets.shape == expected:
        if targets.is_floating_point() or targets.dtype == torch.bool:
            raise TypeError(
                f"targets of shape {tuple(targets.shape)} (class dimension removed) must hold integer class "
                f"indices, got {targets.dtype}"
            )
        c = logits.shape[1]
        if validate_args and targets.numel():
            ii = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
            _check_range(targets, 0, c, ignore_index, lambda lo, hi: (
                f"class-index targets must be in [0, {c}] (the value C={c} means background){ii}" + _got(lo, hi, True)))
        return targets, True
    raise ValueError(
        f"targets of shape {tuple(targets.shape)} do not match logits of shape {tuple(logits.shape)}: "
        f"expected the logits' shape (0/1 or soft labels) or {tuple(expected)} (class indices, class "
        "dimension 1 removed)"
    )


def parse_softmax_targets(
    logits: Tensor, targets: Tensor, ignore_index: int, validate_args: bool
) -> bool:
    """Returns True for class-probability targets, False for class indices."""
    if logits.dim() < 2:
        raise ValueError(
            f"logits for the softmax focal loss must be (N, C) or (N, C, d1, ..., dk), got shape "
            f"{tuple(logits.shape)}"
        )
    c = logits.shape[1]
    if c < 1:
        raise ValueError("logits must have at least one class (logits.shape[1] >= 1)")
    if c == 1:
        raise ValueError(
            "logits have a single class (logits.shape[1] == 1): a softmax over one class is always 1 and "
            "the loss always 0; for a binary head with one logit use sigmoid_focal_loss (targets 0/1)"
        )
    if targets.shape == logits.shape and targets.is_floating_point():
        if validate_args and targets.numel():
            _check_range(targets, 0, 1, None, lambda lo, hi: "class-probability targets must be in [0, 1]" + _got(lo, hi, False))
        return True
    expected = logits.shape[:1] + logits.shape[2:]
    if targets.shape != expected:
        raise ValueError(
            f"targets of shape {tuple(targets.shape)} do not match logits of shape {tuple(logits.shape)}: "
            f"expected class indices of shape {tuple(expected)} or class probabilities of the logits' shape"
        )
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise TypeError(f"class-index targets must be an integer tensor, got {targets.dtype}")
    if validate_args and targets.numel():
        _check_range(targets, 0, c - 1, ignore_index, lambda lo, hi: (
            f"class-index targets must be in [0, {c - 1}] or ignore_index={ignore_index}" + _got(lo, hi, True)))
    return False
