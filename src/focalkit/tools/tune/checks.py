"""Argument checks of :func:`focalkit.tools.tune.tune` (one clear TypeError/ValueError naming the
argument), built on the core validators of :mod:`focalkit._validation`.

:func:`check_arguments` turns ``tune()``'s keyword arguments into the :class:`SearchSpace` stored on
the study and the :class:`RunOptions` every worker runs with.

    >>> check_int("folds", 3, 1)
    3
    >>> check_range("gamma_range", (0, 5), 0.0, float("inf"))
    (0.0, 5.0)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from focalkit import _validation as V
from focalkit.tools.tune.schema import REFERENCES
from focalkit.tools.tune.space import SearchSpace, class_power_alpha

__all__ = ["RunOptions", "check_arguments", "check_class_counts", "check_int", "check_range"]


def check_int(name: str, value: Any, low: int) -> int:
    """An int >= ``low`` (TypeError for a non-int, bool included; ValueError below ``low``)."""
    try:
        n = V.check_count(name, value)
    except ValueError:  # negative: reported against ``low`` below
        n = int(value)
    if n < low:
        raise ValueError(f"{name} must be >= {low}, got {n}")
    return n


def check_range(name: str, value: Any, low: float, high: float) -> tuple[float, float]:
    """A ``(lo, hi)`` pair of finite numbers with ``low <= lo < hi <= high``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and low <= lo < hi <= high):
        raise ValueError(f"{name} must satisfy {low} <= low < high <= {high}, got ({lo}, {hi})")
    return lo, hi


def check_class_counts(class_counts: Any) -> list[int] | None:
    """Per-class example counts (None passes): 1-D, finite, >= 0, at least two classes present and
    none empty."""
    if class_counts is None:
        return None
    try:
        counts = np.asarray(class_counts, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("class_counts must be a sequence of per-class counts") from None
    if counts.ndim != 1 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("class_counts must be a 1-D sequence of non-negative counts")
    if np.count_nonzero(counts) < 2:
        raise ValueError(
            f"class_counts {counts.astype(int).tolist()}: the data has a single class; focal loss "
            "needs at least two classes with examples to tune"
        )
    if np.any(counts == 0):
        raise ValueError(
            f"class_counts has no examples of class(es) {np.flatnonzero(counts == 0).tolist()}"
        )
    return [int(c) for c in counts]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How every worker runs trials (the arguments of ``tune()`` that are not the search space)."""

    heartbeat_interval: int = 10
    grace_period: int | None = None
    timeout: float | None = None
    prune: bool = True
    pruner_warmup_steps: int = 0
    n_startup_trials: int = 10


def check_arguments(
    *, n_trials: Any, folds: Any, workers: Any, storage: Any, study: Any, seed: Any,
    gamma_range: Any, alpha_range: Any, class_counts: Any, alpha_mode: Any,
    alpha_power_range: Any, balanced_alpha: Any, direction: Any, metric: Any, timeout: Any,
    prune: Any, pruner_warmup_steps: Any, n_startup_trials: Any, heartbeat_interval: Any,
    grace_period: Any, references: Sequence[str], objective_id: Any,
) -> tuple[SearchSpace, RunOptions, int, int, int | None]:
    """Checks ``tune()``'s arguments; returns ``(space, options, n_trials, workers, seed)``."""
    n_trials = check_int("n_trials", n_trials, 1)
    folds = check_int("folds", folds, 1)
    workers = check_int("workers", workers, 1)
    n_startup_trials = check_int("n_startup_trials", n_startup_trials, 0)
    pruner_warmup_steps = check_int("pruner_warmup_steps", pruner_warmup_steps, 0)
    heartbeat_interval = check_int("heartbeat_interval", heartbeat_interval, 1)
    if grace_period is not None:
        grace_period = check_int("grace_period", grace_period, heartbeat_interval)
    if seed is not None:
        seed = check_int("seed", seed, 0)
    if timeout is not None:
        timeout = V.check_real("timeout", timeout)
        if timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if not isinstance(study, str) or not study:
        raise ValueError(f"study must be a non-empty name, got {study!r}")
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"metric must be a non-empty name, got {metric!r}")
    if isinstance(references, str) or set(references) - set(REFERENCES):
        raise ValueError(f"references must be a subset of {REFERENCES}, got {references!r}")
    gamma_range = check_range("gamma_range", gamma_range, 0.0, math.inf)
    counts = check_class_counts(class_counts)
    if alpha_mode == "auto":
        alpha_mode = "class_power" if counts is not None and len(counts) > 2 else "scalar"
    balanced: float | list[float]
    if alpha_mode == "scalar":
        arange = check_range("alpha_range", alpha_range, 0.0, 1.0)
        if balanced_alpha is None:
            balanced = 0.75 if counts is None or len(counts) != 2 else counts[0] / sum(counts)
        else:
            balanced = V.check_alpha_scalar(balanced_alpha, "balanced_alpha")
    elif alpha_mode == "class_power":
        if counts is None:
            raise ValueError("alpha_mode='class_power' needs class_counts")
        arange = check_range("alpha_power_range", alpha_power_range, -math.inf, math.inf)
        if balanced_alpha is not None:
            raise ValueError("balanced_alpha is for alpha_mode='scalar'; with class_power the "
                             "balanced reference uses the inverse-frequency weights")
        balanced = class_power_alpha(counts, 1.0)
    else:
        raise ValueError(f"alpha_mode must be 'auto', 'scalar' or 'class_power', got {alpha_mode!r}")
    if workers > 1 and storage is None:
        raise ValueError("workers > 1 needs a storage URL that all processes share (storage=None "
                         "is an in-memory study)")
    if objective_id is not None:
        try:
            objective_id = json.loads(json.dumps(objective_id, allow_nan=False))
        except (TypeError, ValueError):
            raise TypeError("objective_id must be JSON-serializable") from None
    space = SearchSpace(gamma_range, alpha_mode, arange, counts, balanced, folds, direction, metric,
                        objective_id)
    options = RunOptions(heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                         timeout=timeout, prune=bool(prune), pruner_warmup_steps=pruner_warmup_steps,
                         n_startup_trials=n_startup_trials)
    return space, options, n_trials, workers, seed
