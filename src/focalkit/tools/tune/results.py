"""What a tuning run found: :class:`TuneResult` (built from a study by :func:`collect`) and its JSON
form (:meth:`TuneResult.to_json`, :func:`load_result`). The plot, HTML and text reports are in
:mod:`focalkit.tools.tune.report`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

from focalkit.tools._format import format_number
from focalkit.tools.tune import _optuna
from focalkit.tools.tune.schema import (
    ALPHA,
    ALPHA_PARAM,
    DURATION_S,
    FOLD_SCORES,
    GAMMA,
    REFERENCE,
    REFERENCE_LABELS,
    SPACE,
    is_counted,
    jsonable,
)

__all__ = ["TrialSummary", "TuneResult", "collect", "load_result"]


@dataclasses.dataclass
class TrialSummary:
    """One finished trial: its parameters, its cross-validated score and the per-fold scores."""

    number: int
    state: str  # "COMPLETE" | "PRUNED" | "FAIL"
    gamma: float
    alpha: float | list[float] | None  # what train_and_score received
    alpha_param: float | None  # the searched coordinate: alpha (scalar) or the exponent s
    reference: str | None  # "ce" | "balanced_ce" | None
    value: float | None  # mean over folds (last intermediate value when pruned)
    fold_scores: list[float]
    std: float | None  # fold-to-fold standard deviation (ddof=1), None with < 2 folds
    duration_s: float | None

    @property
    def label(self) -> str:
        """A short human-readable name of the trial's loss."""
        if self.reference in REFERENCE_LABELS:
            return REFERENCE_LABELS[self.reference]
        return f"focal gamma={format_number(self.gamma, 3)}, {self.alpha_text}"

    @property
    def alpha_text(self) -> str:
        """``alpha=off``, ``alpha=A`` or ``alpha power s=S``."""
        if self.alpha is None:
            return "alpha=off"
        if isinstance(self.alpha, list):
            return f"alpha power s={format_number(self.alpha_param, 3)}"
        return f"alpha={format_number(self.alpha, 3)}"


@dataclasses.dataclass
class TuneResult:
    """What :func:`~focalkit.tools.tune.api.tune` found.

    ``best`` is the best COMPLETE trial (a reference included); ``best_reference`` the better of
    the two cross-entropy references. ``improvement`` is how much better ``best`` is than
    ``best_reference`` (positive is better for either direction), ``spread`` the fold-to-fold
    standard deviation of ``best``'s scores and ``paired_std`` that of the per-fold differences
    best - reference (both computed on the same folds); ``exceeds_spread`` says whether
    ``improvement > spread``. Note that the best of many trials is optimistically biased: confirm
    it on held-out data before reporting it.
    """

    study: str
    storage: str | None
    metric: str
    direction: str
    n_trials: int  # counted (finished) trials
    n_pruned: int
    best: TrialSummary | None
    best_reference: TrialSummary | None
    references: dict[str, TrialSummary]
    improvement: float | None
    spread: float | None
    paired_std: float | None
    exceeds_spread: bool | None
    trials: list[TrialSummary]
    config: dict[str, Any]

    def top(self, k: int = 10) -> list[TrialSummary]:
        """The ``k`` best COMPLETE trials, best first."""
        done = [t for t in self.trials if t.state == "COMPLETE" and t.value is not None]
        return sorted(done, key=lambda t: t.value, reverse=self.direction == "maximize")[:k]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dictionary (what :meth:`to_json` writes)."""
        return jsonable(dataclasses.asdict(self))

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`to_dict` as JSON to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2, allow_nan=False)
            f.write("\n")

    def summary(self) -> str:
        """A few lines: the best trial, its spread, and the comparison with cross-entropy."""
        from focalkit.tools.tune.report import summary_text

        return summary_text(self)

    def plot(self, path: str | os.PathLike[str] | None = None, *, ax: Any = None) -> Any:
        """Objective over the (gamma, alpha) plane: trials coloured by score, interpolated
        contours, pruned trials as crosses, the best as a star, references in the legend.

        Saves to ``path`` (the format follows the suffix: .png, .svg, .pdf) when given, and
        returns the matplotlib Figure. Needs matplotlib.
        """
        from focalkit.tools.tune.report import plot_result

        return plot_result(self, path, ax=ax)

    def to_html(self, path: str | os.PathLike[str]) -> None:
        """A self-contained HTML report: summary, the plot (inline SVG) and the top trials."""
        from focalkit.tools.tune.report import write_html

        write_html(self, path)


def load_result(path: str | os.PathLike[str]) -> TuneResult:
    """Reads a :class:`TuneResult` back from the JSON written by :meth:`TuneResult.to_json`."""
    with open(path, encoding="utf-8") as f:
        d = json.load(f)

    def ts(x: dict[str, Any] | None) -> TrialSummary | None:
        return None if x is None else TrialSummary(**x)

    d["best"] = ts(d["best"])
    d["best_reference"] = ts(d["best_reference"])
    d["references"] = {k: ts(v) for k, v in d["references"].items()}
    d["trials"] = [ts(t) for t in d["trials"]]
    return TuneResult(**d)


def _summary(t: Any) -> TrialSummary:
    ua = t.user_attrs
    scores = [float(x) for x in ua.get(FOLD_SCORES, [])]
    if t.state.name == "COMPLETE":
        value = t.value
    elif t.intermediate_values:
        value = t.intermediate_values[max(t.intermediate_values)]
    else:
        value = None
    dur = ua.get(DURATION_S)
    return TrialSummary(
        number=t.number, state=t.state.name, gamma=float(ua.get(GAMMA, 0.0)),
        alpha=ua.get(ALPHA), alpha_param=ua.get(ALPHA_PARAM), reference=ua.get(REFERENCE),
        value=value, fold_scores=scores,
        std=float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
        duration_s=None if dur is None else float(dur),
    )


def collect(study: Any) -> TuneResult:
    """Builds the :class:`TuneResult` of an Optuna study created by
    :func:`~focalkit.tools.tune.api.tune`."""
    space = study.user_attrs.get(SPACE)
    if space is None:
        raise ValueError(f"study {study.study_name!r} was not created by focalkit.tools.tune.api")
    direction = space["direction"]
    sign = 1.0 if direction == "maximize" else -1.0
    summaries = [_summary(t) for t in study.get_trials(deepcopy=False) if is_counted(t)]
    complete = [t for t in summaries if t.state == "COMPLETE" and t.value is not None]
    best = max(complete, key=lambda t: sign * t.value, default=None)
    refs: dict[str, TrialSummary] = {}
    for t in complete:
        if t.reference and (t.reference not in refs or sign * t.value > sign * refs[t.reference].value):
            refs[t.reference] = t
    best_ref = max(refs.values(), key=lambda t: sign * t.value, default=None)
    improvement = spread = paired_std = exceeds = None
    if best is not None and best_ref is not None:
        improvement = sign * (best.value - best_ref.value)
        spread = best.std
        if len(best.fold_scores) == len(best_ref.fold_scores) > 1:
            diff = sign * (np.asarray(best.fold_scores) - np.asarray(best_ref.fold_scores))
            paired_std = float(np.std(diff, ddof=1))
        exceeds = None if spread is None else bool(improvement > spread)
    return TuneResult(
        study=study.study_name,
        storage=_optuna.storage_url(study),
        metric=space["metric"],
        direction=direction,
        n_trials=len(summaries),
        n_pruned=sum(t.state == "PRUNED" for t in summaries),
        best=best,
        best_reference=best_ref,
        references=refs,
        improvement=improvement,
        spread=spread,
        paired_std=paired_std,
        exceeds_spread=exceeds,
        trials=summaries,
        config=space,
    )
