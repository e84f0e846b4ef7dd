"""Input checks shared by the functional API and the modules (one place, as in torchmetrics).

Shape, type and argument checks are cheap and always run. Checks that must read tensor values
(target range, non-negative weights, alpha values held in a tensor) force a host sync on GPU; they
run when ``validate_args=True`` (the default) and are skipped with ``validate_args=False``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

REDUCTIONS = ("none", "mean", "sum")


def check_logits(logits: Any) -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(
            f"logits must be a floating-point tensor (float32, float16, bfloat16 or float64), "
            f"got {logits.dtype}; convert with logits.float()"
        )


def check_targets_type(targets: Any) -> None:
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if targets.is_complex():
        raise TypeError(f"targets must be a real tensor, got {targets.dtype}")


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


def check_gamma(gamma: Any, name: str = "gamma", *, maximum: float | None = None) -> float:
    """The focusing parameter: a finite number >= 0 (and <= ``maximum`` when given)."""
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


def check_ignore_index(ignore_index: Any, *, allow_none: bool) -> None:
    if ignore_index is None:
        if not allow_none:
            raise TypeError("ignore_index must be an int for the softmax focal loss (default -100)")
        return
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")


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
        if validate_args and bool(normalizer < 0):
            raise ValueError(f"normalizer must be >= 0, got {normalizer.item()}")
        normalizer = normalizer.reshape(())
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
    if validate_args and weight.numel() and bool((weight < 0).any() | weight.isnan().any()):
        raise ValueError("weight must be non-negative (and not NaN)")
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
    if validate_args and a_t.numel() and bool(((a_t < 0) | (a_t > 1) | a_t.isnan()).any()):
        raise ValueError("alpha values must be in [0, 1] (the weight of positives)")
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
    if validate_args and bool(((a_t < 0) | ~torch.isfinite(a_t)).any()):
        raise ValueError("alpha values must be finite and >= 0")
    return a_t


@dataclass(frozen=True)
class SigmoidTargets:
    """How the sigmoid targets are to be read."""

    labels: bool  # True: integer class indices with dimension 1 removed; False: same-shape labels


def _value_range(t: Tensor, ignore_index: int | None, fill: int) -> tuple[float, float]:
    """(min, max) of the targets in one pass and one host sync; ignored entries count as ``fill``.

    NaN propagates into the result, so ``lo >= a and hi <= b`` is False for a NaN target too.
    """
    if ignore_index is not None:
        t = torch.where(t == ignore_index, torch.tensor(fill, dtype=t.dtype, device=t.device), t)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    lo, hi = torch.aminmax(t)
    lo_f, hi_f = torch.stack([lo, hi]).tolist()
    return float(lo_f), float(hi_f)


def parse_sigmoid_targets(
    logits: Tensor, targets: Tensor, ignore_index: int | None, validate_args: bool
) -> SigmoidTargets:
    if targets.shape == logits.shape:
        if validate_args and targets.numel() and targets.dtype != torch.bool:
            lo, hi = _value_range(targets, ignore_index, 0)
            if not (lo >= 0 and hi <= 1):
                if targets.is_floating_point():
                    raise ValueError(
                        "targets of the logits' shape must be in [0, 1] (hard or soft labels"
                        + (f" or ignore_index={ignore_index}" if ignore_index is not None else "")
                        + f"), got values in [{lo}, {hi}]"
                    )
                raise ValueError(
                    "integer targets of the logits' shape are 0/1 labels (a binary mask), got values in "
                    f"[{int(lo)}, {int(hi)}]; for class indices drop the class dimension 1 from the "
                    "targets' shape"
                )
        return SigmoidTargets(labels=False)
    expected = logits.shape[:1] + logits.shape[2:]
    if logits.dim() >= 2 and targets.shape == expected:
        if targets.is_floating_point() or targets.dtype == torch.bool:
            raise TypeError(
                f"targets of shape {tuple(targets.shape)} (class dimension removed) must hold integer class "
                f"indices, got {targets.dtype}"
            )
        c = logits.shape[1]
        if validate_args and targets.numel():
            lo, hi = _value_range(targets, ignore_index, 0)
            if not (lo >= 0 and hi <= c):
                raise ValueError(
                    f"class-index targets must be in [0, {c}] (the value C={c} means background)"
                    + (f" or ignore_index={ignore_index}" if ignore_index is not None else "")
                    + f", got values in [{int(lo)}, {int(hi)}]"
                )
        return SigmoidTargets(labels=True)
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
    if targets.shape == logits.shape and targets.is_floating_point():
        if validate_args and targets.numel():
            lo, hi = _value_range(targets, None, 0)
            if not (lo >= 0 and hi <= 1):
                raise ValueError(f"class-probability targets must be in [0, 1], got values in [{lo}, {hi}]")
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
        lo, hi = _value_range(targets, ignore_index, 0)
        if not (lo >= 0 and hi <= c - 1):
            raise ValueError(
                f"class-index targets must be in [0, {c - 1}] or ignore_index={ignore_index}, got values in "
                f"[{int(lo)}, {int(hi)}]"
            )
    return False
