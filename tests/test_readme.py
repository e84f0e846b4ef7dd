"""The README's usage examples run as written."""

from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _core_examples() -> list[str]:
    text = README.read_text()
    core = text.split("<!-- section:core -->")[1].split("<!-- /section:core -->")[0]
    return re.findall(r"```python\n(.*?)```", core, flags=re.S)


@pytest.mark.parametrize("code", _core_examples(), ids=lambda c: c.splitlines()[0][:40])
def test_readme_example_runs(code: str) -> None:
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    loss = namespace["loss"]
    assert loss.dim() == 0 and bool(loss.isfinite())


def test_readme_has_examples() -> None:
    assert len(_core_examples()) >= 4
