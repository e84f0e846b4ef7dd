"""The adapters in each engine's own custom-objective form.

At gamma = 0 the focal objective is the logistic / softmax loss, so with the same rounds, the same
init score and the same parameters each engine must give the predictions of its own built-in
``binary`` / ``multiclass`` objective (to 1e-6), with every Hessian choice.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from focalkit.gbdt import HESSIANS, FocalObjective, to_probabilities

ROUNDS = 15


def _data(num_class: int, n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    score = X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 1.0, n)  # noisy: some examples stay misclassified
    if num_class == 2:
        y = (score > 2.0).astype(int)  # ~6% positives: at the prior they sit where the exact Hessian is < 0
    else:
        y = np.digitize(score, [-0.3, 1.0])
    w = rng.uniform(0.5, 2.0, n)
    return X, y, w


# -------------------------------------------------------------------------------------- LightGBM
@pytest.mark.parametrize("num_class", [2, 3])
@pytest.mark.parametrize("hessian", HESSIANS)
def test_lightgbm_gamma_0_reproduces_the_builtin_objective(num_class, hessian):
    lgb = pytest.importorskip("lightgbm")
    from focalkit.gbdt import for_lightgbm as fl

    X, y, w = _data(num_class)
    k = None if num_class == 2 else num_class
    init = fl.init_score(y, num_class=k, sample_weight=w)
    base = {"verbose": -1, "num_threads": 1, "num_leaves": 7, "learning_rate": 0.3, "deterministic": True}
    if k:
        base["num_class"] = k
    builtin = lgb.train({**base, "objective": "binary" if k is None else "multiclass"},
                        lgb.Dataset(X, y, weight=w, init_score=init), ROUNDS)
    focal = lgb.train({**base, "objective": fl.objective(0.0, hessian=hessian)},
                      lgb.Dataset(X, y, weight=w, init_score=init), ROUNDS, feval=fl.metric(0.0))
    p_builtin = builtin.predict(X)  # the built-in objective's own probabilities (init score excluded)
    raw = builtin.predict(X, raw_score=True)
    np.testing.assert_allclose(to_probabilities(raw + init)[:, 1] if k is None else to_probabilities(raw + init),
                               to_probabilities(focal.predict(X, raw_score=True) + init)[:, 1] if k is None
                               else fl.predict_proba(focal, X, init), atol=1e-6)
    assert np.isfinite(p_builtin).all()


def test_lightgbm_sklearn_forms_match_the_train_api():
    lgb = pytest.importorskip("lightgbm")
    from focalkit.gbdt import for_lightgbm as fl

    X, y, w = _data(2)
    init = fl.init_score(y, sample_weight=w)
    params = {"n_estimators": ROUNDS, "num_leaves": 7, "learning_rate": 0.3, "n_jobs": 1, "verbose": -1,
              "deterministic": True}
    clf = lgb.LGBMClassifier(objective=fl.sklearn_objective(2.0, alpha=0.25), **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LightGBM 4.7 renames eval_set; older versions know only that
        clf.fit(X, y, sample_weight=w, init_score=init, eval_set=[(X, y)], eval_sample_weight=[w],
                eval_init_score=[init], eval_metric=fl.sklearn_metric(2.0, alpha=0.25))
    booster = lgb.train({"objective": fl.objective(2.0, alpha=0.25), "num_leaves": 7, "learning_rate": 0.3,
                         "num_threads": 1, "verbose": -1, "deterministic": True},
                        lgb.Dataset(X, y, weight=w, init_score=init), ROUNDS)
    np.testing.assert_allclose(clf.booster_.predict(X, raw_score=True), booster.predict(X, raw_score=True), atol=1e-12)
    # the recorded eval metric is the focal loss of margin + init score (LightGBM keeps scores in float)
    recorded = clf.evals_result_["training"]["focal_loss"][-1]
    margin = booster.predict(X, raw_score=True) + init
    assert recorded == pytest.approx(FocalObjective(2.0, alpha=0.25).loss(margin, y, w), rel=1e-6)


# --------------------------------------------------------------------------------------- XGBoost
@pytest.mark.parametrize("num_class", [2, 3])
@pytest.mark.parametrize("hessian", HESSIANS)
def test_xgboost_gamma_0_reproduces_the_builtin_objective(num_class, hessian):
    xgb = pytest.importorskip("xgboost")
    from focalkit.gbdt import for_xgboost as fx

    X, y, w = _data(num_class)
    k = None if num_class == 2 else num_class
    m0 = fx.base_margin(y, num_class=k, sample_weight=w)
    base = {"max_depth": 3, "eta": 0.3, "nthread": 1}
    if k:
        base["num_class"] = k
    builtin = xgb.train({**base, "objective": "binary:logistic" if k is None else "multi:softprob"},
                        xgb.DMatrix(X, y, weight=w, base_margin=m0), ROUNDS)
    focal = xgb.train({**base, "disable_default_eval_metric": 1}, xgb.DMatrix(X, y, weight=w, base_margin=m0),
                      ROUNDS, obj=fx.objective(0.0, hessian=hessian))
    p_builtin = builtin.predict(xgb.DMatrix(X, base_margin=m0))
    p_focal = fx.predict_proba(focal, X, m0)
    np.testing.assert_allclose(p_focal[:, 1] if k is None else p_focal, p_builtin, atol=1e-6)


def test_xgboost_sklearn_form_matches_the_train_api_and_gives_probabilities():
    xgb = pytest.importorskip("xgboost")
    from focalkit.gbdt import for_xgboost as fx

    X, y, w = _data(3)
    m0 = fx.base_margin(y, num_class=3, sample_weight=w)
    clf = xgb.XGBClassifier(objective=fx.sklearn_objective(2.0, alpha=[1.0, 2.0, 3.0]), n_estimators=ROUNDS,
                            max_depth=3, learning_rate=0.3, n_jobs=1, eval_metric=fx.sklearn_metric(2.0))
    clf.fit(X, y, sample_weight=w, base_margin=m0)
    booster = xgb.train({"max_depth": 3, "eta": 0.3, "nthread": 1, "num_class": 3},
                        xgb.DMatrix(X, y, weight=w, base_margin=m0), ROUNDS,
                        obj=fx.objective(2.0, alpha=[1.0, 2.0, 3.0]))
    np.testing.assert_allclose(clf.predict_proba(X, base_margin=m0), fx.predict_proba(booster, X, m0), atol=1e-6)


# -------------------------------------------------------------------------------------- CatBoost
# CatBoost picks other defaults for custom losses (no backtracking, Bayesian bootstrap): fix them
CATBOOST_SAME = {"leaf_estimation_backtracking": "No", "bootstrap_type": "No", "depth": 3, "learning_rate": 0.3,
                 "thread_count": 1, "random_seed": 0, "verbose": False, "allow_writing_files": False}


@pytest.mark.parametrize("num_class", [2, 3])
@pytest.mark.parametrize("hessian", HESSIANS)
def test_catboost_gamma_0_reproduces_the_builtin_objective(num_class, hessian):
    cb = pytest.importorskip("catboost")
    from focalkit.gbdt import for_catboost as fc

    X, y, w = _data(num_class, n=200)
    k = None if num_class == 2 else num_class
    base = fc.baseline(y, num_class=k, sample_weight=w)
    loss = "Logloss" if k is None else "MultiClass"
    extra = {} if k is None else {"classes_count": k}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        builtin = cb.CatBoostClassifier(loss_function=loss, eval_metric=loss, iterations=ROUNDS, **CATBOOST_SAME)
        builtin.fit(cb.Pool(X, y, weight=w, baseline=base))
        focal = cb.CatBoostClassifier(loss_function=fc.objective(0.0, hessian=hessian, num_class=num_class),
                                      eval_metric=fc.FocalLossMetric(0.0), iterations=ROUNDS, **extra,
                                      **CATBOOST_SAME)
        focal.fit(cb.Pool(X, y, weight=w, baseline=base))
    np.testing.assert_allclose(fc.predict_proba(focal, X, base), fc.predict_proba(builtin, X, base), atol=1e-6)


def test_catboost_metric_is_the_weighted_focal_loss():
    from focalkit.gbdt import for_catboost as fc

    rng = np.random.default_rng(0)
    x, y, w = rng.normal(size=(30, 3)), rng.integers(0, 3, 30), rng.uniform(0.5, 2, 30)
    m = fc.FocalLossMetric(2.0, alpha=[1.0, 2.0, 0.5])
    err, tot = m.evaluate(tuple(x.T), y.astype(float), w)
    assert m.get_final_error(err, tot) == pytest.approx(FocalObjective(2.0, alpha=[1.0, 2.0, 0.5]).loss(x, y, w))
    assert not m.is_max_optimal()


# ------------------------------------------------------------------------- training never NaN
def _train(engine: str, num_class: int, gamma: float, hessian: str):
    from focalkit.gbdt import _engines as E

    X, y, w = _data(num_class, n=300, seed=1)
    focal = FocalObjective(gamma, hessian=hessian)
    k = None if num_class == 2 else num_class
    prior = focal.init_score(y, num_class=k)
    init = np.full(len(y), prior[0]) if k is None else np.tile(prior, (len(y), 1))
    params = {"lightgbm": {"num_leaves": 7, "min_data_in_leaf": 5}, "xgboost": {"max_depth": 3},
              "catboost": {"depth": 3}}[engine]
    t = E.train(engine, E.Part(X, y, None, init), num_class=num_class, focal=focal, n_estimators=10,
                learning_rate=0.3, random_state=0, n_jobs=1, params=params)
    return focal, E.raw_margin(t, X) + init, y, init


@pytest.mark.parametrize("engine", ["lightgbm", "xgboost", "catboost"])
@pytest.mark.parametrize("num_class", [2, 3])
def test_training_never_produces_nan(engine, num_class):
    pytest.importorskip(engine)
    for gamma in (0.5, 1.0, 2.0, 5.0):
        for hessian in HESSIANS:
            focal, margin, y, init = _train(engine, num_class, gamma, hessian)
            assert np.isfinite(margin).all(), (gamma, hessian)
            proba = to_probabilities(margin)
            assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1.0)
            if hessian in ("clipped", "gauss_newton"):  # these lower the training loss (fixed_weight's
                # curvature is (1 + gamma) times too small on easy examples: it overshoots at gamma = 5)
                assert focal.loss(margin, y) < focal.loss(init, y), (gamma, hessian)
