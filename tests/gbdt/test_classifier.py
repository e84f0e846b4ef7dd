"""FocalBoostClassifier: a scikit-learn estimator over LightGBM, XGBoost and CatBoost."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from focalkit.gbdt import FocalBoostClassifier  # noqa: E402

ENGINES = [e for e in ("lightgbm", "xgboost", "catboost") if __import__("importlib").util.find_spec(e)]
SMALL = {"n_estimators": 10, "n_jobs": 1, "random_state": 0}


def _binary(n=400, seed=0):
    return make_classification(n, n_features=6, n_informative=3, weights=[0.9], flip_y=0.02, random_state=seed)


def _multi(n=300, seed=0):
    return make_classification(n, n_features=6, n_informative=4, n_classes=3, weights=[0.7, 0.2],
                               random_state=seed)


def _expected_failures(est):
    if est.engine == "catboost":
        return {"check_sample_weight_equivalence_on_dense_data":
                "CatBoost's quantization and leaf statistics treat a weight of 2 unlike a repeated row "
                "(its own losses do the same)"}
    return {}


@parametrize_with_checks([FocalBoostClassifier(e, n_estimators=5, n_jobs=1, random_state=0) for e in ENGINES],
                         expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


@pytest.mark.parametrize("engine", ENGINES)
def test_binary_and_multiclass_probabilities_are_proper_and_labels_are_kept(engine):
    X, y = _binary()
    labels = np.array(["no", "yes"])[y]
    clf = FocalBoostClassifier(engine, gamma=2.0, **SMALL).fit(X, labels)
    p = clf.predict_proba(X)
    assert p.shape == (len(X), 2) and np.allclose(p.sum(1), 1.0, atol=1e-12) and (p >= 0).all()
    assert list(clf.classes_) == ["no", "yes"] and set(clf.predict(X)) <= {"no", "yes"}
    # predict_proba is the sigmoid of decision_function = init score + trees
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-clf.decision_function(X))), rtol=1e-12)
    Xm, ym = _multi()
    clf = FocalBoostClassifier(engine, gamma=1.0, alpha=[1.0, 2.0, 3.0], **SMALL).fit(Xm, ym + 10)
    pm = clf.predict_proba(Xm)
    assert pm.shape == (len(Xm), 3) and np.allclose(pm.sum(1), 1.0, atol=1e-12)
    assert list(clf.classes_) == [10, 11, 12]
    assert (clf.predict(Xm) == clf.classes_[pm.argmax(1)]).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_gamma_0_is_the_engines_own_logloss_model(engine):
    """Through the whole estimator: same probabilities as the built-in objective from the same start."""
    from focalkit.gbdt import _engines as E

    X, y = _binary()
    params = {"lightgbm": {"num_leaves": 7}, "xgboost": {"max_depth": 3},
              "catboost": {"depth": 3, "leaf_estimation_backtracking": "No", "bootstrap_type": "No"}}[engine]
    clf = FocalBoostClassifier(engine, gamma=0.0, **SMALL, **params).fit(X, y)
    init = np.full(len(y), clf.init_score_[0])
    t = E.train(engine, E.Part(X, y, None, init), num_class=2, focal=None, n_estimators=10, learning_rate=0.1,
                random_state=0, n_jobs=1, params=params)
    p_builtin = 1 / (1 + np.exp(-(E.raw_margin(t, X) + init)))
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], p_builtin, atol=1e-6)


def test_lightgbm_gamma_0_equals_lgbmclassifier_probabilities():
    """LGBMClassifier starts from the same prior (boost_from_average): the probabilities agree."""
    lgb = pytest.importorskip("lightgbm")
    X, y = _binary()
    ours = FocalBoostClassifier("lightgbm", gamma=0.0, **SMALL, num_leaves=7).fit(X, y)
    theirs = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, n_jobs=1, random_state=0, verbose=-1).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
def test_works_in_cross_validation_grid_search_and_pipelines(engine):
    X, y = _binary(300)
    scores = cross_val_score(FocalBoostClassifier(engine, **SMALL), X, y, cv=3, scoring="average_precision")
    assert scores.shape == (3,) and np.isfinite(scores).all()
    grid = GridSearchCV(FocalBoostClassifier(engine, **SMALL), {"gamma": [0.0, 2.0], "hessian": ["gauss_newton",
                        "clipped"]}, cv=2, scoring="neg_log_loss").fit(X, y)
    assert grid.best_params_["gamma"] in (0.0, 2.0)
    pipe = make_pipeline(StandardScaler(), FocalBoostClassifier(engine, **SMALL)).fit(X, y)
    assert pipe.predict_proba(X).shape == (300, 2)


def test_engine_parameters_are_parameters():
    clf = FocalBoostClassifier("lightgbm", num_leaves=7, min_child_samples=3)
    assert clf.get_params()["num_leaves"] == 7
    clf.set_params(num_leaves=15, gamma=1.0)
    assert clf.num_leaves == 15 and clf.gamma == 1.0
    from sklearn.base import clone

    c2 = clone(clf)
    assert c2.get_params() == clf.get_params() and c2.engine_params_ == {"min_child_samples": 3, "num_leaves": 15}


@pytest.mark.parametrize("engine", ENGINES)
def test_sample_weights_act_as_repeated_rows_and_zero_weight_drops_a_row(engine):
    X, y = _binary(200)
    params = {"catboost": {"bootstrap_type": "No"}}.get(engine, {})
    w = np.ones(len(y))
    w[:20] = 0.0
    a = FocalBoostClassifier(engine, **SMALL, **params).fit(X, y, sample_weight=w).predict_proba(X)
    b = FocalBoostClassifier(engine, **SMALL, **params).fit(X[20:], y[20:]).predict_proba(X)
    if engine == "xgboost":  # exact: the weights enter only the gradient sums
        np.testing.assert_allclose(a, b, atol=1e-6)
    # every engine: weighting the positives up raises their predicted probability
    wp = np.where(y == 1, 5.0, 1.0)
    up = FocalBoostClassifier(engine, **SMALL, **params).fit(X, y, sample_weight=wp).predict_proba(X)[:, 1]
    base = FocalBoostClassifier(engine, **SMALL, **params).fit(X, y).predict_proba(X)[:, 1]
    assert up.mean() > base.mean()


@pytest.mark.parametrize("engine", ENGINES)
def test_early_stopping_on_a_validation_set(engine):
    X, y = _binary(600, seed=1)
    Xv, yv = _binary(300, seed=2)
    clf = FocalBoostClassifier(engine, n_estimators=300, learning_rate=0.5, early_stopping_rounds=5, n_jobs=1,
                               random_state=0).fit(X, y, eval_set=(Xv, yv))
    assert 1 <= clf.n_trees_ < 300
    # the held-out focal loss at the chosen round is no worse than after all rounds it trained
    from focalkit.gbdt import FocalObjective

    full = FocalBoostClassifier(engine, n_estimators=clf.n_trees_ + 5, learning_rate=0.5, n_jobs=1,
                                random_state=0).fit(X, y)
    loss = FocalObjective(2.0).loss
    assert loss(clf.decision_function(Xv), yv) <= loss(full.decision_function(Xv), yv) + 1e-9
    # without an eval_set a stratified validation_fraction is held out
    auto = FocalBoostClassifier(engine, n_estimators=300, learning_rate=0.5, early_stopping_rounds=5,
                                validation_fraction=0.2, n_jobs=1, random_state=0).fit(X, y)
    assert auto.n_trees_ < 300


def test_alpha_weights_the_positive_class():
    X, y = _binary()
    lo = FocalBoostClassifier("lightgbm", alpha=0.1, **SMALL).fit(X, y).predict_proba(X)[:, 1]
    hi = FocalBoostClassifier("lightgbm", alpha=0.9, **SMALL).fit(X, y).predict_proba(X)[:, 1]
    assert hi.mean() > lo.mean()


@pytest.mark.parametrize(
    "kwargs, fit_kwargs, exc, match",
    [
        ({"engine": "sklearn"}, {}, ValueError, "engine must be one of"),
        ({"gamma": -1.0}, {}, ValueError, "gamma must be"),
        ({"alpha": 1.5}, {}, ValueError, r"alpha must be in \[0, 1\]"),
        ({"alpha": [1.0, 2.0]}, {}, TypeError, "alpha"),
        ({"hessian": "newton"}, {}, ValueError, "hessian must be one of"),
        ({"n_estimators": 0}, {}, ValueError, "n_estimators must be >= 1"),
        ({"n_estimators": 2.5}, {}, TypeError, "n_estimators must be an int"),
        ({"learning_rate": 0.0}, {}, ValueError, "learning_rate must be > 0"),
        ({"early_stopping_rounds": 0}, {}, ValueError, "early_stopping_rounds must be >= 1"),
        ({"validation_fraction": 1.0}, {}, ValueError, "validation_fraction must be strictly between"),
        ({"objective": "binary"}, {}, ValueError, r"engine parameter\(s\) \['objective'\] are set by"),
        ({}, {"sample_weight": np.ones(3)}, ValueError, "sample_weight must have one weight per example"),
        ({}, {"sample_weight": -np.ones(400)}, ValueError, "sample_weight must be finite and >= 0"),
        ({}, {"eval_set": [1, 2, 3]}, ValueError, "eval_set must be a pair"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, fit_kwargs, exc, match):
    X, y = _binary()
    with pytest.raises(exc, match=match):
        FocalBoostClassifier(**{**SMALL, **kwargs}).fit(X, y, **fit_kwargs)


def test_multiclass_alpha_must_have_one_weight_per_class():
    X, y = _multi()
    with pytest.raises(ValueError, match="alpha must have one weight per class, length K = 3"):
        FocalBoostClassifier(alpha=[1.0, 2.0], **SMALL).fit(X, y)
    with pytest.raises(TypeError, match="alpha for the softmax focal loss"):
        FocalBoostClassifier(alpha=0.25, **SMALL).fit(X, y)


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="at least 2 classes"):
        FocalBoostClassifier(**SMALL).fit(np.zeros((5, 2)), np.ones(5))


def test_importing_focalkit_gbdt_loads_no_engine_and_no_scikit_learn():
    code = (
        "import sys, numpy as np, focalkit.gbdt as g\n"
        "g.binary_focal_grad_hess(np.zeros(3), np.ones(3))\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lightgbm', 'xgboost', 'catboost', 'sklearn'))))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
