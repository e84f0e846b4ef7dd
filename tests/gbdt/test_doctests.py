"""The docstring examples of focalkit.gbdt run as written."""

from __future__ import annotations

import doctest
import importlib
import importlib.util

import pytest

MODULES = {
    "focalkit.gbdt": None,
    "focalkit.gbdt.derivatives": None,
    "focalkit.gbdt.objective": None,
    "focalkit.gbdt.for_lightgbm": "lightgbm",
    "focalkit.gbdt.for_xgboost": "xgboost",
    "focalkit.gbdt.for_catboost": None,
    "focalkit.gbdt.classifier": "lightgbm",
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_docstring_examples(name):
    needs = MODULES[name]
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    if name.endswith("classifier"):
        pytest.importorskip("sklearn")
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
