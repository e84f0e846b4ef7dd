"""focalkit.tools.tune (api, space, checks, storage, worker, results, report, objective) and ``focalkit tune``: the search, its storage (resume after a kill, several
workers on one SQLite file), the reports, and the errors on bad input.

The search is exercised with cheap analytic objectives (known optimum, known per-fold values) so
that everything asserted has an independent reference; the built-in-data objective is checked
against a direct ``fit_and_score`` call and in one tiny CLI run.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

import focalkit as fk  # noqa: E402
from focalkit.tools.tune import _optuna  # noqa: E402
from focalkit.tools.tune import api as tuning  # noqa: E402
from focalkit.tools.tune.api import class_power_alpha, load_result, load_study, tune  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def quad(gamma: float, alpha: float | None, fold: int) -> float:
    """Smooth objective with its maximum 1 + 0.01 * fold at gamma = 2, alpha = 0.25."""
    a = 0.5 if alpha is None else alpha
    return 1.0 - (gamma - 2.0) ** 2 / 25.0 - (a - 0.25) ** 2 + 0.01 * fold


def _states(storage: str, study: str) -> list:
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def _counted(trials: list) -> list:
    S = optuna.trial.TrialState
    return [t for t in trials if t.state in (S.COMPLETE, S.PRUNED)]


# ------------------------------------------------------------------------------------ the search


def test_small_run_finds_the_optimum_and_reports_against_references() -> None:
    calls: list[tuple] = []

    def f(gamma, alpha, fold):
        calls.append((gamma, alpha, fold))
        return quad(gamma, alpha, fold)

    r = tune(f, n_trials=30, folds=3, storage=None, seed=0, metric="toy")
    assert r.n_trials == 30 and len(r.trials) == 30
    # the references ran first, once each, with gamma = 0 and alpha off / the paper's 0.75
    assert [(t.reference, t.gamma, t.alpha) for t in r.trials[:2]] == [
        ("ce", 0.0, None), ("balanced_ce", 0.0, 0.75)]
    assert calls[:3] == [(0.0, None, 0), (0.0, None, 1), (0.0, None, 2)]
    assert calls[3] == (0.0, 0.75, 0)
    # every trial's score is the mean of the independent per-fold values
    for t in r.trials:
        if t.state == "COMPLETE":
            expect = [quad(t.gamma, t.alpha, k) for k in range(3)]
            assert t.fold_scores == pytest.approx(expect, abs=1e-12)
            assert t.value == pytest.approx(np.mean(expect), abs=1e-12)
            assert t.std == pytest.approx(np.std(expect, ddof=1), abs=1e-12)
    # TPE gets close to the optimum of this smooth function
    assert abs(r.best.gamma - 2.0) < 1.0 and abs(r.best.alpha - 0.25) < 0.2
    assert r.best.value == max(t.value for t in r.trials if t.state == "COMPLETE")
    # comparison with the best reference: CE (alpha off = 0.5 here) beats balanced CE (0.75)
    assert r.best_reference.reference == "ce"
    assert r.improvement == pytest.approx(r.best.value - quad(0, None, 1), abs=1e-12)
    assert r.spread == pytest.approx(0.01, abs=1e-12)
    assert r.paired_std == pytest.approx(0.0, abs=1e-12)  # the fold offsets cancel in pairs
    assert r.exceeds_spread is True
    assert "larger than the fold-to-fold spread" in r.summary()
    top = r.top(5)
    assert [t.value for t in top] == sorted((t.value for t in top), reverse=True)


def test_minimize_direction_and_no_gain_over_references() -> None:
    # minimized: the best is the CE reference (gamma = 0); nothing beats it
    r = tune(lambda g, a, k: g + (0.0 if a is None else 1.0), n_trials=6, folds=2,
             storage=None, direction="minimize", metric="ece")
    assert r.best.reference == "ce" and r.best.value == 0.0
    assert r.improvement == 0.0 and r.exceeds_spread is False
    assert "no focal loss setting beat" in r.summary()


def test_class_power_alpha_matches_class_weights() -> None:
    counts = [900, 90, 10]
    for s, method in ((1.0, "inverse"), (0.5, "inverse_sqrt")):
        np.testing.assert_allclose(class_power_alpha(counts, s),
                                   fk.class_weights(counts, method).double().numpy(), rtol=1e-6)
    np.testing.assert_allclose(class_power_alpha(counts, 0.0), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="class_counts"):
        class_power_alpha([5, 0, 3], 1.0)


def test_multiclass_searches_the_power_of_class_weights() -> None:
    counts = [900, 90, 10]
    seen: list = []

    def f(gamma, alpha, fold, *, reference=None):
        seen.append((reference, alpha))
        assert isinstance(alpha, list) or alpha is None
        return -abs(gamma - 1.0)

    r = tune(f, n_trials=8, folds=1, storage=None, class_counts=counts, seed=1)
    assert r.config["alpha_mode"] == "class_power"
    assert seen[0] == ("ce", None)
    assert seen[1][0] == "balanced_ce"
    np.testing.assert_allclose(seen[1][1], fk.class_weights(counts).numpy(), rtol=1e-6)
    for t in r.trials[2:]:
        assert 0.0 <= t.alpha_param <= 1.0
        assert sum(t.alpha) == pytest.approx(3.0)
        np.testing.assert_allclose(t.alpha, class_power_alpha(counts, t.alpha_param))


def test_binary_counts_give_the_balanced_alpha() -> None:
    seen = []
    tune(lambda g, a, k, reference=None: seen.append((reference, a)) or 0.0, n_trials=2,
         folds=1, storage=None, class_counts=[950, 50])
    assert seen == [("ce", None), ("balanced_ce", 0.95)]


def test_pruning_uses_per_epoch_reports_and_spares_references() -> None:
    def f(gamma, alpha, fold, *, report):
        # validation score per epoch: good near gamma = 2, bad elsewhere
        for epoch in range(4):
            report(quad(gamma, alpha, fold) * (epoch + 1) / 4)
        return quad(gamma, alpha, fold)

    r = tune(f, n_trials=25, folds=2, storage=None, seed=3, n_startup_trials=5)
    states = [t.state for t in r.trials]
    assert r.n_trials == 25  # pruned trials count toward the budget
    assert r.n_pruned == states.count("PRUNED") > 0
    assert all(t.state == "COMPLETE" for t in r.trials if t.reference)
    pruned = [t for t in r.trials if t.state == "PRUNED"]
    assert all(t.value is not None and len(t.fold_scores) < 2 for t in pruned)
    assert r.best.state == "COMPLETE"


def test_running_mean_over_folds_is_reported_without_report_argument(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    tune(quad, n_trials=4, folds=3, storage=url, study="s", prune=False)
    for t in _states(url, "s"):
        scores = [quad(t.user_attrs["focalkit_gamma"], t.user_attrs["focalkit_alpha"], k)
                  for k in range(3)]
        expect = {k: float(np.mean(scores[: k + 1])) for k in range(3)}
        assert t.intermediate_values == pytest.approx(expect, abs=1e-12)


def test_non_finite_scores_count_but_never_win() -> None:
    def f(gamma, alpha, fold):
        return float("nan") if gamma > 2.5 else quad(gamma, alpha, fold)

    r = tune(f, n_trials=20, folds=2, storage=None, seed=0)
    assert r.n_trials == 20
    fails = [t for t in r.trials if t.state == "FAIL"]
    assert fails and all(t.gamma > 2.5 for t in fails)
    assert r.best.gamma <= 2.5 and math.isfinite(r.best.value)
    json.dumps(r.to_dict(), allow_nan=False)  # NaN is written as null


def test_error_in_train_and_score_propagates_and_the_study_resumes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    boom = {"on": True}

    def f(gamma, alpha, fold):
        if boom["on"] and alpha is not None and gamma > 0:
            raise RuntimeError("diverged")
        return quad(gamma, alpha, fold)

    with pytest.raises(RuntimeError, match="diverged"):
        tune(f, n_trials=5, folds=1, storage=url, study="s")
    trials = _states(url, "s")
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert "diverged" in trials[2].user_attrs["focalkit_fail"]
    boom["on"] = False
    r = tune(f, n_trials=5, folds=1, storage=url, study="s")
    assert r.n_trials == 5 and len(_counted(_states(url, "s"))) == 5


def test_resume_in_process_keeps_trials_and_extends(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    r1 = tune(quad, n_trials=5, folds=2, storage=url, study="s")
    before = {t.number: t.value for t in r1.trials}
    r2 = tune(quad, n_trials=5, folds=2, storage=url, study="s")  # nothing left to do
    assert {t.number: t.value for t in r2.trials} == before
    r3 = tune(quad, n_trials=9, folds=2, storage=url, study="s")
    assert r3.n_trials == 9
    assert {t.number: t.value for t in r3.trials if t.number in before} == before
    # the resumed sampler does not replay the first run's random draws
    params = [(t.gamma, t.alpha) for t in r3.trials if t.reference is None]
    assert len(set(params)) == len(params)
    assert load_study(url, "s").n_trials == 9


def test_references_queued_twice_run_once(tmp_path: Path) -> None:
    """Processes (machines) opening a new study at the same moment may each queue the references:
    each runs once, the copies are given back unused."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    tune(quad, n_trials=1, folds=2, storage=url, study="s", references=())
    st = optuna.load_study(study_name="s", storage=url)
    for _ in range(2):  # as two processes would
        for ref in ("ce", "balanced_ce"):
            st.enqueue_trial({}, user_attrs={"focalkit_reference": ref})
    r = tune(quad, n_trials=6, folds=2, storage=url, study="s")
    assert r.n_trials == 6 and len(_counted(_states(url, "s"))) == 6
    assert sorted(t.reference for t in r.trials if t.reference) == ["balanced_ce", "ce"]
    dups = [t for t in _states(url, "s") if t.state == optuna.trial.TrialState.FAIL]
    assert [(t.number, t.user_attrs["focalkit_fail"]) for t in dups] == [(3, "duplicate"), (4, "duplicate")]


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    """Racing to create Optuna's tables (and its schema version row) is retried, not an error."""
    import threading

    from focalkit.tools.tune.storage import make_storage

    errors: list = []
    for round_ in range(8):
        url = f"sqlite:///{tmp_path / f'race{round_}.db'}"
        barrier = threading.Barrier(4)

        def open_it() -> None:
            barrier.wait()
            try:
                make_storage(url, 10, None)
            except Exception as e:  # noqa: BLE001 - collected and reported below
                errors.append(str(e))

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_resuming_with_other_settings_is_an_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    tune(quad, n_trials=2, folds=2, storage=url, study="s")
    with pytest.raises(ValueError, match="folds was 2, now 3"):
        tune(quad, n_trials=2, folds=3, storage=url, study="s")
    with pytest.raises(ValueError, match="gamma_range"):
        tune(quad, n_trials=2, folds=2, storage=url, study="s", gamma_range=(0, 3))
    with pytest.raises(ValueError, match="no study 'other'"):
        load_study(url, "other")


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("url, match", [
    ("not a url", "not a database URL"),
    ("foo://bar", "cannot be opened"),
    ("sqlite:////no/such/folder/t.db", "does not exist"),
    ("postgresql://u:p@localhost:1/db", "storage"),
])
def test_bad_storage_urls(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tune(quad, n_trials=1, storage=url)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"n_trials": 0}, ValueError, "n_trials"),
    ({"n_trials": 2.5}, TypeError, "n_trials"),
    ({"folds": 0}, ValueError, "folds"),
    ({"workers": 0}, ValueError, "workers"),
    ({"gamma_range": (3, 1)}, ValueError, "gamma_range"),
    ({"gamma_range": (-1, 1)}, ValueError, "gamma_range"),
    ({"gamma_range": (0, math.inf)}, ValueError, "gamma_range"),
    ({"alpha_range": (0.2, 1.5)}, ValueError, "alpha_range"),
    ({"alpha_range": "ab"}, TypeError, "alpha_range"),
    ({"direction": "up"}, ValueError, "direction"),
    ({"class_counts": [100, 0]}, ValueError, "single class"),
    ({"class_counts": [100]}, ValueError, "single class"),
    ({"class_counts": [10, 0, 5]}, ValueError, "no examples of class"),
    ({"class_counts": [10, -1]}, ValueError, "class_counts"),
    ({"alpha_mode": "class_power"}, ValueError, "class_counts"),
    ({"alpha_mode": "weird"}, ValueError, "alpha_mode"),
    ({"balanced_alpha": 2.0}, ValueError, "balanced_alpha"),
    ({"references": ("ce", "focal")}, ValueError, "references"),
    ({"timeout": -1}, ValueError, "timeout"),
    ({"study": ""}, ValueError, "study"),
    ({"workers": 2, "storage": None}, ValueError, "workers > 1"),
    ({"objective_id": {"x": object()}}, TypeError, "objective_id"),
])
def test_bad_arguments(kwargs: dict, exc: type, match: str) -> None:
    kwargs = {"storage": None, "n_trials": 2, **kwargs}
    with pytest.raises(exc, match=match):
        tune(quad, **kwargs)


def test_bad_callables(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="train_and_score must be callable"):
        tune(3, storage=None)
    with pytest.raises(TypeError, match="must return a number"):
        tune(lambda g, a, k: "0.5", n_trials=1, storage=None)
    with pytest.raises(TypeError, match="picklable"):
        tune(lambda g, a, k: 0.0, n_trials=2, workers=2, storage=f"sqlite:///{tmp_path / 't.db'}")


def test_data_objective_bad_metric_and_single_class(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metric must be one of"):
        tuning.tune_data("digits", metric="accuracy", storage=None)
    csv = tmp_path / "one.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},x\n" for i in range(20)))
    with pytest.raises(ValueError, match="single class"):
        tuning.tune_data(str(csv), target="label", storage=None)


# ------------------------------------------------------------------------------------ reports


def test_reports_json_plot_html(tmp_path: Path) -> None:
    r = tune(quad, n_trials=12, folds=2, storage=None, seed=0)
    r.to_json(tmp_path / "r.json")
    back = load_result(tmp_path / "r.json")
    assert back == r
    fig = r.plot(tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.axes[0].get_xlabel() == "gamma"
    r.to_html(tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "<svg" in page and page.count("<tr>") == 1 + min(20, len(r.top(20)))
    assert "cross-entropy" in page


@pytest.mark.parametrize("name", ["api", "space", "checks", "schema", "results", "report",
                                  "storage", "worker", "objective", "_optuna"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    mod = importlib.import_module(f"focalkit.tools.tune.{name}")
    failed, attempted = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert failed == 0
    if name in ("api", "space", "checks", "schema"):
        assert attempted >= 1


def test_lazy_fk_tune_does_not_import_optuna_with_the_core() -> None:
    code = "import sys, focalkit as fk; assert 'optuna' not in sys.modules; fk.tune; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert fk.tune is tune


# ------------------------------------------------------------------------------------ processes

_SCRIPT = textwrap.dedent('''
    import os, sys, time
    from focalkit.tools import cancel
    from focalkit.tools.tune.api import tune

    LOG = sys.argv[3]

    def objective(gamma, alpha, fold):
        with open(LOG, "a") as f:
            f.write(f"{os.getpid()} {gamma!r} {alpha!r} {fold}\\n")
        end = time.time() + 60  # barrier: the first trials wait until every worker has started
        while time.time() < end and len({ln.split()[0] for ln in open(LOG)}) < int(sys.argv[5]):
            time.sleep(0.05)
        hold = sys.argv[6] if len(sys.argv) > 6 else ""
        calls = sum(1 for ln in open(LOG) if not ln.rstrip().endswith("HELD"))
        # the test holds the trial mid-way (the 2nd fold of the 4th trial, when a hold file exists
        # from the start), then kills us: no polling race with a fast run on a loaded machine
        if hold and os.path.exists(hold) and calls >= 8:
            with open(LOG, "a") as f:
                f.write(f"{os.getpid()} HELD\\n")
            cancel.sleep(120)  # a long training loop that stops when asked (cancel.check())
        time.sleep(float(sys.argv[4]))
        return 1.0 - (gamma - 2.0) ** 2 / 25.0 - ((0.5 if alpha is None else alpha) - 0.25) ** 2

    if __name__ == "__main__":
        r = tune(objective, n_trials=int(sys.argv[2]), folds=2, storage=sys.argv[1], study="s",
                 workers=int(sys.argv[5]), heartbeat_interval=1, grace_period=2, seed=0)
        print("DONE", r.n_trials)
''')


def _script(tmp_path: Path) -> Path:
    p = tmp_path / "tune_script.py"
    p.write_text(_SCRIPT)
    return p


def _run(script: Path, url: str, n: int, log: Path, sleep: float, workers: int = 1,
         hold: Path | None = None, **kw):
    args = [sys.executable, str(script), url, str(n), str(log), str(sleep), str(workers)]
    args += [str(hold)] if hold is not None else []
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=script.parent, **kw)


def _wait_for(pred, timeout: float = 180.0, proc: subprocess.Popen | None = None) -> None:
    """Waits for ``pred()`` (generously: the machine may be loaded); fails at once with its output
    when ``proc`` ended before."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended first ({proc.returncode}):\n{out}\n{err}")
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigkill", "sigkill-other-host", "sigint"])
def test_interrupt_mid_trial_then_resume_loses_nothing(tmp_path: Path, how: str) -> None:
    """SIGKILL (the trial is found dead: by process id on this host, by its heartbeat from
    elsewhere) or Ctrl-C (the trial is given back at once): the same command resumes, runs the
    interrupted trial's parameters again and finishes exactly the budget."""
    url, log, script = f"sqlite:///{tmp_path / 't.db'}", tmp_path / "log", _script(tmp_path)
    n = 7
    hold = tmp_path / "hold"
    hold.touch()  # the 8th objective call (trial 4's 2nd fold) blocks until the signal
    proc = _run(script, url, n, log, 0.05, hold=hold)
    S = optuna.trial.TrialState
    _wait_for(lambda: log.exists() and "HELD" in log.read_text(), proc=proc)
    (killed,) = [t for t in _states(url, "s") if t.state == S.RUNNING]
    assert "gamma" in killed.params and sum(t.state == S.COMPLETE for t in _states(url, "s")) >= 3
    proc.send_signal(signal.SIGINT if how == "sigint" else signal.SIGKILL)
    proc.communicate(timeout=30)
    before = _states(url, "s")
    completed = {t.number: (t.params, t.value) for t in before if t.state == S.COMPLETE}
    assert completed and killed.params
    if how == "sigint":  # given back at once: failed, and its parameters queued again
        assert before[killed.number].state == S.FAIL
        waiting = [t for t in before if t.state == S.WAITING]
        assert [_optuna.enqueued_params(t) for t in waiting] == [killed.params]
    else:
        assert before[killed.number].state == S.RUNNING
    if how == "sigkill-other-host":  # as if on another machine: only the heartbeat tells
        st = optuna.load_study(study_name="s", storage=url)
        _optuna.set_trial_user_attr(st, _optuna.trial_id(killed), "focalkit_worker",
                                    {"host": "elsewhere", "pid": 1})

    t0 = time.monotonic()
    out, err = _run(script, url, n, log, 0.01).communicate(timeout=120)
    assert f"DONE {n}" in out, err
    after = _states(url, "s")
    counted = _counted(after)
    assert len(counted) == n  # exactly the budget
    # no completed trial lost or changed
    assert {t.number: (t.params, t.value) for t in after if t.number in completed} == completed
    # the interrupted trial was failed and its parameters ran again, once
    assert after[killed.number].state == S.FAIL
    retry = [t for t in counted if t.user_attrs.get("focalkit_retry_of") == killed.number]
    assert len(retry) == 1 and retry[0].params == killed.params
    assert [t.number for t in after if t.state == S.FAIL] == [killed.number]
    if how == "sigkill-other-host":
        assert time.monotonic() - t0 >= 1.0  # waited for the heartbeat's grace period


@pytest.mark.slow
def test_two_workers_share_one_sqlite_storage(tmp_path: Path) -> None:
    url, log, script = f"sqlite:///{tmp_path / 't.db'}", tmp_path / "log", _script(tmp_path)
    n = 10
    out, err = _run(script, url, n, log, 0.15, workers=2).communicate(timeout=180)
    assert f"DONE {n}" in out, err
    trials = _states(url, "s")
    S = optuna.trial.TrialState
    counted = _counted(trials)
    assert len(counted) == n and len({t.number for t in counted}) == n
    # anything else is a slot a worker gave back unused (never a lost or doubled trial)
    assert all(t.user_attrs.get("focalkit_fail") == "surplus" and not t.params
               for t in trials if t not in counted)
    refs = [t.user_attrs.get("focalkit_reference") for t in counted]
    assert sorted(r for r in refs if r) == ["balanced_ce", "ce"]
    params = [tuple(sorted(t.params.items())) for t in counted if t.params]
    assert len(set(params)) == len(params) == n - 2
    # both processes ran trials, and every trial's folds were run by a single process once
    pids = {t.user_attrs["focalkit_worker"]["pid"] for t in counted}
    assert len(pids) == 2
    lines = [ln.split() for ln in log.read_text().splitlines()]
    folds_run = sum(len(t.user_attrs["focalkit_fold_scores"]) for t in counted)
    assert len(lines) == folds_run >= n  # pruned trials stop early
    assert len({(g, a, f) for p, g, a, f in lines}) == folds_run


# ------------------------------------------------------------------------------------ built-in data


def test_data_objective_matches_fit_and_score() -> None:
    from focalkit.tools.experiments.data import kfold, load_data
    from focalkit.tools.experiments.train import LossSpec, fit_and_score

    obj = tuning.DataObjective("digits", folds=2, epochs=2, metric="f1", threads=1)
    assert pickle.loads(pickle.dumps(obj)) == obj
    reports: list[float] = []
    got = obj(1.5, class_power_alpha([10] * 10, 0.0), 1, report=reports.append)
    ds = load_data("digits")
    tr, va = kfold(ds, 2)[1]
    ref = fit_and_score(ds, tr, va, LossSpec("focal", gamma=1.5, alpha=[1.0] * 10), epochs=2,
                        curves=False)
    assert got == pytest.approx(ref["f1"], abs=1e-9)
    assert len(reports) == 2 and reports[-1] == pytest.approx(got, abs=1e-9)
    ce = fit_and_score(ds, tr, va, LossSpec("ce"), epochs=2, curves=False)
    assert obj(0.0, None, 1, reference="ce") == pytest.approx(ce["f1"], abs=1e-9)


def test_cli_small_run_resume_and_errors(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from focalkit.tools.cli import app

    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    args = ["tune", "digits", "-n", "3", "-k", "2", "--epochs", "1", "--storage", url,
            "--out", str(tmp_path)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "3 trials finished" in res.output and "top" in res.output
    data = json.loads((tmp_path / "digits-ap.json").read_text())
    assert data["n_trials"] == 3 and data["metric"] == "ap"
    assert {"ce", "balanced_ce"} <= set(data["references"])
    assert (tmp_path / "digits-ap.png").stat().st_size > 0
    assert "<svg" in (tmp_path / "digits-ap.html").read_text()
    res = runner.invoke(app, args)  # resumes: nothing left to run
    assert res.exit_code == 0 and "3 trials finished" in res.output
    assert len(_states(url, "digits-ap")) == 3
    res = runner.invoke(app, ["tune", "--report-only", "digits", "--storage", url, "--out",
                               str(tmp_path / "report")])
    assert res.exit_code == 0 and "3 trials finished" in res.output

    one = tmp_path / "one.csv"
    one.write_text("a,b,label\n" + "".join(f"{i},{i % 3},x\n" for i in range(20)))
    for bad, match in [
        (["digits", "--storage", "nope"], "not a database URL"),
        (["digits", "--storage", "sqlite:////no/such/dir/t.db"], "does not exist"),
        (["digits", "--metric", "accuracy", "--storage", url], "metric must be one of"),
        ([str(one), "--target", "label", "--storage", url], "single class"),
        (["digits", "-k", "3", "-n", "3", "--epochs", "1", "--storage", url, "--study",
          "digits-ap"], "different search"),
        # checked before any trial runs (issue 12): the study is not even extended
        (["digits", "-n", "5", "-k", "2", "--epochs", "1", "--storage", url, "--out", str(one)],
         "--out"),
    ]:
        res = runner.invoke(app, ["tune", *bad])
        assert res.exit_code == 2, res.output
        assert "error:" in res.output and match in " ".join(res.output.split())
        assert "Traceback" not in res.output
    assert len(_states(url, "digits-ap")) == 3


@pytest.mark.slow
def test_orphan_running_trial_without_owner_is_failed_after_grace(tmp_path: Path) -> None:
    """A process killed between creating a trial and recording its owner leaves a RUNNING trial
    with neither owner nor heartbeat: it is failed after 5 grace periods, not waited for forever."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    kw = dict(folds=1, storage=url, study="s", heartbeat_interval=1, grace_period=1)
    tune(quad, n_trials=2, **kw)
    orphan = optuna.load_study(study_name="s", storage=url).ask()
    t0 = time.monotonic()
    r = tune(quad, n_trials=3, **kw)
    assert time.monotonic() - t0 >= 4.0
    assert r.n_trials == 3
    assert _states(url, "s")[orphan.number].state == optuna.trial.TrialState.FAIL


@pytest.mark.slow
def test_cli_kill_with_sigterm_exits_cleanly_and_resumes(tmp_path: Path) -> None:
    """`kill` of the CLI: the running trial is given back (re-queued), exit code 130 with a
    message, no traceback; the same command then finishes the budget."""
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    cmd = [sys.executable, "-m", "focalkit", "tune", "digits", "-n", "3", "-k", "2", "--epochs",
           "20", "--storage", url, "--out", str(tmp_path), "--no-prune"]
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=env)
    S = optuna.trial.TrialState

    def running() -> bool:
        try:
            return any(t.state == S.RUNNING for t in _states(url, "digits-ap"))
        except Exception:
            return False

    _wait_for(running, timeout=240, proc=proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in " ".join(err.split())
    assert "Traceback" not in err
    trials = _states(url, "digits-ap")
    assert not any(t.state == S.RUNNING for t in trials)
    # the interrupted trial (if the signal did not land between two trials) is queued again
    failed = [t.number for t in trials if t.state == S.FAIL]
    queued = [t.user_attrs["focalkit_retry_of"] for t in trials
              if t.state == S.WAITING and "focalkit_retry_of" in t.user_attrs]
    assert failed == queued
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(_counted(_states(url, "digits-ap"))) == 3
    assert "[  3/3]" in done.stderr


def test_trial_sampler_draws_by_trial_number_not_by_process() -> None:
    """Two machines that start the same command (same seed) at once must not draw the same
    parameters (CI once counted one parameter set twice); one seed still replays exactly."""
    from focalkit.tools.tune.worker import trial_sampler

    def first_draw(number: int) -> float:
        study = optuna.create_study(sampler=trial_sampler(0, number, n_startup_trials=10))
        t = study.ask()
        study.sampler = trial_sampler(0, t.number + number, n_startup_trials=10)
        return t.suggest_float("gamma", 0.0, 5.0)

    assert first_draw(7) == first_draw(7)  # the same (seed, number): the same draw
    assert len({first_draw(k) for k in range(6)}) == 6  # different numbers: different draws
