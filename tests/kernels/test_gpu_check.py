"""The GPU verification kit's dry run (CPU + Triton interpreter): the pipeline works end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_run_writes_json_and_markdown(tmp_path):
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--out", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert report["dry_run"] and report["tests"]["exit_code"] == 0
    assert report["variant_checks"] and set(report["variant_checks"].values()) == {"ok"}
    assert any(r["method"].startswith("focalkit") for r in report["bench"]["results"])
    assert report["bandwidth"]["copy_GB_per_s"] > 0
    md = (tmp_path / "gpu-check.md").read_text()
    assert "first-call checks" in md and "|" in md
