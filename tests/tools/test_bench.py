"""``focalkit bench``: runs the packaged benchmark (also without a source checkout) and loads a
``--script`` as a registered module (``@dataclass`` in it used to crash: issue 12)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("typer")
from typer.testing import CliRunner  # noqa: E402

from focalkit.tools.cli import app  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"


def test_script_with_a_dataclass_runs(tmp_path: Path) -> None:
    """The crash of issue 12: a script executed without being in sys.modules breaks @dataclass."""
    script = tmp_path / "my_bench.py"
    script.write_text(textwrap.dedent("""
        from __future__ import annotations
        from dataclasses import dataclass, field

        @dataclass
        class Result:
            case: str
            ms: list[float] = field(default_factory=list)

        def main(argv):
            print("ran", Result("c", [1.0]), argv)
            return 3
    """))
    r = CliRunner().invoke(app, ["bench", "--script", str(script), "--quick", "--repeats", "2"])
    assert r.exit_code == 3, r.output
    assert "ran Result(case='c', ms=[1.0]) ['--quick', '--repeats', '2']" in r.output


@pytest.mark.parametrize("content, match", [
    (None, "no such file"),
    ("x = 1\n", "has no main"),
])
def test_bad_script_is_one_clear_error(tmp_path: Path, content, match) -> None:
    script = tmp_path / "b.py"
    if content is not None:
        script.write_text(content)
    r = CliRunner().invoke(app, ["bench", "--script", str(script)])
    # a usage error naming --script (one line from the console script: tests/tools/test_bad_input.py)
    flat = " ".join(r.output.replace("│", " ").split())  # rich draws the usage error in a box
    assert r.exit_code == 2 and match in flat and "--script" in flat and "Traceback" not in r.output, r.output


@pytest.mark.slow
def test_bench_runs_from_an_installed_package_without_the_checkout(tmp_path: Path) -> None:
    """Only the package (as a wheel would install it), no benchmarks/ folder: it still runs."""
    site = tmp_path / "site"
    shutil.copytree(SRC / "focalkit", site / "focalkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "b.json"
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("TRITON_INTERPRET", None)
    r = subprocess.run([sys.executable, "-m", "focalkit", "bench", "--quick", "--only",
                        "classification", "--repeats", "1", "--json", str(out)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(out.read_text())
    assert {x["case"] for x in data["results"]} == {"classification"}
    assert data["command"].startswith("python -m focalkit bench --quick --only"), data["command"]


def test_small_section_rows_and_table():
    """The small-size section runs every case (functions and modules) in both dtypes: structure only,
    the figures themselves are the benchmark's business, not a test's."""
    from focalkit.tools import benchmark_small as small

    rows = small.run(dtypes=["float32"], quick=True)
    assert [r["case"] for r in rows] == [c[0] for c in small.CASES]
    for r in rows:
        assert r["focalkit_us"] > 0 and r["pytorch_us"] > 0 and r["ratio"] > 0
    table = small.table(rows)
    assert all(c[0] in table for c in small.CASES) and table.count("\n") == len(rows) + 1
