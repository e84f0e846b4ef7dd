"""What focalkit writes on Optuna studies and trials: attribute names, and which trials count.

Every module of :mod:`focalkit.tools.tune` (the worker loop, the storage recovery, the results, the
CLI's progress lines) reads these names from here rather than re-typing them.

User attributes of a trial (all prefixed ``focalkit_``):

* ``reference``: ``"ce"`` or ``"balanced_ce"`` for the two fixed references, absent otherwise;
* ``gamma``, ``alpha`` (what ``train_and_score`` received), ``alpha_param`` (the searched
  coordinate: alpha, or the class-weight exponent s);
* ``fold_scores`` (one per finished fold), ``duration_s``;
* ``worker``: ``{"host": ..., "pid": ...}`` of the process running it;
* ``fail``: why a FAIL trial failed: :data:`COUNTED_FAIL` (the score was not finite: counted),
  :data:`SURPLUS_FAIL` (a slot given back unused), :data:`DUPLICATE_FAIL` (a reference that two
  processes starting at once both queued: run once), or ``"error: ..."``;
* ``retry_of``: the number of the interrupted trial whose parameters this one runs again.

The study's user attribute ``focalkit_space`` holds the search definition
(:class:`focalkit.tools.tune.space.SearchSpace`).

    >>> REFERENCE, FAIL
    ('focalkit_reference', 'focalkit_fail')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "ALPHA",
    "ALPHA_PARAM",
    "COUNTED_FAIL",
    "DUPLICATE_FAIL",
    "DURATION_S",
    "FAIL",
    "FOLD_SCORES",
    "GAMMA",
    "PREFIX",
    "REFERENCE",
    "REFERENCE_LABELS",
    "REFERENCES",
    "RETRY_OF",
    "SPACE",
    "SURPLUS_FAIL",
    "WORKER",
    "is_counted",
    "jsonable",
    "n_counted",
]

PREFIX = "focalkit_"  # prefix of the user attributes focalkit writes on studies and trials
REFERENCE = PREFIX + "reference"
GAMMA = PREFIX + "gamma"
ALPHA = PREFIX + "alpha"
ALPHA_PARAM = PREFIX + "alpha_param"
FOLD_SCORES = PREFIX + "fold_scores"
DURATION_S = PREFIX + "duration_s"
WORKER = PREFIX + "worker"
FAIL = PREFIX + "fail"
RETRY_OF = PREFIX + "retry_of"
SPACE = PREFIX + "space"  # a study attribute

COUNTED_FAIL = "nonfinite"  # FAIL reason that still counts toward the budget
SURPLUS_FAIL = "surplus"  # FAIL reason of a slot a worker gave back unused
DUPLICATE_FAIL = "duplicate"  # FAIL reason of a reference queued twice (processes starting at once)

#: The fixed reference trials and their display names.
REFERENCE_LABELS = {"ce": "cross-entropy", "balanced_ce": "alpha-balanced CE"}
REFERENCES = tuple(REFERENCE_LABELS)


def is_counted(trial: Any) -> bool:
    """Whether a (frozen) trial counts toward ``n_trials``: COMPLETE, PRUNED, or FAIL because its
    score was not finite."""
    name = trial.state.name
    if name in ("COMPLETE", "PRUNED"):
        return True
    return name == "FAIL" and trial.user_attrs.get(FAIL) == COUNTED_FAIL


def n_counted(trials: Iterable[Any]) -> int:
    """How many of ``trials`` count toward ``n_trials``."""
    return sum(is_counted(t) for t in trials)


def jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats as None, NumPy scalars as Python numbers and keys as str.

        >>> jsonable({1: [float("nan"), np.float32(0.5)]})
        {'1': [None, 0.5]}
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    return obj
