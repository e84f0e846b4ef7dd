"""The README's gradient-boosting example runs as written."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_gbdt_example_runs() -> None:
    pytest.importorskip("lightgbm")
    pytest.importorskip("sklearn")
    section = README.read_text().split("<!-- section:gbdt -->")[1].split("<!-- /section:gbdt -->")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    proba = namespace["proba"]
    assert proba.shape == (1000, 2) and np.allclose(proba.sum(1), 1.0)
