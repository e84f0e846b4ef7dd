"""The documentation site (mkdocs.yml, docs/): it builds in strict mode, and its examples run.

The build needs the ``docs`` extra (mkdocs, mkdocs-material, mkdocstrings[python]; ``make test``
installs it); without it the build tests are skipped with a message saying so. The pages' Python
examples run without it.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
_PACKAGES = {"mkdocs": "mkdocs", "material": "mkdocs-material", "mkdocstrings": "mkdocstrings",
             "mkdocstrings_handlers": "mkdocstrings-python", "yaml": "PyYAML"}
_MISSING = [pkg for mod, pkg in _PACKAGES.items() if importlib.util.find_spec(mod) is None]
needs_mkdocs = pytest.mark.skipif(
    bool(_MISSING), reason=f"{', '.join(_MISSING)} not installed: pip install -e '.[docs]' (make test installs it)"
)


def _build(config: pathlib.Path, site: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )


@needs_mkdocs
def test_site_builds_in_strict_mode(tmp_path):
    r = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert r.returncode == 0, r.stdout + r.stderr
    site = tmp_path / "site"
    losses = (site / "api" / "losses" / "index.html").read_text()
    # the API reference comes from the docstrings of the public names
    for name in ("focalkit.sigmoid_focal_loss", "focalkit.softmax_focal_loss", "focalkit.FocalLoss", "label_smoothing_mode",
                 "focalkit.asymmetric_loss", "focalkit.quality_focal_loss", "focalkit.varifocal_loss",
                 "focalkit.PiecewiseGamma", "epsilon"):
        assert name in losses, name
    assert "```" not in losses and ".. math::" not in losses  # docstrings rendered, not shown raw
    assert "focalkit.tools.tune.tune" in (site / "api" / "tools" / "index.html").read_text()
    assert "patch_retinanet" in (site / "api" / "integrations" / "index.html").read_text()
    for page in ("lightning", "huggingface", "timm", "torchmetrics", "torchvision"):
        assert (site / "integrations" / page / "index.html").is_file(), page


def _small_site(tmp_path: pathlib.Path, page: str) -> pathlib.Path:
    """mkdocs.yml's settings (theme, plugins, validation) on a one-page site."""
    import yaml

    text = (ROOT / "mkdocs.yml").read_text()
    text = re.sub(r"(?ms)^nav:.*?(?=^\S)", "", text)  # one page, no nav
    config = yaml.safe_load(text)
    config["docs_dir"] = str(tmp_path / "docs")
    config.pop("exclude_docs", None)
    handler = config["plugins"][1]["mkdocstrings"]["handlers"]["python"]
    handler["paths"] = [str(ROOT / "src")]
    handler["options"]["extensions"] = [str(DOCS / "_ext" / "griffe_rst.py") + ":RstToMarkdown"]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(page)
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@needs_mkdocs
@pytest.mark.parametrize(
    "page, why",
    [
        ("# Home\n\nSee [the loss](loss.md).\n", "loss.md"),
        ("# Home\n\n[here](#no-such-heading)\n", "no-such-heading"),
        ("# Home\n\n::: focalkit.no_such_function\n", "focalkit.no_such_function"),
    ],
    ids=["broken link", "broken anchor", "missing API name"],
)
def test_strict_mode_fails_on_a_broken_link_or_reference(tmp_path, page, why):
    r = _build(_small_site(tmp_path, page), tmp_path / "site")
    assert r.returncode != 0
    assert why in r.stdout + r.stderr  # it failed for that reason, not another


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "_ext" not in p.parts)
    missing = [p for p in pages if p not in nav]
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"


def _griffe_rst():
    spec = importlib.util.spec_from_file_location("griffe_rst", DOCS / "_ext" / "griffe_rst.py")
    if importlib.util.find_spec("griffe") is None:
        pytest.skip("griffe is not installed: pip install -e '.[docs]'")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_docstring_markup_becomes_markdown():
    convert = _griffe_rst().rst_to_markdown
    doc = "Loss.\n\n.. math::\n    a = b\n\n    c = d\n\nSee :func:`~focalkit.prior_bias` and :math:`p_t`.\n\nExample:\n    >>> 1 + 1\n    2\n\nEnd."
    assert convert(doc) == (
        "Loss.\n\n```text\na = b\n\nc = d\n```\n\nSee `focalkit.prior_bias` and `p_t`.\n\n"
        "Example:\n    ```python\n    >>> 1 + 1\n    2\n    ```\n\nEnd."
    )


def test_extension_doctests():
    import doctest

    failed, attempted = doctest.testmod(_griffe_rst())
    assert attempted >= 2 and failed == 0


def _examples(page: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (DOCS / page).read_text(), flags=re.S | re.M)


@pytest.mark.parametrize("page", ["index.md", "loss.md", "backends.md", "family.md"])
def test_guide_examples_run(page):
    blocks = _examples(page)
    assert blocks, page
    for code in blocks:
        namespace: dict = {}
        exec(compile(code, str(DOCS / page), "exec"), namespace)
        if "loss" in namespace:
            assert namespace["loss"].dim() == 0 and bool(namespace["loss"].isfinite())
