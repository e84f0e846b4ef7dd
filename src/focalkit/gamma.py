"""Sample-dependent focusing: :class:`PiecewiseGamma` and FLSD-53.

Mukhoti, Kulharia, Sanyal, Golodetz, Torr and Dokania, "Calibrating Deep Neural Networks using
Focal Loss", NeurIPS 2020 (arXiv:2002.09437): a gamma that depends on the predicted probability of
the true class, large for hard examples and smaller for easy ones, calibrates better than one fixed
gamma. FLSD-53 uses gamma = 5 for p_t < 0.2 and gamma = 3 above.

Pass an instance as ``gamma=`` to :func:`focalkit.sigmoid_focal_loss` or
:func:`focalkit.softmax_focal_loss`. gamma is piecewise constant in p_t, so the gradient treats it
as a constant (as the paper's code does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

__all__ = ["FLSD53", "PiecewiseGamma"]


@dataclass(frozen=True, init=False)
class PiecewiseGamma:
    r"""A gamma that is piecewise constant in p_t.

    .. math::
        \gamma(p_t) = v_0 \text{ for } p_t < \theta_0, \quad
        v_i \text{ for } \theta_{i-1} \le p_t < \theta_i, \quad
        v_k \text{ for } p_t \ge \theta_{k-1}

    Args:
        thresholds: k strictly increasing values in (0, 1).
        values: k + 1 finite values >= 0.

    Example:
        >>> import torch, focalkit as fk
        >>> g = fk.PiecewiseGamma([0.2], [5.0, 3.0])
        >>> g(torch.tensor([0.1, 0.2, 0.9]))
        tensor([5., 3., 3.])
    """

    thresholds: tuple[float, ...]
    values: tuple[float, ...]

    def __init__(self, thresholds: Sequence[float], values: Sequence[float]) -> None:
        th = _floats("thresholds", thresholds)
        va = _floats("values", values)
        if len(va) != len(th) + 1:
            raise ValueError(
                f"PiecewiseGamma: values must have one more entry than thresholds "
                f"(got {len(th)} thresholds and {len(va)} values)"
            )
        if any(not 0.0 < t < 1.0 for t in th):
            raise ValueError(f"PiecewiseGamma: thresholds must lie in (0, 1), got {th}")
        if any(b <= a for a, b in zip(th, th[1:])):
            raise ValueError(f"PiecewiseGamma: thresholds must be strictly increasing, got {th}")
        if any(v < 0 for v in va):
            raise ValueError(f"PiecewiseGamma: values (gammas) must be >= 0, got {va}")
        object.__setattr__(self, "thresholds", th)
        object.__setattr__(self, "values", va)

    def __call__(self, p_t: Tensor) -> Tensor:
        """gamma at each p_t (same shape and dtype as ``p_t``)."""
        g = torch.full_like(p_t, self.values[0])
        for th, v in zip(self.thresholds, self.values[1:]):
            g = torch.where(p_t >= th, torch.full_like(p_t, v), g)
        return g

    def at(self, p_t: float) -> float:
        """gamma at one probability (a Python float)."""
        g = self.values[0]
        for th, v in zip(self.thresholds, self.values[1:]):
            if p_t >= th:
                g = v
        return g

    @property
    def max(self) -> float:
        """The largest gamma."""
        return max(self.values)

    def __repr__(self) -> str:
        return f"PiecewiseGamma(thresholds={list(self.thresholds)}, values={list(self.values)})"


def _floats(name: str, seq: Sequence[float]) -> tuple[float, ...]:
    if isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
        raise TypeError(f"PiecewiseGamma: {name} must be a sequence of numbers, got {type(seq).__name__}")
    out = []
    for v in seq:
        if isinstance(v, bool) or not isinstance(v, (int, float)) and not (
            isinstance(v, Tensor) and v.numel() == 1
        ):
            raise TypeError(f"PiecewiseGamma: {name} must hold numbers, got {type(v).__name__}")
        f = float(v)
        if not math.isfinite(f):
            raise ValueError(f"PiecewiseGamma: {name} must be finite, got {f}")
        out.append(f)
    return tuple(out)


#: FLSD-53 (Mukhoti et al. 2020): gamma 5 for p_t < 0.2, 3 above.
FLSD53 = PiecewiseGamma([0.2], [5.0, 3.0])
