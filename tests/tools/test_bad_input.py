"""Bad input everywhere: every command on malformed files exits non-zero with one clear line.

A table of malformed data files (missing target column, non-numeric features, NaN, one class, three
rows, empty, binary, .npz without its keys, a directory, a missing path, ...) runs through
``focalkit compare`` and ``focalkit tune``; ``focalkit explain`` and ``focalkit bench`` get their own
bad paths (outputs that cannot be written, scripts that are not scripts). Each run must exit non-zero
with exactly one line of output that starts with ``error:`` and names the culprit, no traceback,
and leave nothing behind in the working folder (no output folder, no study database) that would
confuse a rerun.

The commands run in-process through the console script's ``main`` (so that its one-line usage
errors are what is tested); a few run as real subprocesses too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from focalkit.tools.cli import main

pytest.importorskip("optuna")
pytest.importorskip("sklearn")

_rng = np.random.default_rng(0)
_ROWS = [f"{_rng.normal():.3f},{_rng.normal():.3f},{i % 2}" for i in range(40)]


def _csv(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


def _nan_row(rows: list[str]) -> list[str]:
    out = list(rows)
    out[5] = "nan,0.5,1"
    return out


def _write(path: Path, content: object) -> None:
    if content == "dir":
        path.mkdir()
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        with open(path, "wb") as f:
            np.savez(f, **content)


# name: (file name, content (None: no file), extra arguments, what the one line must say)
DATA_CASES = {
    "missing target column": ("data.csv", _csv("a,b,label", _ROWS), ["--target", "target"], "no column 'target'"),
    "non-numeric feature": ("data.csv", _csv("a,b,target", [f"x{i},{r}" for i, r in enumerate(r[r.index(",") + 1:] for r in _ROWS)]), [], "is not numeric"),
    "NaN feature": ("data.csv", _csv("a,b,target", _nan_row(_ROWS)), [], "NaN/inf not allowed"),
    "missing target value": ("data.csv", _csv("a,b,target", _ROWS[:5] + ["0.1,0.2,"] + _ROWS[5:]), [], "missing target value"),
    "one class": ("data.csv", _csv("a,b,target", [r[:-1] + "1" for r in _ROWS]), [], "single class"),
    "three rows": ("data.csv", _csv("a,b,target", _ROWS[:3]), [], "single example"),
    "header only": ("data.csv", "a,b,target\n", [], "no data rows"),
    "ragged row": ("data.csv", _csv("a,b,target", _ROWS[:4] + ["1.0,0"] + _ROWS[4:]), [], "fields"),
    "empty file": ("data.csv", "", [], "the file is empty"),
    "binary file named .csv": ("data.csv", bytes(_rng.integers(0, 256, 4000, dtype=np.uint8)), [], "not a UTF-8 text CSV"),
    ".npz missing key y": ("data.npz", {"X": _rng.normal(size=(40, 2))}, [], "missing array(s) ['y']"),
    ".npz with other keys": ("data.npz", {"a": np.zeros(3), "b": np.zeros(3)}, [], "missing array(s)"),
    ".npz with NaN in X": ("data.npz", {"X": np.where(np.eye(40, 2) > 0, np.nan, 1.0), "y": np.arange(40) % 2}, [], "NaN/inf"),
    ".npz of objects": ("data.npz", {"X": np.array([{"a": 1}] * 4, dtype=object), "y": np.arange(4) % 2}, [], "cannot read the arrays"),
    "text file named .npz": ("data.npz", _csv("a,b,target", _ROWS), [], "not a valid .npz"),
    "a directory": ("data.csv", "dir", [], "is a directory"),
    "a missing path": ("data.csv", None, [], "no such file"),
    "unknown extension": ("data.xlsx", _csv("a,b,target", _ROWS), [], "unknown file type"),
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An empty working folder; torch's global settings that the commands touch are restored."""
    monkeypatch.chdir(tmp_path)
    threads, flush = torch.get_num_threads(), torch.set_flush_denormal(False)
    yield tmp_path
    torch.set_num_threads(threads)
    torch.set_flush_denormal(flush)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if line.strip()]
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), lines


def _assert_one_clear_line(code: int, lines: list[str], *needles: str) -> None:
    assert code != 0, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _leftovers(folder: Path, inputs: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in inputs)


@pytest.mark.parametrize("command", ["compare", "tune"])
@pytest.mark.parametrize("case", list(DATA_CASES), ids=lambda c: c.replace(" ", "-"))
def test_a_malformed_data_file_is_one_error_line_and_leaves_nothing(workdir, capsys, command, case):
    name, content, extra, says = DATA_CASES[case]
    if content is not None:
        _write(workdir / name, content)
    if command == "compare":
        args = ["compare", name, *extra, "--epochs", "1", "--seeds", "1", "--out", "out", "-q"]
    else:
        args = ["tune", name, *extra, "-n", "2", "-k", "2", "--epochs", "1",
                "--storage", f"sqlite:///{workdir / 'study.db'}", "--out", "out"]
    code, lines = _run(args, capsys)
    _assert_one_clear_line(code, lines, name, says)
    assert code == 2
    assert _leftovers(workdir, {name}) == []  # no output folder, no study database


def test_tune_with_too_few_examples_for_the_folds_fails_before_storing(workdir, capsys):
    (workdir / "six.csv").write_text(_csv("a,b,target", _ROWS[:6]), encoding="utf-8")
    code, lines = _run(["tune", "six.csv", "-k", "5", "--storage", f"sqlite:///{workdir / 's.db'}"], capsys)
    _assert_one_clear_line(code, lines, "six.csv", "fewer than k=5 folds")
    assert _leftovers(workdir, {"six.csv"}) == []


# explain writes files: outputs that cannot be written
@pytest.mark.parametrize(("args", "says"), [
    (["explain", "curves", "-o", "taken.png"], "taken.png: Is a directory"),
    (["explain", "curves", "-o", "file.csv/curves.png"], "file.csv is a file, not a folder"),
    (["explain", "curves", "-o", "curves.bmp"], "must end in one of .png, .svg, .pdf"),
    (["explain", "curves", "--json", "-o", "taken.png"], "taken.png: Is a directory"),
    (["explain", "playground", "-o", "taken.png"], "must end in .html"),
    (["explain", "playground", "-o", "taken.html"], "taken.html: Is a directory"),
    (["explain", "playground", "-o", "file.csv/p.html"], "file.csv is a file, not a folder"),
    (["explain", "table", "--gamma", "-1"], "gamma must be a finite number >= 0"),
    (["explain", "shares", "--negatives", "many"], "'--negatives'"),
], ids=lambda a: "-".join(a) if isinstance(a, list) else None)
def test_explain_with_an_unwritable_output_is_one_error_line(workdir, capsys, args, says):
    for d in ("taken.png", "taken.html"):
        (workdir / d).mkdir()
    (workdir / "file.csv").write_text("a\n1\n", encoding="utf-8")
    code, lines = _run(args, capsys)
    _assert_one_clear_line(code, lines, says)
    assert _leftovers(workdir, {"taken.png", "taken.html", "file.csv"}) == []


# bench loads a script and writes JSON: both checked before anything is timed
@pytest.mark.parametrize(("script", "content", "says"), [
    ("missing.py", None, "missing.py: no such file"),
    ("folder.py", "dir", "folder.py: not a file"),
    ("data.csv", "a,b\n1,2\n", "data.csv: not a Python script"),
    ("binary.py", bytes(range(256)) * 8, "binary.py: cannot load it"),
    ("broken.py", "print(\n", "broken.py: cannot load it (SyntaxError"),
    ("nomain.py", "x = 1\n", "nomain.py: has no main(argv) function"),
])
def test_bench_with_a_bad_script_is_one_error_line(workdir, capsys, script, content, says):
    if content is not None:
        _write(workdir / script, content)
    code, lines = _run(["bench", "--quick", "--script", script], capsys)
    _assert_one_clear_line(code, lines, "--script", says)
    assert code == 2


@pytest.mark.parametrize(("json_path", "says"), [
    ("taken.json", "taken.json: is a directory"),
    ("nowhere/b.json", "nowhere: no such directory"),
])
def test_bench_with_an_unwritable_json_fails_before_timing(workdir, capsys, json_path, says):
    (workdir / "taken.json").mkdir()
    script = workdir / "spy.py"
    script.write_text("import sys\ndef main(argv):\n    sys.exit('the benchmark ran')\n", encoding="utf-8")
    code, lines = _run(["bench", "--script", str(script), "--json", json_path], capsys)
    _assert_one_clear_line(code, lines, "--json", says)
    assert _leftovers(workdir, {"taken.json", "spy.py"}) == []


def test_usage_errors_are_one_line_too(workdir, capsys):
    code, lines = _run(["compare", "--seeds", "0"], capsys)
    _assert_one_clear_line(code, lines, "'--seeds'", "focalkit compare --help")
    code, lines = _run(["tune", "--no-such-option"], capsys)
    _assert_one_clear_line(code, lines, "No such option: --no-such-option")


@pytest.mark.parametrize("args", [
    ["compare", "{dir}/empty.csv", "--epochs", "1", "--seeds", "1", "-q", "--out", "{dir}/out"],
    ["tune", "{dir}/empty.csv", "-n", "2", "--storage", "sqlite:///{dir}/s.db", "--out", "{dir}/out"],
    ["bench", "--script", "{dir}/nope.py"],
    ["explain", "curves", "-o", "{dir}"],
], ids=["compare", "tune", "bench", "explain"])
def test_the_real_command_prints_one_line_and_exits_non_zero(tmp_path, args):
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    argv = [a.format(dir=tmp_path) for a in args]
    run = subprocess.run([sys.executable, "-m", "focalkit", *argv], capture_output=True, text=True, timeout=300)
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    assert run.returncode == 2, run.stdout + run.stderr
    _assert_one_clear_line(run.returncode, lines)
    assert _leftovers(tmp_path, {"empty.csv"}) == []


def test_bench_runs_a_good_script_with_the_options(workdir, capsys):
    # the counterpart of the table above: a valid --script's main(argv) runs (and a dataclass in it
    # works: the module is registered in sys.modules while it executes)
    (workdir / "ok.py").write_text(
        "from dataclasses import dataclass\n@dataclass\nclass Row:\n    name: str\n"
        "def main(argv):\n    print('ran', Row('x').name, argv)\n    return 0\n", encoding="utf-8")
    code, lines = _run(["bench", "--quick", "--script", "ok.py"], capsys)
    assert code == 0 and lines == ["ran x ['--quick']"], lines
