"""Training and raw prediction with each engine, through the adapters (focal) or the engine's own loss.

One function per step and engine, used by :class:`focalkit.gbdt.FocalBoostClassifier` and by
``focalkit compare --model``: the focal objective and the built-in logloss / softmax run through
the same code (same rounds, same init score, same parameters), so a comparison changes the loss
only. The engines are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from focalkit.gbdt.objective import FocalObjective

__all__ = ["ENGINES", "Part", "raw_margin", "train"]

ENGINES = ("lightgbm", "xgboost", "catboost")


@dataclass
class Part:
    """Rows of one data set: features, labels (0/1 or 0..K-1), weights or None, init margins."""

    X: Any
    y: np.ndarray
    weight: np.ndarray | None
    init: np.ndarray  # (N,) binary or (N, K)


@dataclass
class Trained:
    engine: str
    model: Any
    n_trees: int  # boosting rounds to use when predicting (the best one under early stopping)
    num_class: int
    history: list[float] = field(default_factory=list)  # the eval metric on ``valid`` after each round


def _first_metric(evals: dict) -> list[float]:
    """The first metric's values of the first eval set in an engine's ``{set: {metric: [...]}}``."""
    for per_set in evals.values():
        for values in per_set.values():
            return [float(v) for v in values]
    return []


def train(
    engine: str,
    part: Part,
    *,
    num_class: int,
    focal: FocalObjective | None,
    n_estimators: int,
    learning_rate: float,
    random_state: int | None,
    n_jobs: int | None,
    params: dict[str, Any],
    valid: Part | None = None,
    early_stopping_rounds: int | None = None,
) -> Trained:
    """Train ``n_estimators`` rounds of ``engine`` on ``part`` from its init margins.

    ``focal=None`` trains the engine's own logloss (binary) / softmax (multi-class) objective.
    """
    fn = {"lightgbm": _train_lightgbm, "xgboost": _train_xgboost, "catboost": _train_catboost}[engine]
    return fn(part, num_class=num_class, focal=focal, n_estimators=n_estimators, learning_rate=learning_rate,
              random_state=random_state, n_jobs=n_jobs, params=dict(params), valid=valid,
              early_stopping_rounds=early_stopping_rounds)


def raw_margin(trained: Trained, X: Any, n_trees: int | None = None) -> np.ndarray:
    """The trees' raw score for X, (N,) or (N, K), **without** the init margin."""
    n = trained.n_trees if n_trees is None else n_trees
    m = trained.model
    if trained.engine == "lightgbm":
        out = m.predict(X, raw_score=True, num_iteration=n)
    elif trained.engine == "xgboost":
        import xgboost as xgb

        shape = (len(X),) if trained.num_class == 2 else (len(X), trained.num_class)
        dm = xgb.DMatrix(X, base_margin=np.zeros(shape))
        out = m.predict(dm, output_margin=True, iteration_range=(0, n))
    else:
        out = m.predict(X, prediction_type="RawFormulaVal", ntree_end=n)
    out = np.asarray(out, dtype=np.float64)
    return out.reshape(-1) if trained.num_class == 2 else out.reshape(len(X), trained.num_class)


# ---------------------------------------------------------------------------------------- LightGBM
def _train_lightgbm(part: Part, *, num_class: int, focal: FocalObjective | None, n_estimators: int,
                    learning_rate: float, random_state: int | None, n_jobs: int | None, params: dict,
                    valid: Part | None, early_stopping_rounds: int | None) -> Trained:
    import lightgbm as lgb

    from focalkit.gbdt import for_lightgbm as fl

    # feature_pre_filter off: on tiny data LightGBM would drop every feature (none can be split with
    # min_data_in_leaf rows), and a custom objective then stops with a fatal error
    p: dict[str, Any] = {"verbose": -1, "learning_rate": learning_rate, "feature_pre_filter": False}
    if random_state is not None:
        p["seed"] = int(random_state)
    if n_jobs is not None:
        p["num_threads"] = int(n_jobs)
    if num_class > 2:
        p["num_class"] = num_class
    feval = None
    if focal is None:
        p["objective"] = "binary" if num_class == 2 else "multiclass"
        p["metric"] = "binary_logloss" if num_class == 2 else "multi_logloss"
    else:
        p["objective"] = fl.objective(focal.gamma, alpha=focal.alpha, hessian=focal.hessian)
        p["metric"] = "None"
        feval = fl.metric(focal.gamma, alpha=focal.alpha)
    p.update(params)
    dtrain = lgb.Dataset(part.X, part.y, weight=part.weight, init_score=part.init, free_raw_data=False)
    callbacks, valid_sets, evals = [], [], {}
    if valid is not None:
        valid_sets = [lgb.Dataset(valid.X, valid.y, weight=valid.weight, init_score=valid.init, reference=dtrain)]
        callbacks.append(lgb.record_evaluation(evals))
        if early_stopping_rounds:
            callbacks.append(lgb.early_stopping(early_stopping_rounds, verbose=False))
    booster = lgb.train(p, dtrain, num_boost_round=n_estimators, valid_sets=valid_sets, feval=feval,
                        callbacks=callbacks)
    n = booster.best_iteration if early_stopping_rounds and valid is not None and booster.best_iteration > 0 \
        else booster.current_iteration()
    return Trained("lightgbm", booster, int(n), num_class, _first_metric(evals))


# ----------------------------------------------------------------------------------------- XGBoost
def _train_xgboost(part: Part, *, num_class: int, focal: FocalObjective | None, n_estimators: int,
                   learning_rate: float, random_state: int | None, n_jobs: int | None, params: dict,
                   valid: Part | None, early_stopping_rounds: int | None) -> Trained:
    import xgboost as xgb

    from focalkit.gbdt import for_xgboost as fx

    p: dict[str, Any] = {"eta": learning_rate, "verbosity": 0}
    if random_state is not None:
        p["seed"] = int(random_state)
    if n_jobs is not None:
        p["nthread"] = int(n_jobs)
    if num_class > 2:
        p["num_class"] = num_class
    obj = metric = None
    if focal is None:
        p["objective"] = "binary:logistic" if num_class == 2 else "multi:softprob"
        p["eval_metric"] = "logloss" if num_class == 2 else "mlogloss"
    else:
        obj = fx.objective(focal.gamma, alpha=focal.alpha, hessian=focal.hessian)
        metric = fx.metric(focal.gamma, alpha=focal.alpha)
        p["disable_default_eval_metric"] = 1
    p.update(params)
    dtrain = xgb.DMatrix(part.X, part.y, weight=part.weight, base_margin=part.init)
    evals = []
    if valid is not None:
        evals = [(xgb.DMatrix(valid.X, valid.y, weight=valid.weight, base_margin=valid.init), "valid")]
    record: dict = {}
    booster = xgb.train(p, dtrain, num_boost_round=n_estimators, evals=evals, obj=obj, custom_metric=metric,
                        early_stopping_rounds=early_stopping_rounds if evals else None, verbose_eval=False,
                        evals_result=record)
    if early_stopping_rounds and evals:
        n = booster.best_iteration + 1
    else:
        n = booster.num_boosted_rounds()
    return Trained("xgboost", booster, int(n), num_class, _first_metric(record))


# ---------------------------------------------------------------------------------------- CatBoost
def _train_catboost(part: Part, *, num_class: int, focal: FocalObjective | None, n_estimators: int,
                    learning_rate: float, random_state: int | None, n_jobs: int | None, params: dict,
                    valid: Part | None, early_stopping_rounds: int | None) -> Trained:
    import warnings

    from catboost import CatBoostClassifier, Pool

    from focalkit.gbdt import for_catboost as fc

    p: dict[str, Any] = {"iterations": n_estimators, "learning_rate": learning_rate, "verbose": False,
                         "allow_writing_files": False}
    if random_state is not None:
        p["random_seed"] = int(random_state)
    if n_jobs is not None:
        p["thread_count"] = int(n_jobs)
    if focal is None:
        p["loss_function"] = "Logloss" if num_class == 2 else "MultiClass"
        p["eval_metric"] = p["loss_function"]
    else:
        p["loss_function"] = fc.objective(focal.gamma, alpha=focal.alpha, hessian=focal.hessian, num_class=num_class)
        p["eval_metric"] = fc.FocalLossMetric(focal.gamma, alpha=focal.alpha)
        if num_class > 2:  # a custom metric does not tell CatBoost the number of classes
            p["classes_count"] = num_class
    p.update(params)
    model = CatBoostClassifier(**p)
    train_pool = Pool(part.X, part.y, weight=part.weight, baseline=part.init)
    eval_pool = None
    if valid is not None:
        eval_pool = Pool(valid.X, valid.y, weight=valid.weight, baseline=valid.init)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to import numba")
        model.fit(train_pool, eval_set=eval_pool, early_stopping_rounds=early_stopping_rounds if eval_pool else None,
                  use_best_model=bool(early_stopping_rounds and eval_pool is not None))
    evals = {k: v for k, v in model.get_evals_result().items() if k == "validation"}
    return Trained("catboost", model, int(model.tree_count_), num_class, _first_metric(evals))
