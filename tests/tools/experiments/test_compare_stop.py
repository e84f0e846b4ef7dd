"""``focalkit compare`` stops cleanly (issue 12): bad output paths are refused before any training,
and SIGTERM/Ctrl-C stop the training between batches (exit 130, one line, nothing written)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("typer")
pytest.importorskip("sklearn")
from typer.testing import CliRunner  # noqa: E402

from focalkit.tools import cancel  # noqa: E402
from focalkit.tools.cli import app  # noqa: E402
from focalkit.tools.experiments import compare as compare_mod  # noqa: E402
from focalkit.tools.experiments.compare import CompareConfig  # noqa: E402


@pytest.fixture
def no_training(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(compare_mod, "fit_and_score", fail)


@pytest.mark.parametrize("option", ["--save", "--out"])
def test_existing_file_as_output_folder_is_refused_before_training(tmp_path, no_training, option):
    f = tmp_path / "taken"
    f.write_text("x")
    args = ["compare", "digits", "--losses", "ce", "--seeds", "1", "--epochs", "1", "-q"]
    if option == "--save":
        args += ["--save", str(f), "--out", str(tmp_path / "out")]
    else:
        args += ["--out", str(f)]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "400"})  # no soft wrap of the line
    assert res.exit_code == 2, res.output
    assert res.output.strip().startswith("error:") and len(res.output.strip().splitlines()) == 1
    assert option in res.output and "exists and is not a folder" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "out").exists()


def test_compare_config_checks_save_too(tmp_path):
    f = tmp_path / "taken"
    f.write_text("x")
    with pytest.raises(ValueError, match="save .*exists and is not a folder"):
        CompareConfig(data="digits", save=str(f)).validate()
    CompareConfig(data="digits", save=str(tmp_path / "new" / "dir")).validate()  # created later


def test_fit_and_score_stops_between_batches_when_asked():
    from focalkit.tools.experiments.data import load_data, train_test_split
    from focalkit.tools.experiments.train import LossSpec, fit_and_score

    ds = load_data("digits")
    tr, te = train_test_split(ds, seed=0)
    batches = []

    def on_progress(done, total):  # after epoch 1, a stop request arrives
        batches.append(done)
        cancel.request("test")

    try:
        with pytest.raises(cancel.Cancelled, match="test"):
            fit_and_score(ds, tr, te, LossSpec("ce"), epochs=50, on_progress=on_progress)
    finally:
        cancel.reset()
    assert batches == [1]  # the second epoch's first batch saw the request


@pytest.mark.slow
def test_sigterm_stops_compare_mid_training(tmp_path: Path):
    save, out = tmp_path / "models", tmp_path / "out"
    cmd = [sys.executable, "-m", "focalkit", "compare", "digits", "--losses", "ce,focal", "--gammas",
           "2", "--seeds", "1", "--epochs", "300", "--save", str(save), "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    end = time.monotonic() + 300
    while time.monotonic() < end and not (save.exists() and any(save.iterdir())):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)  # the first model is saved: the second one is training
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=120)
    stopped = time.monotonic() - t0
    assert proc.returncode == 130, err
    assert "interrupted; nothing written" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
    assert len(list(save.iterdir())) == 1
    print(f"\ncompare stopped {stopped:.2f} s after SIGTERM")
    assert stopped < 30, stopped


def test_second_sigint_exits_compare_at_once(tmp_path: Path):
    """Two signals: the second does not wait for the training to reach a safe point."""
    code = (
        "import os, signal, sys\n"
        "from focalkit.tools import cancel\n"
        "from focalkit.tools.cli import main\n"
        "real = cancel.check\n"
        "n = [0]\n"
        "def check():\n"
        "    n[0] += 1\n"
        "    if n[0] == 5:\n"  # the user presses Ctrl-C twice while a batch runs
        "        os.kill(os.getpid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGINT)\n"
        "    real()\n"
        "cancel.check = check\n"
        "sys.argv = ['focalkit', 'compare', 'digits', '--losses', 'ce', '--seeds', '1', '--epochs',\n"
        "            '50', '--out', sys.argv[1], '-q']\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True,
                       text=True, timeout=300, env={**os.environ})
    assert r.returncode == 128 + signal.SIGINT, r.stderr
    assert "SIGINT again: exiting now" in r.stderr and "Traceback" not in r.stderr
