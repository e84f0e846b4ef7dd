"""``focalkit tune`` against a real PostgreSQL server: the multi-machine path (issue 12).

The module starts a throwaway cluster on loopback (``initdb`` + ``pg_ctl`` in a temporary folder,
a free port, trust authentication; as the ``postgres`` user when the tests run as root, since the
server refuses to run as root) and stops it afterwards. Where that cannot start (no server binaries,
no driver, no unprivileged user) the tests are skipped with the reason; ``.ci/run`` installs
Debian's ``postgresql`` so that CI runs them.

* Two ``focalkit tune`` processes share one ``--storage postgresql://...`` study, as two machines
  would; one is killed with SIGKILL in the middle of a trial; the other and a restarted one finish
  exactly ``--n-trials`` finished trials: none counted twice, none lost (the killed trial's
  parameters run again, once).
* A trial of a process on "another machine" that stopped beating is failed after the grace period
  and its parameters re-run (the heartbeat path, on the server).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from focalkit.tools.tune import _optuna  # noqa: E402
from focalkit.tools.tune.api import load_study, tune  # noqa: E402
from focalkit.tools.tune.schema import (  # noqa: E402
    DUPLICATE_FAIL,
    REFERENCE,
    RETRY_OF,
    SURPLUS_FAIL,
    WORKER,
)
from tune_helpers import trials as _trials, wait_for as _wait_for  # noqa: E402

S = optuna.trial.TrialState


def _server_binaries() -> tuple[str, str] | None:
    found = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(found):
        return found  # type: ignore[return-value]
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2])
                         if p.split("/")[-2].isdigit() else 0, reverse=True):
        if os.path.exists(f"{bindir}/initdb") and os.path.exists(f"{bindir}/pg_ctl"):
            return f"{bindir}/initdb", f"{bindir}/pg_ctl"
    return None


def _need_driver() -> None:
    import importlib.util

    if not any(importlib.util.find_spec(d) for d in ("psycopg", "psycopg2")):
        pytest.skip("no PostgreSQL driver (psycopg or psycopg2): pip install 'focalkit[tune]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url():
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields the URL of its ``postgres`` database."""
    _need_driver()
    binaries = _server_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
                    "postgresql (.ci/run does)")
    initdb, pg_ctl = binaries
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: use the unprivileged postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        runuser = shutil.which("runuser") or shutil.which("setpriv")
        if runuser is None:
            pytest.skip("running as root and neither runuser nor setpriv is available")
        prefix = ([runuser, "-u", "postgres", "--"] if runuser.endswith("runuser") else
                  [runuser, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"])
    root = tempfile.mkdtemp(prefix="focalkit-pg-")
    if prefix:
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = os.path.join(root, "data"), _free_port()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)

    r = run(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    if r.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    r = run(pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(root, "log"), "-w", "-t", "60", "start")
    if r.returncode != 0:
        log = Path(root, "log").read_text(errors="replace") if Path(root, "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server did not start: {(log or r.stderr).strip()[-300:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(pg_ctl, "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _counted(trials: list) -> list:
    return [t for t in trials if t.state in (S.COMPLETE, S.PRUNED)]


@pytest.mark.slow
def test_two_cli_processes_one_killed_mid_trial_finish_exactly_the_budget(pg_url: str, tmp_path):
    n, study = 5, "pg-two-machines"
    cmd = [sys.executable, "-m", "focalkit", "tune", "digits", "-n", str(n), "-k", "2", "--epochs",
           "30", "--no-prune", "--storage", pg_url, "--study", study]
    env = {**os.environ, "COLUMNS": "120"}

    def start(name: str) -> subprocess.Popen:
        out = tmp_path / name
        out.mkdir()
        return subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=out, env=env)

    a, b = start("a"), start("b")
    try:
        seen: list = []

        def a_is_training() -> bool:
            seen[:] = [t for t in _trials(pg_url, study)
                       if t.state == S.RUNNING and t.user_attrs.get(WORKER, {}).get("pid") == a.pid]
            return bool(seen)

        _wait_for(a_is_training, timeout=240, what="process A to run a trial")
        a.kill()  # SIGKILL: no chance to give the trial back
        a.communicate(timeout=60)
        (killed,) = seen
        # killed mid-trial: still RUNNING, or already failed by B, which sees on this host that
        # the trial's process is gone (never COMPLETE: A had no chance to report it)
        assert _trials(pg_url, study)[killed.number].state in (S.RUNNING, S.FAIL)
        a2 = start("a2")  # the restarted "machine"
        out_b, err_b = b.communicate(timeout=600)
        out_a2, err_a2 = a2.communicate(timeout=600)
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
    assert b.returncode == 0, err_b
    assert a2.returncode == 0, err_a2
    assert f"{n} trials finished" in out_b and f"{n} trials finished" in out_a2

    trials = _trials(pg_url, study)
    counted = _counted(trials)
    assert len(counted) == n  # exactly the budget
    assert sorted(t.user_attrs[REFERENCE] for t in counted if REFERENCE in t.user_attrs) == [
        "balanced_ce", "ce"]  # each reference once
    params = [tuple(sorted(t.params.items())) for t in counted if t.params]
    assert len(params) == len(set(params)) == n - 2  # no trial counted twice
    # the killed trial was failed, and its parameters (or reference) ran again exactly once
    assert trials[killed.number].state == S.FAIL
    again = [t for t in counted if t.user_attrs.get(RETRY_OF) == killed.number]
    assert len(again) == 1
    assert _optuna.enqueued_params(again[0]) == _optuna.enqueued_params(killed) | killed.params
    assert again[0].user_attrs.get(REFERENCE) == killed.user_attrs.get(REFERENCE)
    # every other trial that does not count is a slot given back unused (or a reference that
    # both processes queued when they opened the new study at the same moment)
    for t in trials:
        if t not in counted and t.number != killed.number:
            assert t.state == S.FAIL, t
            assert t.user_attrs.get("focalkit_fail") in (SURPLUS_FAIL, DUPLICATE_FAIL), t
    # after the kill, only B and the restarted A ran trials (which of them: a matter of timing)
    pids = {t.user_attrs[WORKER]["pid"] for t in counted if t.number > killed.number}
    assert pids and pids <= {b.pid, a2.pid}


def _quad(gamma: float, alpha: float | None, fold: int) -> float:
    a = 0.5 if alpha is None else alpha
    return 1.0 - (gamma - 2.0) ** 2 / 25.0 - (a - 0.25) ** 2 + 0.01 * fold


def test_heartbeat_recovers_a_dead_trial_of_another_machine(pg_url: str) -> None:
    """A trial left RUNNING by a process on another host (only its heartbeat can tell) is failed
    once the heartbeat is older than the grace period; its parameters run again, once."""
    kw = dict(folds=2, storage=pg_url, study="pg-heartbeat", heartbeat_interval=1, grace_period=2)
    tune(_quad, n_trials=3, **kw)
    study = optuna.load_study(study_name="pg-heartbeat", storage=pg_url)
    study.enqueue_trial({"gamma": 1.25, "alpha": 0.5})
    dead = _optuna.ask_quietly(study)
    tid = _optuna.trial_id(dead)
    _optuna.set_trial_user_attr(study, tid, WORKER, {"host": "elsewhere", "pid": 1})
    storage = _optuna.make_rdb_storage(pg_url, {}, 1, 2, lambda s, t: None)
    _optuna.record_heartbeat(storage, tid)  # its last sign of life
    t0 = time.monotonic()
    r = tune(_quad, n_trials=5, **kw)
    assert time.monotonic() - t0 >= 1.0  # waited for the grace period
    assert r.n_trials == 5
    trials = _trials(pg_url, "pg-heartbeat")
    assert trials[dead.number].state == S.FAIL
    (again,) = [t for t in trials if t.user_attrs.get(RETRY_OF) == dead.number]
    assert again.state == S.COMPLETE and again.params == {"gamma": 1.25, "alpha": 0.5}
    back = load_study(pg_url, "pg-heartbeat")
    assert back.n_trials == 5 and back.storage is not None
    assert back.storage.startswith("postgresql+") and back.storage.endswith(pg_url.rsplit("@", 1)[1])


def test_unreachable_server_is_one_clear_error() -> None:
    _need_driver()
    with pytest.raises(ValueError, match="cannot be opened"):
        tune(_quad, n_trials=1, storage=f"postgresql://postgres@127.0.0.1:{_free_port()}/postgres")


def test_cli_reports_a_study_on_the_server(pg_url: str, tmp_path) -> None:
    from typer.testing import CliRunner

    from focalkit.tools.cli import app

    tune(_quad, n_trials=4, folds=2, storage=pg_url, study="pg-report")
    res = CliRunner().invoke(app, ["tune", "--report-only", "--storage", pg_url, "--study",
                                   "pg-report", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "4 trials finished" in res.output and (tmp_path / "pg-report.json").exists()
