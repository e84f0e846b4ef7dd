"""focalkit.tools.explain, focalkit.tools.explain.plots, focalkit.tools.explain.playground and the ``focalkit explain`` / demo CLI.

Numbers are checked against the paper's closed forms written out here, against the float64 NumPy
reference (``focalkit.testing.reference``) and against finite differences; the CLI through typer's runner.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import focalkit as fk
from focalkit.testing import reference
from focalkit.tools.explain.api import (
    DEFAULT_CASES,
    explain_curves,
    explain_shares,
    explain_table,
)

typer_testing = pytest.importorskip("typer.testing")
from focalkit.tools.cli import app  # noqa: E402

runner = typer_testing.CliRunner()


def _ref(p: float, y: float, alpha, gamma: float) -> float:
    """Focal loss of one example from the NumPy reference, fed a logit."""
    x = math.log(p) - math.log1p(-p)
    return float(reference.sigmoid_focal_loss(np.array([x]), np.array([y]), alpha=alpha,
                                              gamma=gamma, reduction="none")[0])


# --------------------------------------------------------------------------- table
def test_table_defaults_pin_the_issue_numbers() -> None:
    t = explain_table()
    assert [r.name for r in t.rows] == [c[0] for c in DEFAULT_CASES]
    ratios = [r.ratio for r in t.rows]
    assert ratios == pytest.approx([400.0, 400.0 / 3.0, 1 / (0.25 * 0.81), 1 / (0.75 * 0.81)],
                                   rel=1e-12)
    assert [round(r, 1) for r in ratios] == [400.0, 133.3, 4.9, 1.6]
    assert [round(r, 2) for r in ratios[2:]] == [4.94, 1.65]


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0, 10.0])
@pytest.mark.parametrize("alpha", [None, 0.0, 0.25, 0.5, 1.0])
def test_table_matches_closed_form_and_reference(gamma: float, alpha) -> None:
    cases = list(DEFAULT_CASES) + [("soft", 0.7, 0.3), ("tiny", 1e-9, 1.0), ("sure", 1 - 1e-9, 0.0)]
    t = explain_table(gamma=gamma, alpha=alpha, cases=cases)
    assert t.gamma == gamma and t.alpha == alpha
    for r, (_, p, y) in zip(t.rows, cases):
        p_t = p * y + (1 - p) * (1 - y)
        a_t = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
        ce = -(y * math.log(p) + (1 - y) * math.log1p(-p))
        assert r.p_t == pytest.approx(p_t, rel=1e-12)
        assert r.alpha_t == pytest.approx(a_t, abs=1e-15)
        assert r.ce == pytest.approx(ce, rel=1e-9)
        assert r.ce == pytest.approx(_ref(p, y, None, 0.0), rel=1e-12)
        assert r.modulating == pytest.approx((1 - p_t) ** gamma, rel=1e-9, abs=1e-300)
        assert r.focal == pytest.approx(_ref(p, y, alpha, gamma), rel=1e-12, abs=1e-300)
        assert r.focal == pytest.approx(a_t * (1 - p_t) ** gamma * ce, rel=1e-9, abs=1e-300)
        if r.focal > 0:
            assert r.ratio == pytest.approx(r.ce / r.focal, rel=1e-12)
        else:
            assert math.isinf(r.ratio) and r.to_dict()["ratio"] is None


def test_table_gamma_zero_is_cross_entropy_and_json_roundtrips() -> None:
    t = explain_table(gamma=0.0, alpha=None)
    assert all(r.ratio == pytest.approx(1.0) and r.modulating == 1.0 for r in t.rows)
    d = json.loads(json.dumps(explain_table(alpha=0.0).to_dict(), allow_nan=False))
    assert d["rows"][0]["ratio"] is None  # alpha 0: a positive has no focal loss at all


@pytest.mark.parametrize("kwargs,exc,name", [
    ({"gamma": -1.0}, ValueError, "gamma"),
    ({"gamma": float("nan")}, ValueError, "gamma"),
    ({"gamma": "2"}, TypeError, "gamma"),
    ({"alpha": 1.5}, ValueError, "alpha"),
    ({"alpha": True}, TypeError, "alpha"),
    ({"cases": []}, ValueError, "cases"),
    ({"cases": "abc"}, TypeError, "cases"),
    ({"cases": [("x", 0.5)]}, TypeError, "cases[0]"),
    ({"cases": [("x", 1.0, 1)]}, ValueError, "cases[0] p"),
    ({"cases": [("x", 0.0, 1)]}, ValueError, "cases[0] p"),
    ({"cases": [("x", 0.5, 2)]}, ValueError, "cases[0] y"),
])
def test_table_bad_input(kwargs, exc, name) -> None:
    with pytest.raises(exc, match=re.escape(name)):
        explain_table(**kwargs)


# --------------------------------------------------------------------------- shares
def test_shares_pin_the_issue_numbers() -> None:
    s = explain_shares(negatives=1_000_000, p_negative=0.99, positives=10, p_positive=0.01,
                       gammas=[0.5, 1, 2, 5], alpha=0.25)
    by = {r.loss: r for r in s.rows}
    assert list(by) == ["cross-entropy", "alpha-balanced CE", "focal gamma=0.5", "focal gamma=1",
                        "focal gamma=2", "focal gamma=5"]
    assert round(by["cross-entropy"].positive_share, 4) == 0.0046
    assert round(by["focal gamma=2"].positive_share, 3) == 0.937
    # independent: the paper's closed forms
    ce_neg, ce_pos = -1e6 * math.log(0.99), -10 * math.log(0.01)
    assert by["cross-entropy"].negatives_total == pytest.approx(ce_neg, rel=1e-12)
    assert by["cross-entropy"].positives_total == pytest.approx(ce_pos, rel=1e-12)
    assert by["alpha-balanced CE"].positive_share == pytest.approx(
        0.25 * ce_pos / (0.25 * ce_pos + 0.75 * ce_neg), rel=1e-12)
    fl_neg, fl_pos = 0.75 * 0.01 ** 2 * ce_neg, 0.25 * 0.99 ** 2 * ce_pos
    assert by["focal gamma=2"].positive_share == pytest.approx(fl_pos / (fl_pos + fl_neg), rel=1e-12)
    # shares grow with gamma
    shares = [r.positive_share for r in s.rows[2:]]
    assert shares == sorted(shares)


@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
def test_shares_match_reference(alpha) -> None:
    s = explain_shares(negatives=12345, p_negative=0.7, positives=7, p_positive=0.35,
                       gammas=[0.0, 1.5, 3.0], alpha=alpha)
    for r in s.rows:
        neg = 12345 * _ref(0.3, 0.0, r.alpha, r.gamma)
        pos = 7 * _ref(0.35, 1.0, r.alpha, r.gamma)
        assert r.negatives_total == pytest.approx(neg, rel=1e-12)
        assert r.positives_total == pytest.approx(pos, rel=1e-12)
        assert r.positive_share == pytest.approx(pos / (pos + neg), rel=1e-12)
    if alpha is None:
        assert s.rows[0].positive_share == s.rows[1].positive_share


def test_shares_extremes() -> None:
    only_pos = explain_shares(negatives=0, positives=3)
    assert all(r.positive_share == 1.0 for r in only_pos.rows)
    only_neg = explain_shares(negatives=5, positives=0)
    assert all(r.positive_share == 0.0 for r in only_neg.rows)
    huge = explain_shares(negatives=10**12, p_negative=1 - 1e-12, positives=1, p_positive=1e-12,
                          gammas=[10.0])
    assert all(0.0 <= r.positive_share <= 1.0 for r in huge.rows)
    zero = explain_shares(alpha=1.0, positives=0, gammas=[1.0])  # alpha 1, no positives: 0/0
    assert zero.rows[0].positive_share == 0.0
    assert math.isnan(zero.rows[1].positive_share) and zero.rows[1].to_dict()["positive_share"] is None
    assert json.loads(json.dumps(explain_shares().to_dict()))["rows"][0]["loss"] == "cross-entropy"


@pytest.mark.parametrize("kwargs,exc,name", [
    ({"negatives": -1}, ValueError, "negatives"),
    ({"negatives": 1.5}, TypeError, "negatives"),
    ({"positives": True}, TypeError, "positives"),
    ({"negatives": 0, "positives": 0}, ValueError, "both be 0"),
    ({"p_negative": 1.0}, ValueError, "p_negative"),
    ({"p_positive": 0.0}, ValueError, "p_positive"),
    ({"p_positive": float("inf")}, ValueError, "p_positive"),
    ({"gammas": []}, ValueError, "gammas"),
    ({"gammas": 2.0}, TypeError, "gammas"),
    ({"gammas": [1.0, -0.5]}, ValueError, "gammas"),
    ({"alpha": -0.1}, ValueError, "alpha"),
])
def test_shares_bad_input(kwargs, exc, name) -> None:
    with pytest.raises(exc, match=re.escape(name)):
        explain_shares(**kwargs)


# --------------------------------------------------------------------------- curves
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_curves_loss_and_gradient(alpha) -> None:
    gammas = [0.0, 0.5, 1.0, 2.0, 5.0]
    c = explain_curves(gammas=gammas, alpha=alpha, points=101)
    p = np.array(c.p_t)
    assert len(p) == 101 and p[0] == pytest.approx(1e-3) and p[-1] == pytest.approx(1 - 1e-4)
    a = 1.0 if alpha is None else alpha
    x = np.log(p) - np.log1p(-p)
    for i, g in enumerate(gammas):
        loss = np.array(c.loss[i])
        np.testing.assert_allclose(loss, a * (1 - p) ** g * -np.log(p), rtol=1e-9)
        np.testing.assert_allclose(
            loss, reference.sigmoid_focal_loss(x, np.ones_like(x), alpha=alpha, gamma=g,
                                               reduction="none"), rtol=1e-12)
        grad = np.array(c.grad[i])
        np.testing.assert_allclose(grad, a * (1 - p) ** g * ((1 - p) - g * p * np.log(p)),
                                   rtol=1e-7, atol=1e-300)
        # central finite differences of the reference, where they are accurate
        h = 1e-6
        mid = slice(5, 60)
        fd = (reference.sigmoid_focal_loss(x[mid] + h, np.ones(55), alpha=alpha, gamma=g,
                                           reduction="none")
              - reference.sigmoid_focal_loss(x[mid] - h, np.ones(55), alpha=alpha, gamma=g,
                                             reduction="none")) / (2 * h)
        np.testing.assert_allclose(grad[mid], np.abs(fd), rtol=1e-5)
    # easy examples: focal gradient orders of magnitude below cross-entropy's, hard ones not
    j = int(np.argmin(np.abs(p - 0.9)))
    assert c.grad[3][j] < c.grad[0][j] / 20
    assert c.grad[3][0] > c.grad[0][0] / 2


def test_curves_bad_input() -> None:
    with pytest.raises(ValueError, match="points"):
        explain_curves(points=1)
    with pytest.raises(TypeError, match="points"):
        explain_curves(points=10.0)
    with pytest.raises(ValueError, match="p_min"):
        explain_curves(p_min=0.0)
    with pytest.raises(ValueError, match="p_min must be < p_max"):
        explain_curves(p_min=0.5, p_max=0.4)
    with pytest.raises(ValueError, match="gammas"):
        explain_curves(gammas=[-1.0])


def test_explain_does_not_change_backend_or_grad_mode() -> None:
    before = fk.get_backend()
    explain_table()
    explain_curves(points=5)
    assert fk.get_backend() == before and torch.is_grad_enabled()


# --------------------------------------------------------------------------- plots
@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG\r\n\x1a\n"), ("svg", b"<?xml"),
                                       ("pdf", b"%PDF-")])
def test_save_curves_formats(tmp_path, fmt: str, magic: bytes) -> None:
    pytest.importorskip("matplotlib")
    from focalkit.tools.explain.plots import save_curves

    out = save_curves(tmp_path / "sub" / f"curves.{fmt}", gammas=[0, 2], points=50)
    data = out.read_bytes()
    assert out.suffix == f".{fmt}" and len(data) > 2000 and data.startswith(magic)
    if fmt == "svg":
        assert b"<svg" in data


def test_curves_figure_axes() -> None:
    pytest.importorskip("matplotlib")
    from focalkit.tools.explain.plots import curves_figure

    fig = curves_figure(explain_curves(gammas=[0, 1, 2], alpha=0.25, points=30))
    loss_ax, grad_ax = fig.axes
    assert grad_ax.get_yscale() == "log" and loss_ax.get_yscale() == "linear"
    assert len(loss_ax.get_lines()) == len(grad_ax.get_lines()) == 3
    np.testing.assert_allclose(grad_ax.get_lines()[2].get_ydata(),
                               explain_curves(gammas=[2], alpha=0.25, points=30).grad[0])
    with pytest.raises(TypeError, match="data"):
        curves_figure({"p_t": []})


def test_save_curves_bad_input(tmp_path) -> None:
    from focalkit.tools.explain.plots import save_curves

    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf"):
        save_curves(tmp_path / "c.jpg")
    with pytest.raises(TypeError, match="path"):
        save_curves(3)
    with pytest.raises(ValueError, match="dpi"):
        save_curves(tmp_path / "c.png", dpi=0)


# --------------------------------------------------------------------------- playground (no browser)
def test_playground_is_self_contained(tmp_path) -> None:
    from focalkit.tools.explain.playground import playground_html, write_playground

    html = playground_html(gamma=1.0, alpha=None, negatives=5, positives=2)
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    cfg = json.loads(re.search(r"const CONFIG = (\{.*?\});", html).group(1))
    assert cfg["gamma"] == 1.0 and cfg["alpha"] is None and cfg["shares"]["negatives"] == 5
    assert cfg["cases"] == [list(c) for c in DEFAULT_CASES]
    assert cfg["version"] == fk.__version__
    assert playground_html(gamma=1.23)  # rounded to the slider step
    assert json.loads(re.search(r"const CONFIG = (\{.*?\});",
                                playground_html(gamma=1.23, alpha=0.333)).group(1))["alpha"] == 0.33
    out = write_playground(tmp_path / "a" / "pg.html")
    assert out.read_text(encoding="utf-8") == playground_html()
    with pytest.raises(ValueError, match="gamma"):
        playground_html(gamma=11.0)
    with pytest.raises(TypeError, match="gamma"):
        playground_html(gamma="1")
    with pytest.raises(ValueError, match="alpha"):
        playground_html(alpha=2.0)
    with pytest.raises(ValueError, match="p_positive"):
        playground_html(p_positive=1.0)
    with pytest.raises(ValueError, match="path"):
        write_playground(tmp_path / "pg.txt")


# --------------------------------------------------------------------------- CLI
def _json(args: list[str]) -> dict:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_cli_table_json_and_text() -> None:
    d = _json(["explain", "table", "--json"])
    assert [round(r["ratio"], 2) for r in d["rows"]] == [400.0, 133.33, 4.94, 1.65]
    assert d == json.loads(json.dumps(explain_table().to_dict()))
    r = runner.invoke(app, ["explain", "table"])
    assert r.exit_code == 0
    for text in ("easy positive", "hard negative", "400", "133.3", "4.938", "1.646"):
        assert text in r.stdout
    d = _json(["explain", "table", "-g", "1", "--no-alpha", "--p", "0.7", "--y", "0", "--p", "0.2",
               "--y", "1", "--json"])
    assert len(d["rows"]) == 6 and d["alpha"] is None and d["gamma"] == 1.0
    assert d["rows"][4]["focal"] == pytest.approx(_ref(0.7, 0.0, None, 1.0), rel=1e-12)
    d = _json(["explain", "table", "--p", "0.6", "--only", "--json"])
    assert [r["name"] for r in d["rows"]] == ["p=0.6, y=1"]


@pytest.mark.parametrize("args,msg", [
    (["explain", "table", "--gamma", "-1"], "gamma"),
    (["explain", "table", "--alpha", "3"], "alpha"),
    (["explain", "table", "--p", "0.5", "--y", "1", "--y", "0"], "--y"),
    (["explain", "table", "--p", "1.5"], "p"),
    (["explain", "table", "--only"], "--only"),
    (["explain", "shares", "--p-negative", "1"], "p_negative"),
    (["explain", "shares", "--gamma", "x"], "gamma"),
    (["explain", "shares", "--negatives", "-3"], "negatives"),
    (["explain", "curves", "-o", "c.gif"], ".png"),
    (["explain", "playground", "-o", "p.txt"], ".html"),
])
def test_cli_bad_input_is_a_usage_error(args, msg, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert msg in r.output
    assert "Traceback" not in r.output


def test_cli_shares_json_and_gamma_syntaxes() -> None:
    args = ["explain", "shares", "--negatives", "1000000", "--p-negative", "0.99", "--positives",
            "10", "--p-positive", "0.01"]
    d = _json(args + ["--json"])
    by = {r["loss"]: r["positive_share"] for r in d["rows"]}
    assert round(by["cross-entropy"], 4) == 0.0046 and round(by["focal gamma=2"], 3) == 0.937
    assert [r["gamma"] for r in d["rows"]] == [0, 0, 0.5, 1, 2, 5]
    for form in (["--gamma", "1", "2", "3"], ["--gamma", "1,2,3"],
                 ["--gamma", "1", "--gamma", "2", "--gamma", "3"], ["-g", "1", "2,3"]):
        d = _json(["explain", "shares", "--json"] + form)
        assert [r["gamma"] for r in d["rows"]] == [0, 0, 1, 2, 3], form
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "0.004561" in r.stdout and "0.9374" in r.stdout


def test_cli_curves_writes_each_format(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    for fmt in ("png", "svg", "pdf"):
        out = tmp_path / f"curves.{fmt}"
        d = _json(["explain", "curves", "--gamma", "0", "0.5", "2", "--alpha", "0.25",
                   "--points", "40", "-o", str(out), "--json"])
        assert d["output"] == str(out) and out.stat().st_size == d["bytes"] > 2000
        assert d["data"]["gammas"] == [0, 0.5, 2] and len(d["data"]["p_t"]) == 40
    assert (tmp_path / "curves.pdf").read_bytes().startswith(b"%PDF")
    r = runner.invoke(app, ["explain", "curves", "-o", str(tmp_path / "x.svg"), "--points", "20"])
    assert r.exit_code == 0 and "wrote" in r.stdout and (tmp_path / "x.svg").stat().st_size > 0


def test_cli_playground(tmp_path) -> None:
    d = _json(["explain", "playground", "-o", str(tmp_path / "pg.html"), "--gamma", "1",
               "--alpha", "0.5", "--json"])
    html = (tmp_path / "pg.html").read_text(encoding="utf-8")
    assert d["bytes"] == len(html.encode()) and d["url"].startswith("file://")
    assert '"gamma": 1.0' in html and '"alpha": 0.5' in html


def test_cli_help_lists_examples_for_every_command() -> None:
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    assert "explain" in r.stdout and "short demo" in r.stdout
    for cmd in ("table", "shares", "curves", "playground", "demo"):
        r = runner.invoke(app, ["explain", cmd, "--help"])
        assert r.exit_code == 0, cmd
        assert "Examples" in r.stdout and f"focalkit explain {cmd}" in r.stdout, cmd
        assert "--json" in r.stdout, cmd
    r = runner.invoke(app, ["explain"])
    assert "table" in r.output and "playground" in r.output


def test_demo_without_arguments() -> None:
    r = runner.invoke(app, [])
    assert r.exit_code == 0, r.output
    for text in ("cross-entropy", "focal γ=5", "0.004561", "0.9374", "focalkit explain table"):
        assert text in r.stdout, text
    d = _json(["explain", "demo", "--json"])
    rows = {r["loss"]: r for r in d["rows"]}
    assert round(rows["cross-entropy"]["positive_share"], 4) == 0.0046
    assert round(rows["focal γ=2"]["positive_share"], 3) == 0.937
    assert [r["gamma"] for r in d["rows"]] == [0, 0, 0.5, 1, 2, 5]
    for r in d["rows"]:  # easy negative at p_t 0.99, hard positive at p_t 0.01
        assert r["easy_loss"] == pytest.approx(_ref(0.01, 0.0, r["alpha"], r["gamma"]), rel=1e-12)
        assert r["hard_loss"] == pytest.approx(_ref(0.01, 1.0, r["alpha"], r["gamma"]), rel=1e-12)


def test_python_dash_m_focalkit_runs_the_demo() -> None:
    r = subprocess.run([sys.executable, "-m", "focalkit"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0.004561" in r.stdout and "0.9374" in r.stdout


# --------------------------------------------------------------------------- docs
def test_docstring_examples_run() -> None:
    import doctest

    from focalkit.tools.explain import api as explain, playground, plots

    for mod in (explain, plots, playground):
        failed, attempted = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert attempted > 0 and failed == 0, mod.__name__


def test_readme_shows_the_generated_curves_figure(tmp_path) -> None:
    """The committed figure is the command's output (same size) and the README shows it."""
    pytest.importorskip("matplotlib")
    import struct
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- section:explain -->")[1].split("<!-- /section:explain -->")[0]
    assert "](docs/curves.png)" in section and "focalkit explain playground" in section
    committed = (root / "docs" / "curves.png").read_bytes()
    r = runner.invoke(app, ["explain", "curves", "-o", str(tmp_path / "c.png")])
    assert r.exit_code == 0, r.output
    fresh = (tmp_path / "c.png").read_bytes()

    def size(png: bytes) -> tuple[int, int]:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        return struct.unpack(">II", png[16:24])

    assert size(committed) == size(fresh)
