"""Gradient boosting in place of the neural net: ``focalkit compare/tune --model lightgbm|xgboost|catboost``.

:func:`fit_and_score_boosting` is the boosting counterpart of
:func:`~focalkit.tools.experiments.train.fit_and_score` and returns the same keys, so the table,
verdicts, JSON and HTML report of ``focalkit compare`` (and ``focalkit tune``'s objective) work
unchanged. The losses keep their meaning:

* ``ce``: the engine's own logloss (binary) / softmax (multi-class) objective;
* ``balanced_ce``: the same with class-balanced example weights (``alpha_t`` of each example, the
  alpha :func:`~focalkit.tools.experiments.train.resolve_alpha` gives the net);
* ``focal``: :mod:`focalkit.gbdt`'s focal objective (gamma, the same alpha as the net, the default
  Hessian).

Every loss starts from the same init score, the analogue of the net's prior-bias init: the class
prior of the training split (``prior="auto"``), a given positive rate, or 0 (``prior=None``); and
trains the same number of rounds with the same learning rate, tree parameters and seed.
Boosting runs on the CPU, one thread per model.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from focalkit.tools.experiments.data import Dataset
from focalkit.tools.experiments.metrics import evaluate
from focalkit.tools.experiments.train import LossSpec, resolve_alpha

__all__ = ["BOOSTING_MODELS", "MODELS", "BoostConfig", "check_model", "fit_and_score_boosting"]

MODELS = ("net", "lightgbm", "xgboost", "catboost")
BOOSTING_MODELS = MODELS[1:]
N_CHECKPOINTS = 10  # validation scores reported to ``on_epoch`` (tune's pruner) per model


@dataclass
class BoostConfig:
    """The settings every loss shares (engine defaults for everything else)."""

    rounds: int = 200
    learning_rate: float = 0.1
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_model(model: str, ds: Dataset | None = None) -> None:
    """A known model whose library is installed and that fits the task; ValueError otherwise."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if model == "net":
        return
    import importlib.util

    if importlib.util.find_spec(model) is None:
        raise ValueError(f"--model {model} needs the engine: pip install 'focalkit[gbdt]' ({model} is not installed)")
    if ds is not None and ds.task == "dense":
        raise ValueError(
            f"--model {model}: gradient boosting takes tabular data (binary or multi-class); {ds.name!r} is "
            "the dense detection-like task (use a CSV/NPZ table or 'digits')"
        )


def _init_margin(ds: Dataset, y_train: np.ndarray, prior: float | str | None) -> np.ndarray:
    from focalkit.gbdt import prior_init_score

    k = ds.num_classes if ds.task == "multiclass" else 2
    if prior is None:
        return np.zeros(1 if k == 2 else k)
    if prior == "auto":
        return prior_init_score(y_train, num_class=None if k == 2 else k)
    pi = float(prior)
    if k == 2:
        return np.array([math.log(pi) - math.log1p(-pi)])
    return np.zeros(k)  # one probability says nothing about K classes: start uniform


def _example_weights(ds: Dataset, y: np.ndarray, alpha: Any) -> np.ndarray | None:
    """``alpha_t`` per example: binary alpha for positives, 1 - alpha for negatives; or alpha[y]."""
    if alpha is None:
        return None
    if ds.task == "binary":
        a = float(alpha)
        return np.where(y == 1, a, 1.0 - a)
    return np.asarray(alpha, dtype=np.float64)[y]


def fit_and_score_boosting(
    ds: Dataset,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    loss: LossSpec,
    *,
    engine: str,
    seed: int = 0,
    config: BoostConfig | None = None,
    prior: float | str | None = "auto",
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    curves: bool = True,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``engine`` with ``loss`` on ``train_idx`` and score it on ``val_idx``.

    Args:
        ds, train_idx, val_idx, loss, seed, prior, curves: as
            :func:`~focalkit.tools.experiments.train.fit_and_score`.
        engine: ``"lightgbm"``, ``"xgboost"`` or ``"catboost"``.
        config: rounds, learning rate, threads (:class:`BoostConfig`).
        on_epoch: called as ``on_epoch(k, val_metrics)`` for k = 1..10 with the validation metrics
            after k tenths of the rounds (after training: for ``focalkit tune``'s pruner, which then
            stops the remaining folds); may raise.
        on_progress: called as ``on_progress(rounds, rounds)`` when the model is trained.
        params: extra engine parameters.

    Returns:
        The keys of ``fit_and_score``: held-out ``ap, f1, balanced_accuracy, ece, brier`` (and
        curves), ``train_time``, ``loss_curve`` (the training objective after each round: focal
        loss, or the engine's (weighted) logloss), ``alpha``, ``prior`` (the init margin),
        ``epochs`` (= rounds), ``seed``, ``loss``, plus ``model``.

    Example:
        >>> from focalkit.tools.experiments.data import load_data, train_test_split
        >>> ds = load_data("digits")
        >>> tr, te = train_test_split(ds, seed=0)
        >>> r = fit_and_score_boosting(ds, tr, te, LossSpec("focal", gamma=2.0), engine="lightgbm",
        ...                            config=BoostConfig(rounds=5))
        >>> 0.0 <= r["ap"] <= 1.0 and len(r["loss_curve"]) == 5
        True
    """
    from focalkit.gbdt import DEFAULT_HESSIAN, FocalObjective, to_probabilities
    from focalkit.gbdt import _engines as E

    check_model(engine, ds)
    if engine == "net":
        raise ValueError("fit_and_score_boosting trains a boosting engine; use fit_and_score for the net")
    if not isinstance(loss, LossSpec):
        raise TypeError(f"loss must be a LossSpec, got {type(loss).__name__}")
    cfg = config or BoostConfig()
    train_idx = np.asarray(train_idx, dtype=np.int64)
    val_idx = np.asarray(val_idx, dtype=np.int64)
    if train_idx.size == 0 or val_idx.size == 0:
        raise ValueError("train_idx and val_idx must not be empty")
    k = ds.num_classes if ds.task == "multiclass" else 2
    y_tr, y_va = ds.y[train_idx].astype(np.int64), ds.y[val_idx].astype(np.int64)
    alpha = resolve_alpha(loss, ds, train_idx)
    if alpha is not None and not isinstance(alpha, float):
        alpha = [float(v) for v in alpha]
    init = _init_margin(ds, y_tr, prior)

    def rows(n: int) -> np.ndarray:
        return np.full(n, init[0]) if k == 2 else np.tile(init, (n, 1))

    focal = weights = None
    if loss.kind == "focal":
        focal = FocalObjective(gamma=loss.gamma, alpha=alpha, hessian=DEFAULT_HESSIAN)
    elif loss.kind == "balanced_ce":
        weights = _example_weights(ds, y_tr, alpha)
    part = E.Part(ds.X[train_idx], y_tr, weights, rows(len(train_idx)))
    t0 = time.perf_counter()
    trained = E.train(engine, part, num_class=k, focal=focal, n_estimators=cfg.rounds,
                      learning_rate=cfg.learning_rate, random_state=seed, n_jobs=cfg.threads,
                      params=dict(params or {}), valid=part)  # the training objective after each round
    train_time = time.perf_counter() - t0
    loss_curve = [float(v) for v in trained.history]
    if loss_curve and not all(math.isfinite(v) for v in loss_curve):
        raise FloatingPointError(f"{loss.name}: the training loss became non-finite ({engine})")
    if on_progress is not None:
        on_progress(cfg.rounds, cfg.rounds)

    def probs(n_trees: int | None = None) -> np.ndarray:
        p = to_probabilities(E.raw_margin(trained, ds.X[val_idx], n_trees) + rows(len(val_idx)))
        return p[:, 1] if k == 2 else p

    if on_epoch is not None:
        for step in range(1, N_CHECKPOINTS + 1):
            n_trees = max(1, round(trained.n_trees * step / N_CHECKPOINTS))
            m = evaluate(ds.task, probs(n_trees), y_va, num_classes=ds.num_classes, rare_classes=ds.rare_classes,
                         curves=False)
            on_epoch(step, {key: m[key] for key in ("ap", "f1", "balanced_accuracy", "ece", "brier")}
                     | {"loss": loss_curve[n_trees - 1] if loss_curve else float("nan")})
    result = evaluate(ds.task, probs(), y_va, num_classes=ds.num_classes, rare_classes=ds.rare_classes,
                      curves=curves)
    result.update(train_time=train_time, loss_curve=loss_curve, alpha=alpha,
                  prior=[round(float(v), 6) for v in init], epochs=cfg.rounds, seed=seed, loss=loss.name,
                  model=engine)
    return result
