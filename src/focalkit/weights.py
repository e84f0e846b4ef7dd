"""Class weights for alpha, and the prior-probability bias initialization of the paper."""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["class_weights", "inverse_power_weights", "prior_bias"]

_METHODS = ("inverse", "inverse_sqrt", "effective_number")


def class_weights(
    counts: Sequence[float] | np.ndarray | Tensor,
    method: str = "inverse",
    beta: float = 0.999,
) -> Tensor:
    r"""Per-class weights (a softmax ``alpha``) from class counts, normalized to sum to C.

    With :math:`n_c` samples of class c:

    * ``"inverse"``: :math:`w_c \propto 1 / n_c`
    * ``"inverse_sqrt"``: :math:`w_c \propto 1 / \sqrt{n_c}`
    * ``"effective_number"`` (Cui et al., "Class-Balanced Loss Based on Effective Number of
      Samples", CVPR 2019): :math:`w_c \propto (1 - \beta) / (1 - \beta^{n_c})`

    then :math:`w \leftarrow C\, w / \sum_c w_c`.

    Args:
        counts: 1-D sequence/array/tensor of C positive counts (zero counts are an error: the
            weight of a class that never occurs is undefined).
        method: one of ``"inverse"``, ``"inverse_sqrt"``, ``"effective_number"``.
        beta: in [0, 1), for ``"effective_number"`` only.

    Returns:
        float32 tensor of shape (C,) summing to C.

    Example:
        >>> import focalkit as fk
        >>> fk.class_weights([900, 90, 10])
        tensor([0.0297, 0.2970, 2.6733])
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if isinstance(counts, Tensor):
        n = counts.detach().cpu().double().numpy()
    else:
        try:
            n = np.asarray(counts, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError("counts must be a 1-D sequence of numbers") from None
    if n.ndim != 1 or n.size == 0:
        raise ValueError(f"counts must be a non-empty 1-D sequence, got shape {n.shape}")
    if not np.all(np.isfinite(n)) or np.any(n < 0):
        raise ValueError("counts must be finite and non-negative")
    if np.any(n == 0):
        raise ValueError(
            f"counts has a zero for class(es) {np.flatnonzero(n == 0).tolist()}: the weight of a class "
            "that never occurs is undefined; drop the class or give it a count"
        )
    if method == "inverse":
        w = inverse_power_weights(n, 1.0)
    elif method == "inverse_sqrt":
        w = inverse_power_weights(n, 0.5)
    else:
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta!r}")
        w = (1.0 - beta) / (1.0 - np.power(beta, n))
        w = w * (n.size / w.sum())
    return torch.as_tensor(w, dtype=torch.float32)


def inverse_power_weights(counts: np.ndarray, power: float) -> np.ndarray:
    r"""Float64 weights :math:`w_c = C\, n_c^{-s} / \sum_{c'} n_{c'}^{-s}` (they sum to C).

    ``power`` s = 1 is :func:`class_weights`' ``"inverse"``, 0.5 its ``"inverse_sqrt"``, 0 uniform
    weights; ``focalkit tune`` searches s. ``counts`` must be positive (not checked here).

    Example:
        >>> import numpy as np
        >>> inverse_power_weights(np.array([900.0, 90.0, 10.0]), 1.0).round(4).tolist()
        [0.0297, 0.297, 2.6733]
    """
    w = np.asarray(counts, dtype=np.float64) ** (-float(power))
    return w * (w.size / w.sum())


def prior_bias(pi: float = 0.01) -> float:
    r"""Bias that makes a sigmoid classifier start at probability ``pi`` (Lin et al., Sec. 4.1).

    .. math:: b = -\log\frac{1 - \pi}{\pi}

    Initializing the final classification layer's bias this way (the paper uses pi = 0.01)
    keeps the huge number of background examples from swamping the loss in the first
    iterations of training.

    Args:
        pi: prior probability of the foreground, in (0, 1).

    Returns:
        The bias, a Python float.

    Example:
        >>> import torch, focalkit as fk
        >>> head = torch.nn.Conv2d(256, 80, 3, padding=1)
        >>> _ = torch.nn.init.constant_(head.bias, fk.prior_bias(0.01))
        >>> round(fk.prior_bias(0.01), 4)
        -4.5951
    """
    if isinstance(pi, bool) or not isinstance(pi, numbers.Real):
        raise TypeError(f"pi must be a float in (0, 1), got {type(pi).__name__}")
    pi = float(pi)
    if not 0.0 < pi < 1.0:
        raise ValueError(f"pi must be in (0, 1), got {pi}")
    return -math.log((1.0 - pi) / pi)
