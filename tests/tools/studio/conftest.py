"""Fixtures of the studio tests (the helpers are in studio_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio_helpers import Server, write_csv


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("studio"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "small.csv")
