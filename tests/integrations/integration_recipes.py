"""Helpers of the integration recipes' tests (docs/integrations/*.md), run against the real libraries.

Imported by the test modules as ``integration_recipes`` (this folder is on ``sys.path`` under pytest's default
import mode); ``conftest.py`` calls :func:`prepare_torchvision` before any test module is imported.

The libraries come from the ``integrations`` extra (``pip install -e '.[integrations]'``, which
``make test`` installs); a test whose library is missing is skipped with a message saying so.

torchvision: its only wheel for torch 2.13 on PyPI is a CUDA build, whose C++ extension does not load
against the CPU torch of this project's CI. torchvision then handles the missing ops itself (every op
raises a clear error when called), except that it registers fake kernels for two operators,
``torchvision::nms`` and ``torchvision::qnms``, without checking that they exist, so ``import
torchvision`` fails, and with it timm, torchmetrics, transformers and Lightning, which import it.
:func:`prepare_torchvision` declares those two operators' schemas (copied from torchvision's C++
source) when, and only when, the extension cannot load; the Python part of torchvision (transforms,
``ops.sigmoid_focal_loss``, the detection models' losses) is then the real one. Nothing is done where
torchvision loads normally.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest
import torch

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "integrations"
INSTALL_HINT = "pip install -e '.[integrations]' (make test installs it)"
TORCHVISION_STAND_IN = False  # True once prepare_torchvision has declared the two schemas


def prepare_torchvision() -> None:
    """Let ``import torchvision`` succeed where its C++ extension cannot load (see the module docstring)."""
    global TORCHVISION_STAND_IN
    spec = importlib.util.find_spec("torchvision")
    if spec is None or TORCHVISION_STAND_IN or not spec.submodule_search_locations:
        return
    libs = sorted(pathlib.Path(spec.submodule_search_locations[0]).glob("_C*.so"))
    try:
        if libs:
            torch.ops.load_library(str(libs[0]))
            return  # the real extension: nothing to do
    except OSError:
        pass
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _KEEP.append(lib)  # a Library deregisters its definitions when it is garbage-collected
    TORCHVISION_STAND_IN = True


_KEEP: list = []



def need(module: str):
    """Import ``module`` or skip the test with a message that says how to install it."""
    return pytest.importorskip(module, reason=f"{module} is not installed: {INSTALL_HINT}")


def page_code(name: str) -> str:
    """The Python code blocks of docs/integrations/NAME.md, joined in order: the page's example."""
    text = (DOCS / f"{name}.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert blocks, f"docs/integrations/{name}.md has no python code block"
    return "\n".join(blocks)


def run_page(name: str, replace: dict[str, str] | None = None) -> dict:
    """Execute the page's example (with ``replace``: exact substitutions, each required to occur once)."""
    code = page_code(name)
    for old, new in (replace or {}).items():
        assert code.count(old) == 1, f"{old!r} should occur once in docs/integrations/{name}.md"
        code = code.replace(old, new)
    namespace: dict = {"__name__": f"docs_integrations_{name}"}
    exec(compile(code, str(DOCS / f"{name}.md"), "exec"), namespace)
    return namespace

