"""``FocalBoostClassifier``: focal-loss gradient boosting as a scikit-learn classifier."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from focalkit import _validation as V
from focalkit.gbdt import _engines as E
from focalkit.gbdt import derivatives as D
from focalkit.gbdt.objective import FocalObjective, to_probabilities

__all__ = ["FocalBoostClassifier"]

# set by the estimator itself, so not accepted as engine parameters
_RESERVED = {
    "lightgbm": ("objective", "num_class", "num_classes", "init_score", "num_boost_round", "num_iterations",
                 "n_estimators"),
    "xgboost": ("objective", "obj", "num_class", "base_margin", "base_score", "num_boost_round"),
    "catboost": ("loss_function", "objective", "iterations", "n_estimators", "num_boost_round", "baseline",
                 "classes_count"),
}


def _validate_data(est: Any, X: Any, y: Any = None, *, reset: bool) -> Any:
    """scikit-learn's checks of X (and y); NaN features are allowed: every engine handles them."""
    from sklearn.utils.validation import validate_data  # scikit-learn >= 1.6

    kw = {"reset": reset, "ensure_all_finite": "allow-nan"}
    return validate_data(est, X, **kw) if y is None else validate_data(est, X, y, **kw)


class FocalBoostClassifier(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees (LightGBM, XGBoost or CatBoost) trained with focal loss.

    Binary problems use the sigmoid focal loss (:func:`focalkit.sigmoid_focal_loss`), more classes
    the softmax focal loss (:func:`focalkit.softmax_focal_loss`), through the engine's own
    custom-objective interface (:mod:`focalkit.gbdt.for_lightgbm`, ``for_xgboost``,
    ``for_catboost``). Boosting starts from the class prior (:func:`focalkit.gbdt.prior_init_score`,
    the analogue of :func:`focalkit.prior_bias`) and predictions are ``sigmoid / softmax(init +
    trees)``, so the probabilities are proper (rows sum to 1). At ``gamma=0`` (and ``alpha=None``)
    the model is the engine's own logloss / softmax model.

    Args:
        engine: ``"lightgbm"``, ``"xgboost"`` or ``"catboost"``.
        gamma: focusing parameter >= 0.
        alpha: binary: weight of the positive class (``classes_[1]``) in [0, 1], or None; multi-class:
            None or one non-negative weight per class, in ``classes_`` order.
        hessian: the Hessian used by the Newton steps (:data:`focalkit.gbdt.HESSIANS`); the default
            :data:`focalkit.gbdt.DEFAULT_HESSIAN` is never negative (see docs/gbdt.md).
        n_estimators: boosting rounds (the most, under early stopping).
        learning_rate: shrinkage of each tree.
        early_stopping_rounds: stop when the focal loss on the validation set has not improved for
            this many rounds (None: no early stopping). The validation set is ``eval_set`` given to
            :meth:`fit`, or else a stratified ``validation_fraction`` of the training data.
        validation_fraction: held out for early stopping when no ``eval_set`` is given.
        random_state: seed of the engine and of the validation split.
        n_jobs: threads of the engine (None: the engine's default).
        **engine_params: passed to the engine as they are (``num_leaves``, ``max_depth``,
            ``min_child_weight``, ``l2_leaf_reg``, ...).

    Attributes:
        classes_: the class labels; ``n_classes_``; ``n_features_in_``.
        init_score_: the prior init margin, (1,) binary or (K,).
        booster_: the engine's trained model (a LightGBM/XGBoost Booster, a CatBoostClassifier).
        n_trees_: the rounds used for prediction (the best round under early stopping).

    Example:
        >>> from sklearn.datasets import make_classification
        >>> X, y = make_classification(300, weights=[0.9], random_state=0)
        >>> clf = FocalBoostClassifier("lightgbm", gamma=2.0, n_estimators=20, n_jobs=1, min_child_samples=5)
        >>> proba = clf.fit(X, y).predict_proba(X)
        >>> proba.shape, bool(abs(proba.sum(1) - 1).max() < 1e-12)
        ((300, 2), True)
    """

    def __init__(
        self,
        engine: str = "lightgbm",
        gamma: float = 2.0,
        alpha: Any = None,
        hessian: str = D.DEFAULT_HESSIAN,
        *,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        early_stopping_rounds: int | None = None,
        validation_fraction: float = 0.1,
        random_state: int | None = None,
        n_jobs: int | None = None,
        **engine_params: Any,
    ) -> None:
        self.engine = engine
        self.gamma = gamma
        self.alpha = alpha
        self.hessian = hessian
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_jobs = n_jobs
        for k, v in engine_params.items():
            setattr(self, k, v)

    # ------------------------------------------------------------------------ sklearn plumbing
    def _engine_param_names(self) -> list[str]:
        named = set(super()._get_param_names())
        return sorted(k for k in vars(self) if k not in named and not k.startswith("_") and not k.endswith("_"))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        out = super().get_params(deep=deep)
        out.update({k: getattr(self, k) for k in self._engine_param_names()})
        return out

    def set_params(self, **params: Any) -> FocalBoostClassifier:
        named = set(self._get_param_names())
        for k, v in params.items():
            if k in named:
                super().set_params(**{k: v})
            else:  # an engine parameter
                setattr(self, k, v)
        return self

    @property
    def engine_params_(self) -> dict[str, Any]:
        """The engine parameters given as keyword arguments."""
        return {k: getattr(self, k) for k in self._engine_param_names()}

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values go to the engines, which all handle them
        return tags

    # ------------------------------------------------------------------------------ checks
    def _checked(self, num_class: int) -> dict[str, Any]:
        if self.engine not in E.ENGINES:
            raise ValueError(f"engine must be one of {E.ENGINES}, got {self.engine!r}")
        gamma = V.check_gamma(self.gamma)
        hessian = D.check_hessian(self.hessian)
        if num_class == 2:
            alpha = D.check_binary_alpha(self.alpha)
        else:
            alpha = D.check_class_alpha(self.alpha, num_class)
            alpha = None if alpha is None else tuple(alpha.tolist())
        n = V.check_count("n_estimators", self.n_estimators)
        if n < 1:
            raise ValueError(f"n_estimators must be >= 1, got {n}")
        lr = V.check_real("learning_rate", self.learning_rate)
        if lr <= 0:
            raise ValueError(f"learning_rate must be > 0, got {lr}")
        es = self.early_stopping_rounds
        if es is not None and (V.check_count("early_stopping_rounds", es) < 1):
            raise ValueError(f"early_stopping_rounds must be >= 1 or None, got {es}")
        V.check_probability("validation_fraction", self.validation_fraction)
        if self.random_state is not None and not isinstance(self.random_state, numbers.Integral):
            raise TypeError(f"random_state must be an int or None, got {type(self.random_state).__name__}")
        if self.n_jobs is not None and (isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, numbers.Integral)):
            raise TypeError(f"n_jobs must be an int or None, got {type(self.n_jobs).__name__}")
        params = self.engine_params_
        bad = sorted(set(params) & set(_RESERVED[self.engine]))
        if bad:
            raise ValueError(
                f"engine parameter(s) {bad} are set by FocalBoostClassifier (the focal objective, the prior "
                "init score, n_estimators); use gamma/alpha/hessian/n_estimators instead"
            )
        return {"focal": FocalObjective(gamma=gamma, alpha=alpha, hessian=hessian), "n_estimators": n,
                "learning_rate": lr, "params": params}

    # ------------------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any, sample_weight: Any = None, eval_set: Any = None,
            eval_sample_weight: Any = None) -> FocalBoostClassifier:
        """Fit on X (n, d) and labels y (n,).

        Args:
            sample_weight: (n,) non-negative example weights (they multiply the loss).
            eval_set: ``(X_val, y_val)`` for early stopping (see ``early_stopping_rounds``).
            eval_sample_weight: (n_val,) weights of the eval set.
        """
        if y is None:
            raise ValueError("FocalBoostClassifier requires y to be passed, but the target y is None")
        X, y = _validate_data(self, X, y, reset=True)
        check_classification_targets(y)
        enc = LabelEncoder().fit(y)
        self.classes_ = enc.classes_
        self.n_classes_ = len(self.classes_)
        if self.n_classes_ < 2:
            raise ValueError(f"y must hold at least 2 classes to fit a classifier, got {self.n_classes_} class")
        cfg = self._checked(self.n_classes_)
        yi = enc.transform(y)
        w = self._weights(sample_weight, len(yi), "sample_weight")
        k = self.n_classes_
        self.init_score_ = D.prior_init_score(yi, num_class=None if k == 2 else k, sample_weight=w)
        valid = None
        if eval_set is not None:
            Xv, yv = self._eval_set(eval_set, enc)
            valid = E.Part(Xv, yv, self._weights(eval_sample_weight, len(yv), "eval_sample_weight"),
                           self._init_rows(len(yv)))
        elif self.early_stopping_rounds:
            X, yi, w, valid = self._split_validation(X, yi, w)
        part = E.Part(X, yi, w, self._init_rows(len(yi)))
        self._trained = E.train(
            self.engine, part, num_class=k, focal=cfg["focal"], n_estimators=cfg["n_estimators"],
            learning_rate=cfg["learning_rate"], random_state=self.random_state, n_jobs=self.n_jobs,
            params=cfg["params"], valid=valid, early_stopping_rounds=self.early_stopping_rounds,
        )
        self.booster_ = self._trained.model
        self.n_trees_ = self._trained.n_trees
        return self

    def _weights(self, w: Any, n: int, name: str) -> np.ndarray | None:
        if w is None:
            return None
        a = np.asarray(w, dtype=np.float64).reshape(-1)
        if a.shape != (n,):
            raise ValueError(f"{name} must have one weight per example ({n}), got shape {np.shape(w)}")
        if not (np.isfinite(a).all() and (a >= 0).all()):
            raise ValueError(f"{name} must be finite and >= 0")
        if a.sum() <= 0:
            raise ValueError(f"{name} must not be all zero: a zero total weight leaves nothing to fit")
        return a

    def _eval_set(self, eval_set: Any, enc: LabelEncoder) -> tuple[Any, np.ndarray]:
        if isinstance(eval_set, list) and len(eval_set) == 1 and isinstance(eval_set[0], tuple):
            eval_set = eval_set[0]
        if not (isinstance(eval_set, tuple) and len(eval_set) == 2):
            raise ValueError("eval_set must be a pair (X_val, y_val)")
        Xv = _validate_data(self, eval_set[0], reset=False)
        yv = np.asarray(eval_set[1]).reshape(-1)
        if len(yv) != Xv.shape[0]:
            raise ValueError(f"eval_set: X_val has {Xv.shape[0]} rows but y_val has {len(yv)} labels")
        unknown = np.setdiff1d(yv, self.classes_)
        if unknown.size:
            raise ValueError(f"eval_set: y_val holds classes not seen in y: {unknown.tolist()[:5]}")
        return Xv, enc.transform(yv)

    def _split_validation(self, X: Any, y: np.ndarray, w: np.ndarray | None) -> tuple:
        from sklearn.model_selection import train_test_split

        idx = np.arange(len(y))
        counts = np.bincount(y)
        strat = y if counts.min() >= 2 else None
        tr, va = train_test_split(idx, test_size=self.validation_fraction, random_state=self.random_state,
                                  stratify=strat)
        valid = E.Part(X[va], y[va], None if w is None else w[va], self._init_rows(len(va)))
        return X[tr], y[tr], None if w is None else w[tr], valid

    def _init_rows(self, n: int) -> np.ndarray:
        s = self.init_score_
        return np.full(n, s[0]) if self.n_classes_ == 2 else np.tile(s, (n, 1))

    # --------------------------------------------------------------------------- predict
    def decision_function(self, X: Any) -> np.ndarray:
        """The margin ``init + trees``: (n,) log-odds of ``classes_[1]``, or (n, K)."""
        check_is_fitted(self, "booster_")
        X = _validate_data(self, X, reset=False)
        raw = E.raw_margin(self._trained, X)
        return raw + (self.init_score_[0] if self.n_classes_ == 2 else self.init_score_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, K) in ``classes_`` order; rows sum to 1."""
        return to_probabilities(self.decision_function(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        check_is_fitted(self, "booster_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
