"""Helpers shared by the tune tests that watch a study from outside (interrupts, PostgreSQL)."""

from __future__ import annotations

import time
from typing import Callable

import optuna


def trials(url: str, study: str) -> list:
    """The study's trials as stored now; [] while the study (or its tables) does not exist yet."""
    try:
        return optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    except Exception:  # not created yet, or the file is being written
        return []


def wait_for(pred: Callable[[], bool], timeout: float, what: str, poll: float = 0.1) -> None:
    """Poll ``pred`` until it is true; fail the test, naming ``what``, after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")
