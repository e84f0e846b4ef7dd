r"""The search space of :func:`focalkit.tools.tune.tune`: gamma and alpha (or a class-weight power).

* gamma in ``gamma_range``;
* ``alpha_mode="scalar"``: alpha, the weight of positives, in ``alpha_range``;
* ``alpha_mode="class_power"``: an exponent :math:`s` in ``alpha_range`` on inverse class
  frequencies, :math:`\alpha_c = C \, n_c^{-s} / \sum_{c'} n_{c'}^{-s}`
  (:func:`class_power_alpha`);
* the references: cross-entropy (gamma = 0, alpha None) and alpha-balanced cross-entropy
  (gamma = 0, ``balanced_alpha``).

:class:`SearchSpace` is stored on the study (``focalkit_space``) so that resuming with other
settings is detected.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from focalkit.weights import inverse_power_weights

__all__ = ["SearchSpace", "class_power_alpha", "suggest"]


def class_power_alpha(class_counts: Sequence[float], power: float) -> list[float]:
    r"""Per-class alpha :math:`\alpha_c = C\, n_c^{-s} / \sum_{c'} n_{c'}^{-s}` (sums to C).

    ``power = 1`` equals ``fk.class_weights(counts, "inverse")``, ``0.5`` equals
    ``"inverse_sqrt"`` and ``0`` gives uniform weights.

    Example:
        >>> [round(a, 4) for a in class_power_alpha([900, 90, 10], 1.0)]
        [0.0297, 0.297, 2.6733]
    """
    n = np.asarray(class_counts, dtype=np.float64)
    if n.ndim != 1 or n.size < 2 or np.any(n <= 0) or not np.all(np.isfinite(n)):
        raise ValueError("class_counts must hold at least two positive, finite counts")
    if not (isinstance(power, numbers.Real) and math.isfinite(power)):
        raise ValueError(f"power must be a finite number, got {power!r}")
    return inverse_power_weights(n, float(power)).tolist()


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The search space and objective definition, stored on the study to detect mismatches."""

    gamma_range: tuple[float, float]
    alpha_mode: str  # "scalar" | "class_power"
    alpha_range: tuple[float, float]
    class_counts: list[int] | None
    balanced_alpha: float | list[float]
    folds: int
    direction: str
    metric: str
    objective: dict[str, Any] | None = None

    def as_attr(self) -> dict[str, Any]:
        """The study attribute (JSON: the ranges as lists)."""
        d = dataclasses.asdict(self)
        d["gamma_range"] = list(self.gamma_range)
        d["alpha_range"] = list(self.alpha_range)
        return d


def suggest(trial: Any, space: SearchSpace, reference: str | None) -> tuple[float, Any, float | None]:
    """``(gamma, alpha, alpha_param)`` of a trial: fixed for a reference, else drawn by the sampler.

    ``alpha`` is what ``train_and_score`` receives (None, a float, or C per-class weights) and
    ``alpha_param`` the searched coordinate (alpha or the exponent s; None for cross-entropy).
    """
    if reference == "ce":
        return 0.0, None, None
    if reference == "balanced_ce":
        alpha = space.balanced_alpha
        return 0.0, alpha, alpha if isinstance(alpha, float) else 1.0
    gamma = trial.suggest_float("gamma", *space.gamma_range)
    if space.alpha_mode == "scalar":
        alpha = trial.suggest_float("alpha", *space.alpha_range)
        return gamma, alpha, alpha
    power = trial.suggest_float("alpha_power", *space.alpha_range)
    return gamma, class_power_alpha(space.class_counts, power), power
