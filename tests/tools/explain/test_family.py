"""``focalkit explain family``: the focal family's gradient against cross-entropy's (issue 14).

The numbers come from autograd through the library's losses; here they are checked against the
closed-form derivatives written out independently in float64 NumPy (from the papers' formulas),
at the table's p_t values and elsewhere, for several parameter values including the edges
(epsilon = -1, clip = 0, gamma_neg = 0, p_t at FLSD-53's threshold).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("typer")
pytest.importorskip("rich")

from typer.testing import CliRunner  # noqa: E402

from focalkit.tools.explain import family as F  # noqa: E402
from focalkit.tools.explain.cli import explain_app  # noqa: E402
from focalkit.tools.explain.playground import playground_html  # noqa: E402

runner = CliRunner()


# ----------------------------------------------------------------------------- closed forms (float64)
# d/dx of each loss for a negative example (label 0) whose class has probability p_t, i.e. the
# positive probability p = 1 - p_t = sigmoid(x), dp/dx = p (1 - p).
def _ce(pt):
    return 1 - pt                                   # |d(-log(1 - p))/dx| = p


def _focal(pt, g):
    q = 1 - pt                                      # FL = q^g (-log p_t), q = p
    return q ** g * (q - g * pt * np.log(pt))


def _poly1(pt, eps):
    return (1 - pt) * (1 + eps * pt)                # d/dx [CE + eps p] = p + eps p (1 - p)


def _flsd53(pt):
    return _focal(pt, np.where(pt < 0.2, 5.0, 3.0))


def _asl(pt, gn, clip):
    p = 1 - pt
    pm = np.maximum(p - clip, 0.0)                  # L = pm^gn (-log(1 - pm)), dpm/dp = 1 where p > clip
    dpow = gn * pm ** (gn - 1) if gn else np.zeros_like(pm)
    d = dpow * -np.log1p(-pm) + pm ** gn / (1 - pm)
    return np.where(pm > 0, p * (1 - p) * d, 0.0)


def _losses(pt, g, eps, gn, clip):
    q = 1 - pt
    pm = np.maximum(q - clip, 0.0)
    return [-np.log(pt), q ** g * -np.log(pt), -np.log(pt) + eps * q,
            q ** np.where(pt < 0.2, 5.0, 3.0) * -np.log(pt), pm ** gn * -np.log1p(-pm)]


@pytest.mark.parametrize("g, eps, gn, clip", [(2.0, 1.0, 4.0, 0.05), (0.5, -1.0, 0.0, 0.0),
                                              (3.0, 4.0, 2.0, 0.2), (0.0, 0.0, 1.0, 0.0)])
def test_table_matches_the_closed_form_derivatives(g, eps, gn, clip):
    pts = [0.5, 0.75, 0.9, 0.99, 0.05, 0.2 - 1e-6, 0.2 + 1e-6, 0.3, 0.999]
    r = F.explain_family(p_t=pts, gamma=g, epsilon=eps, gamma_neg=gn, clip=clip)
    pt = np.array(pts, np.float64)
    want = [_ce(pt), _focal(pt, g), _poly1(pt, eps), _flsd53(pt), _asl(pt, gn, clip)]
    assert [m.name for m in r.members] == ["CE", f"focal γ={g:g}", f"Poly-1 ε={eps:g}", "FLSD-53",
                                           f"ASL γ-={gn:g} clip={clip:g}"]
    for m, w, lw in zip(r.members, want, _losses(pt, g, eps, gn, clip)):
        np.testing.assert_allclose(m.grad, w, rtol=1e-9, atol=1e-300, err_msg=m.name)
        np.testing.assert_allclose(m.ratio, w / _ce(pt), rtol=1e-9, atol=1e-300, err_msg=m.name)
        np.testing.assert_allclose(m.loss, lw, rtol=1e-9, atol=1e-300, err_msg=m.name)


def test_the_flattening_answer_in_numbers():
    """The README's sentence: at p_t = 0.9 focal loss (gamma 2) keeps 2.9 % of CE's gradient,
    Poly-1 (epsilon 1) 190 %, FLSD-53 0.38 %, ASL's negatives 0.0029 %; above p_t = 0.95 ASL's is 0."""
    r = F.explain_family()
    assert r.p_t == [0.5, 0.75, 0.9, 0.99]
    j = r.p_t.index(0.9)
    got = {m.name: m.ratio[j] for m in r.members}
    assert got["focal γ=2"] == pytest.approx(0.0289649, rel=1e-5)
    assert got["Poly-1 ε=1"] == pytest.approx(1.9, rel=1e-12)
    assert got["FLSD-53"] == pytest.approx(0.00384473, rel=1e-5)
    assert got["ASL γ-=4 clip=0.05"] == pytest.approx(2.90030e-05, rel=1e-5)
    assert r.member("ASL γ-=4 clip=0.05").grad[-1] == 0.0
    # focal loss's share of CE's gradient falls monotonically with p_t; Poly-1's rises
    focal = r.member("focal γ=2").ratio
    assert all(a > b for a, b in zip(focal, focal[1:]))
    poly = r.member("Poly-1 ε=1").ratio
    assert all(a < b for a, b in zip(poly, poly[1:]))
    with pytest.raises(KeyError, match="the members are"):
        r.member("hinge")


def test_flsd53_switches_gamma_at_its_threshold_and_can_be_left_out():
    # p_t = 0.2 itself does not survive the round trip through the logit exactly, so one step
    # of 1e-9 either side (the library computes p_t from the logit)
    r = F.explain_family(p_t=[0.2 - 1e-9, 0.2 + 1e-9])
    below, above = r.member("FLSD-53").ratio
    assert below == pytest.approx(_focal(0.2 - 1e-9, 5.0) / _ce(0.2 - 1e-9), rel=1e-7)
    assert above == pytest.approx(_focal(0.2 + 1e-9, 3.0) / _ce(0.2 + 1e-9), rel=1e-7)
    assert below / above == pytest.approx(0.8 ** 2 * (0.8 - 5 * 0.2 * math.log(0.2))
                                          / (0.8 - 3 * 0.2 * math.log(0.2)), rel=1e-6)
    assert "FLSD-53" not in [m.name for m in F.explain_family(flsd53=False).members]


def test_extreme_p_t_stay_finite():
    r = F.explain_family(p_t=[1e-12, 1 - 1e-12], epsilon=-1.0, clip=0.0, gamma_neg=0.0)
    for m in r.members:
        assert all(math.isfinite(v) for v in m.loss + m.grad + m.ratio), m.name


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(p_t=[]), ValueError, "p_t must not be empty"),
    (dict(p_t=0.5), TypeError, "p_t must be a sequence"),
    (dict(p_t=[0.5, 1.0]), ValueError, r"p_t\[1\]"),
    (dict(gamma=-1.0), ValueError, "gamma"),
    (dict(epsilon=-1.5), ValueError, r"epsilon \(the Poly-1 coefficient\) must be >= -1"),
    (dict(epsilon="1"), TypeError, "epsilon"),
    (dict(gamma_neg=-2.0), ValueError, "gamma_neg"),
    (dict(clip=1.0), ValueError, r"clip \(the probability shift of the negatives\) must be in \[0, 1\)"),
    (dict(flsd53=1), TypeError, "flsd53 must be a bool"),
])
def test_bad_input_names_the_argument(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        F.explain_family(**kwargs)


def test_to_dict_is_json():
    d = json.loads(json.dumps(F.explain_family().to_dict(), allow_nan=False))
    assert d["members"][3]["params"]["gamma"] == {"thresholds": [0.2], "values": [5.0, 3.0]}


# ----------------------------------------------------------------------------- the command
def test_cli_family_table_answer_and_figure(tmp_path):
    out = tmp_path / "family.png"
    res = runner.invoke(explain_app, ["family", "-o", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "p_t=0.75" in text and "0.002896 (2.9 %)" in text and "0.19 (190 %)" in text
    assert ("at p_t = 0.9 the gradient is, as a share of cross-entropy's: focal γ=2 2.9 %, Poly-1 ε=1 190 %, "
            "FLSD-53 0.384 %, ASL γ-=4 clip=0.05 0.0029 %") in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = runner.invoke(explain_app, ["family", "--json", "--p-t", "0.6", "--epsilon", "-1", "--no-flsd53"])
    d = json.loads(res.output)
    assert d["p_t"] == [0.6] and [m["name"] for m in d["members"]][2] == "Poly-1 ε=-1"
    assert d["members"][2]["grad"][0] == pytest.approx(_poly1(0.6, -1.0), rel=1e-12)


@pytest.mark.parametrize("args, pattern", [
    (["--epsilon", "-3"], "epsilon (the Poly-1 coefficient) must be >= -1"),
    (["--asl-clip", "1.5"], "clip (the probability shift of the negatives) must be in [0, 1)"),
    (["--asl-gamma-neg", "-1"], "gamma_neg"),
    (["--p-t", "1"], "p_t[0]"),
    (["-o", "family.gif"], "path must end in"),
])
def test_cli_family_bad_values(args, pattern, tmp_path):
    args = [str(tmp_path / a) if a.endswith(".gif") else a for a in args]
    res = runner.invoke(explain_app, ["family", *args])
    shown = " ".join(res.output.replace("│", " ").split())  # the usage error's box may wrap the line
    assert res.exit_code == 2 and pattern in shown, res.output
    assert "Traceback" not in res.output


def test_playground_carries_the_family_parameters():
    html = playground_html(epsilon=-0.96, flsd53=False, gamma_neg=2.3, clip=0.123)
    cfg = json.loads(html.split("const CONFIG = ", 1)[1].split(";\n", 1)[0])
    assert cfg["family"] == {"epsilon": -1.0, "flsd53": False, "gamma_neg": 2.5, "clip": 0.12,
                             "p_t": [0.5, 0.75, 0.9, 0.99]}
    for id_ in ('id="epsilon"', 'id="flsd53"', 'id="gamma-neg"', 'id="clip"', 'id="family"'):
        assert id_ in html
    for kwargs, pattern in [(dict(epsilon=-2), "epsilon"), (dict(epsilon=6), "epsilon must be <= 5"),
                            (dict(clip=0.5), "clip must be <= 0.2"), (dict(gamma_neg=-1), "gamma_neg")]:
        with pytest.raises(ValueError, match=pattern):
            playground_html(**kwargs)


def test_docstring_examples():
    import doctest

    from focalkit.tools.explain import plots

    for mod in (F, plots):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, mod.__name__


def test_readme_and_docs_show_the_generated_family_figure_and_numbers(tmp_path):
    """The committed figure is the command's output (same size); the README's explain section
    shows it and quotes the numbers the command prints."""
    pytest.importorskip("matplotlib")
    import struct
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- section:explain -->")[1].split("<!-- /section:explain -->")[0]
    assert "](docs/family.png)" in section and "focalkit explain family" in section
    assert "](family.png)" in (root / "docs" / "explain.md").read_text(encoding="utf-8")
    res = runner.invoke(explain_app, ["family", "-o", str(tmp_path / "f.png")])
    assert res.exit_code == 0, res.output
    for row in ("| focal γ=2 | 0.2983 (59.7 %) | 0.0426 (17 %) | 0.002896 (2.9 %) | 2.990e-06 (0.0299 %) |",
                "| Poly-1 ε=1 | 0.75 (150 %) | 0.4375 (175 %) | 0.19 (190 %) | 0.0199 (199 %) |"):
        assert row in section, row
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert " ".join(cells[1:]) in " ".join(res.output.split())

    def size(png: bytes) -> tuple[int, int]:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        return struct.unpack(">II", png[16:24])

    assert size((root / "docs" / "family.png").read_bytes()) == size((tmp_path / "f.png").read_bytes())
