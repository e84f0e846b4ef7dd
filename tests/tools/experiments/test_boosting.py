"""``focalkit compare --model lightgbm|xgboost|catboost`` and ``focalkit tune --model ...``."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("typer")
import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from focalkit.tools.experiments import compare as C  # noqa: E402
from focalkit.tools.experiments.boosting import BoostConfig, check_model, fit_and_score_boosting  # noqa: E402
from focalkit.tools.experiments.cli import compare as compare_cmd  # noqa: E402
from focalkit.tools.experiments.data import load_data, train_test_split  # noqa: E402
from focalkit.tools.experiments.train import LossSpec, fit_and_score  # noqa: E402

ENGINES = [e for e in ("lightgbm", "xgboost", "catboost") if importlib.util.find_spec(e)]
if not ENGINES:
    pytest.skip("no boosting engine installed (the gbdt extra)", allow_module_level=True)

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _group() -> None:
        pass

    app.command("compare")(compare_cmd)
    return app


def _csv(tmp_path, n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.7 * rng.normal(size=n) > 1.8).astype(int)
    rows = ["f0,f1,f2,f3,target"] + [",".join(f"{v:.5f}" for v in x) + f",{t}" for x, t in zip(X, y)]
    path = tmp_path / "table.csv"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


@pytest.mark.parametrize("engine", ENGINES)
def test_fit_and_score_boosting_returns_what_fit_and_score_returns(engine, digits):
    tr, te = train_test_split(digits, seed=0)
    rounds = 3 if engine == "catboost" else 5  # CatBoost's multi-class objective runs per row in Python
    r = fit_and_score_boosting(digits, tr, te, LossSpec("focal", gamma=2.0), engine=engine,
                               config=BoostConfig(rounds=rounds))
    net = fit_and_score(digits, tr, te, LossSpec("focal", gamma=2.0), epochs=1, curves=True)
    assert set(net) <= set(r) and r["model"] == engine
    assert len(r["loss_curve"]) == rounds and r["loss_curve"][-1] < r["loss_curve"][0]
    assert 0.0 <= r["ap"] <= 1.0 and r["epochs"] == rounds
    np.testing.assert_allclose(np.exp(r["prior"]).sum(), 1.0, rtol=1e-5)  # log class priors (6 decimals)
    assert isinstance(r["alpha"], list) and len(r["alpha"]) == 10  # class weights, as the net's


@pytest.mark.parametrize("engine", ENGINES)
def test_the_losses_keep_their_meaning(engine, tmp_path):
    """CE is the engine's logloss = focal at gamma 0 without alpha; balanced CE = focal at gamma 0 with alpha."""
    ds = load_data(_csv(tmp_path))
    tr, te = train_test_split(ds, seed=1)
    params = {"catboost": {"leaf_estimation_backtracking": "No", "bootstrap_type": "No"}}.get(engine)

    def run(spec):
        return fit_and_score_boosting(ds, tr, te, spec, engine=engine, config=BoostConfig(rounds=10), params=params,
                                      curves=False)

    pairs = [(run(LossSpec("ce")), run(LossSpec("focal", gamma=0.0, alpha="off")))]
    bal = run(LossSpec("balanced_ce"))
    assert 0.5 < bal["alpha"] < 1  # the rare positives weigh more
    if engine != "catboost":  # CatBoost also uses example weights outside the gradients (split scores)
        pairs.append((bal, run(LossSpec("focal", gamma=0.0, alpha=bal["alpha"]))))
    for a, b in pairs:
        for m in ("ap", "ece", "brier"):  # XGBoost predicts in float32
            assert a[m] == pytest.approx(b[m], abs=1e-4), (m, a["loss"], b["loss"])
        # the training objective per round: the same up to the normalization (sum of weights vs N)
        ca, cb = np.asarray(a["loss_curve"]), np.asarray(b["loss_curve"])
        np.testing.assert_allclose(ca / ca[0], cb / cb[0], rtol=1e-3)


def test_compare_cli_with_lightgbm_writes_table_json_and_report(tmp_path):
    if "lightgbm" not in ENGINES:
        pytest.skip("lightgbm not installed")
    csv = _csv(tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(_app(), ["compare", csv, "--model", "lightgbm", "--rounds", "20", "--seeds", "2",
                                 "--gammas", "1,2", "-o", str(out), "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "focal γ=2" in res.output and "answer" in res.output
    data = json.loads((out / "table.json").read_text())
    assert data["config"]["model"] == "lightgbm" and data["train_config"]["rounds"] == 20
    # the command line's default alpha grid of balanced CE (binary task: 0.25 and 0.75 beside the automatic one)
    assert set(data["summary"]) == {"CE", "balanced CE", "balanced CE α=0.25", "balanced CE α=0.75", "focal γ=1", "focal γ=2"}
    assert all(len(r["loss_curve"]) == 20 and r["model"] == "lightgbm" for r in data["runs"])
    assert "lightgbm" in data["environment"] and data["headline"].startswith("best focal")
    html = (out / "table.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "focal γ=2" in html
    # the same command gives the same numbers
    res2 = runner.invoke(_app(), ["compare", csv, "--model", "lightgbm", "--rounds", "20", "--seeds", "2",
                                  "--gammas", "1,2", "-o", str(tmp_path / "o2"), "-q", "--no-html"])
    again = json.loads((tmp_path / "o2" / "table.json").read_text())
    assert [r["ap"] for r in again["runs"]] == [r["ap"] for r in data["runs"]]


@pytest.mark.parametrize(
    "args, message",
    [
        (["dense", "--model", "lightgbm"], "gradient boosting takes tabular data"),
        (["digits", "--model", "sklearn"], "model must be one of"),
        (["digits", "--rounds", "10"], "--rounds sets boosting rounds"),
        (["digits", "--model", "lightgbm", "--epochs", "3"], "boosting takes --rounds"),
        (["digits", "--model", "lightgbm", "--save", "x"], "--save/--init-from need --model net"),
    ],
)
def test_compare_cli_model_errors_without_traceback(tmp_path, args, message):
    res = runner.invoke(_app(), ["compare", *args, "-o", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_check_model_names_the_missing_engine(monkeypatch):
    import importlib.util as iu

    real = iu.find_spec
    monkeypatch.setattr(iu, "find_spec", lambda name, *a: None if name == "catboost" else real(name, *a))
    with pytest.raises(ValueError, match=r"pip install 'focalkit\[gbdt\]' \(catboost is not installed\)"):
        check_model("catboost")


def test_run_compare_config_records_the_boosting_setup(tmp_path):
    if "xgboost" not in ENGINES:
        pytest.skip("xgboost not installed")
    cfg = C.CompareConfig(data=_csv(tmp_path), seeds=[0, 1], losses=["ce", "focal"], gammas=[2.0], model="xgboost",
                          rounds=10)
    result = C.run_compare(cfg)
    assert result["train_config"]["curve_unit"] == "round" and "hessian=" in result["train_config"]["focal"]
    assert result["verdicts"]["ap"]["text"] and len(result["runs"]) == 4


def test_tune_with_a_boosting_model(tmp_path):
    pytest.importorskip("optuna")
    if "lightgbm" not in ENGINES:
        pytest.skip("lightgbm not installed")
    from focalkit.tools.tune import api as tuning

    r = tuning.tune_data(_csv(tmp_path), model="lightgbm", rounds=10, n_trials=3, folds=2, storage=None)
    assert len(r.trials) >= 3 and r.best is not None
    with pytest.raises(ValueError, match="gradient boosting takes tabular data"):
        tuning.tune_data("dense", model="lightgbm", n_trials=1, storage=None)
    with pytest.raises(ValueError, match="rounds sets boosting rounds"):
        tuning.tune_data("digits", rounds=5, n_trials=1, storage=None)


def test_docstring_example():
    import doctest

    from focalkit.tools.experiments import boosting

    result = doctest.testmod(boosting, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
