"""The scripts in examples/ run and print what they promise."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def test_segmentation_training_loop_runs_and_learns() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "segmentation_training_loop.py"), "--steps", "40"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    ious = [float(v) for v in re.findall(r"IoU = ([0-9.]+)", out)]
    assert len(ious) == 2
    assert all(iou > 0.3 for iou in ious), out  # both losses learn the rare class
