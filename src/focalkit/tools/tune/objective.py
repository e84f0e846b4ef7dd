"""The built-in ``train_and_score``: ``focalkit compare``'s data sources and models (what
``focalkit tune`` and :func:`focalkit.tools.tune.api.tune_data` run)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from focalkit.tools.tune.checks import check_class_counts

__all__ = ["DataObjective", "data_counts"]


@dataclasses.dataclass
class DataObjective:
    """``train_and_score`` on ``focalkit compare``'s data and models.

    Fold ``f`` trains the task's model (:func:`focalkit.tools.experiments.train.fit_and_score`) with
    focal loss (gamma, alpha), cross-entropy or alpha-balanced cross-entropy on the other folds of
    a stratified k-fold split and returns ``metric`` on fold ``f``; after every epoch it reports
    the validation ``metric`` to the pruner. Picklable: each worker process loads the data once.

    ``model="lightgbm"``, ``"xgboost"`` or ``"catboost"`` trains gradient-boosted trees instead
    (:func:`focalkit.tools.experiments.boosting.fit_and_score_boosting`, ``rounds`` rounds): the
    references are the engine's logloss and its class-weighted version, and the pruner gets the
    validation ``metric`` at each tenth of the rounds.
    """

    source: str
    target: str | None = None
    data_seed: int = 0
    folds: int = 5
    metric: str = "ap"
    epochs: int | None = None
    seed: int = 0
    threads: int | None = None
    model: str = "net"
    rounds: int | None = None
    _cache: Any = dataclasses.field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = None
        return state

    def setup(self) -> None:
        """Loads the data and what the first training imports (called by each worker before it
        takes a trial, so that no trial waits for imports: the first ``torch.optim.Adam`` imports
        ``torch._dynamo``, seconds on a busy machine, during which a stop request waits)."""
        self.data()
        if self.model == "net":
            import torch

            import focalkit.tools.experiments.train  # noqa: F401

            torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])

    def data(self) -> tuple[Any, list[tuple[np.ndarray, np.ndarray]]]:
        """The dataset and its folds (loaded once per process)."""
        if self._cache is None:
            from focalkit.tools.experiments.data import kfold, load_data

            ds = load_data(self.source, target=self.target, seed=self.data_seed)
            self._cache = (ds, kfold(ds, self.folds, seed=self.data_seed))
        return self._cache

    def __call__(
        self, gamma: float, alpha: float | list[float] | None, fold: int, *,
        report: Callable[[float], None] | None = None, reference: str | None = None,
    ) -> float:
        import torch

        from focalkit.tools.experiments.train import LossSpec, fit_and_score

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        ds, splits = self.data()
        train_idx, val_idx = splits[fold]
        if reference == "ce":
            spec = LossSpec("ce")
        elif reference == "balanced_ce":
            spec = LossSpec("balanced_ce", alpha=alpha)
        else:
            spec = LossSpec("focal", gamma=gamma, alpha=alpha)
        on_epoch = None if report is None else (lambda _epoch, m: report(m[self.metric]))
        try:
            if self.model != "net":
                from focalkit.tools.experiments.boosting import BoostConfig, fit_and_score_boosting

                config = BoostConfig() if self.rounds is None else BoostConfig(rounds=self.rounds)
                r = fit_and_score_boosting(ds, train_idx, val_idx, spec, engine=self.model, seed=self.seed,
                                           config=config, on_epoch=on_epoch, curves=False)
                return float(r[self.metric])
            r = fit_and_score(ds, train_idx, val_idx, spec, seed=self.seed, epochs=self.epochs,
                              on_epoch=on_epoch, curves=False)
        except FloatingPointError:  # training diverged: a non-finite score (counted, never best)
            return float("nan")
        return float(r[self.metric])


def data_counts(ds: Any) -> tuple[list[int] | None, float | None]:
    """``(class_counts for class_power alpha, balanced scalar alpha)`` of a dataset.

    Multi-class: the class counts (the balanced reference uses the inverse-frequency weights);
    binary: n_neg / n; dense (anchors x classes): the share of negative anchor-class pairs.
    """
    from focalkit.tools.experiments.data import class_counts

    counts = class_counts(ds).astype(np.int64)
    if ds.task == "multiclass":
        return check_class_counts(counts), None
    if ds.task == "binary":
        checked = check_class_counts(counts)
        assert checked is not None
        return None, checked[0] / sum(checked)
    total = float(ds.y.size) * ds.num_classes  # dense: anchors x classes
    pos = float(counts.sum())
    if pos == 0:
        raise ValueError(f"{ds.name}: the data have no positive (foreground) example: a single class")
    return None, (total - pos) / total
