"""``focalkit compare`` with the focal family (issue 14): Poly-1, FLSD-53, ASL, the fair CE baseline.

The losses' training values are checked against formulas written out here in float64 (not the
library's); the command runs on tiny data (1 epoch, 1 seed) to check that it accepts the new
losses, says when one does not apply, prints the tries of each family and rejects bad options
with a message naming the option.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("typer")
pytest.importorskip("matplotlib")

import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import focalkit as fk  # noqa: E402
from focalkit.tools.experiments import compare as C  # noqa: E402
from focalkit.tools.experiments import variants  # noqa: E402
from focalkit.tools.experiments.cli import compare as compare_cmd  # noqa: E402
from focalkit.tools.experiments.data import load_data, train_test_split  # noqa: E402
from focalkit.tools.experiments.train import LossSpec, compute_loss, resolve_alpha  # noqa: E402

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _group() -> None:
        pass

    app.command("compare")(compare_cmd)
    return app


def _cli(*args: str):
    return runner.invoke(_app(), ["compare", *args])


def _binary_csv(tmp_path, n=240, seed=0) -> str:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.6 * rng.normal(size=n) > 1.4).astype(int)
    rows = ["f0,f1,f2,target"] + [",".join(f"{v:.5f}" for v in x) + f",{t}" for x, t in zip(X, y)]
    path = tmp_path / "bin.csv"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


# ----------------------------------------------------------------------------- independent formulas (float64)
def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_bce(x, t):
    # -(t log p + (1 - t) log(1 - p)) from the logit, stable: softplus(x) - t x
    return np.logaddexp(0.0, x) - t * x


def _np_poly1(x, t, gamma, eps, alpha=None):
    p = _np_sigmoid(x)
    q = p * (1 - t) + (1 - p) * t  # 1 - p_t
    a = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    return a * q ** gamma * _np_bce(x, t) + eps * q ** (gamma + 1)


def _np_asl(x, t, gamma_pos, gamma_neg, clip):
    p = _np_sigmoid(x)
    pm = np.maximum(p - clip, 0.0)
    return -t * (1 - p) ** gamma_pos * np.log(p) - (1 - t) * pm ** gamma_neg * np.log1p(-pm)


def test_compute_loss_poly1_and_flsd53_binary_match_the_formulas():
    torch.manual_seed(0)
    x = torch.randn(64, 1, dtype=torch.float64) * 3
    y = torch.randint(0, 2, (64,))
    xn, yn = x[:, 0].numpy(), y.numpy().astype(np.float64)
    for gamma, eps, alpha in [(0.0, 1.0, None), (2.0, -1.0, 0.25), (0.5, 3.0, 0.75)]:
        got = compute_loss("binary", x, y, alpha=alpha, gamma=gamma, num_classes=2, epsilon=eps)
        np.testing.assert_allclose(float(got), _np_poly1(xn, yn, gamma, eps, alpha).mean(), rtol=1e-10)
    # FLSD-53: gamma 5 where p_t < 0.2, 3 above
    p = _np_sigmoid(xn)
    pt = p * yn + (1 - p) * (1 - yn)
    g = np.where(pt < 0.2, 5.0, 3.0)
    want = ((1 - pt) ** g * _np_bce(xn, yn)).mean()
    got = compute_loss("binary", x, y, alpha=None, gamma=fk.FLSD53, num_classes=2)
    np.testing.assert_allclose(float(got), want, rtol=1e-10)


def test_compute_loss_poly1_multiclass_is_ce_plus_epsilon_one_minus_pt():
    torch.manual_seed(1)
    x = torch.randn(32, 5, dtype=torch.float64)
    y = torch.randint(0, 5, (32,))
    logp = torch.log_softmax(x, 1).numpy()
    pt = np.exp(logp[np.arange(32), y.numpy()])
    want = (-np.log(pt) + 2.0 * (1 - pt)).mean()
    got = compute_loss("multiclass", x, y, alpha=None, gamma=0.0, num_classes=5, epsilon=2.0)
    np.testing.assert_allclose(float(got), want, rtol=1e-10)


@pytest.mark.parametrize("gp, gn, clip", [(0.0, 4.0, 0.05), (1.0, 0.0, 0.0), (0.0, 2.0, 0.3)])
def test_compute_loss_asl_binary_and_dense_match_the_formula(gp, gn, clip):
    torch.manual_seed(2)
    asl = dict(gamma_pos=gp, gamma_neg=gn, clip=clip)
    x = torch.randn(40, 1, dtype=torch.float64) * 2
    y = torch.randint(0, 2, (40,))
    got = compute_loss("binary", x, y, alpha=None, gamma=0.0, num_classes=2, asl=asl)
    want = _np_asl(x[:, 0].numpy(), y.numpy().astype(np.float64), gp, gn, clip).mean()
    np.testing.assert_allclose(float(got), want, rtol=1e-10)
    # dense: class indices (3 = background), summed and divided by the positive anchors
    xd = torch.randn(2, 3, 4, 4, dtype=torch.float64) * 2
    yd = torch.full((2, 4, 4), 3)
    yd[0, 1, 1], yd[1, 2, 3], yd[1, 0, 0] = 0, 2, 2
    t = np.moveaxis(np.eye(4)[yd.numpy()][..., :3], -1, 1)
    want = _np_asl(xd.numpy(), t, gp, gn, clip).sum() / 3
    got = compute_loss("dense", xd, yd, alpha=None, gamma=0.0, num_classes=3, asl=asl)
    np.testing.assert_allclose(float(got), want, rtol=1e-10)
    with pytest.raises(ValueError, match="does not apply"):
        compute_loss("multiclass", torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), alpha=None, gamma=0.0,
                     num_classes=3, asl=asl)


# ----------------------------------------------------------------------------- specs, grid, tries
def test_lossspec_family_names_and_checks():
    assert LossSpec("poly1", epsilon=1.0).name == "Poly-1 ε=1"
    assert LossSpec("poly1", gamma=2.0, epsilon=-1.0).name == "Poly-1 γ=2 ε=-1"
    assert LossSpec("flsd53").name == "FLSD-53" and LossSpec("flsd53").gamma_value is fk.FLSD53
    assert LossSpec("asl", gamma_neg=4.0, clip=0.05).name == "ASL γ+=0 γ-=4 clip=0.05"
    assert LossSpec("asl", gamma_neg=4.0, clip=0.05).to_dict()["gamma_neg"] == 4.0
    with pytest.raises(ValueError, match=r"epsilon \(the Poly-1 coefficient\) must be >= -1"):
        LossSpec("poly1", epsilon=-1.5)
    with pytest.raises(ValueError, match=r"clip \(the probability shift of the negatives\) must be in"):
        LossSpec("asl", clip=1.0)
    with pytest.raises(ValueError, match="gamma_neg"):
        LossSpec("asl", gamma_neg=-1.0)
    with pytest.raises(ValueError, match="epsilon applies to kind='poly1' only"):
        LossSpec("focal", gamma=2.0, epsilon=1.0)
    with pytest.raises(ValueError, match="apply to kind='asl' only"):
        LossSpec("focal", gamma=2.0, clip=0.1)
    with pytest.raises(ValueError, match="takes no alpha"):
        LossSpec("asl", alpha=0.25)
    with pytest.raises(ValueError, match="gamma applies"):
        LossSpec("flsd53", gamma=2.0)


def test_alpha_of_the_family(tmp_path):
    digits = load_data("digits")
    tr, _ = train_test_split(digits, seed=0)
    assert resolve_alpha(LossSpec("poly1", epsilon=1.0), digits, tr) is None  # Poly-1 CE: as CE
    torch.testing.assert_close(resolve_alpha(LossSpec("poly1", gamma=2.0, epsilon=1.0), digits, tr),
                               resolve_alpha(LossSpec("focal", gamma=2.0), digits, tr))
    b = load_data(_binary_csv(tmp_path))
    btr = np.arange(len(b))
    assert resolve_alpha(LossSpec("flsd53"), b, btr) == 0.25  # focal loss's automatic alpha
    assert resolve_alpha(LossSpec("asl", gamma_neg=4.0), b, btr) is None


def test_balanced_grid_per_task_and_the_tries():
    cfg = C.CompareConfig(balanced_grid=True)
    dense = [s.name for s in C.build_losses(cfg, "dense")]
    assert dense == ["CE", "balanced CE", "balanced CE α=0.25", "balanced CE α=0.75",
                     "focal γ=0.5", "focal γ=1", "focal γ=2", "focal γ=5"]
    multi = C.build_losses(cfg, "multiclass")
    assert [s.alpha_method for s in multi[1:4]] == ["inverse", "inverse_sqrt", "effective_number"]
    tries = variants.budget(multi)
    assert {k: len(v) for k, v in tries.items()} == {"cross-entropy": 4, "focal": 4}
    assert "got 4 tries each" in variants.budget_text(tries)[-1]
    # a given alpha is one try, and the lines say the baseline got fewer
    one = C.build_losses(C.CompareConfig(balanced_grid=True, balanced_alpha=0.75), "dense")
    text = variants.budget_text(variants.budget(one))
    assert text[0] == "cross-entropy: 2 tries (CE, balanced CE α=0.75)"
    assert text[-1].startswith("the cross-entropy family got fewer tries (2) than focal loss (4)")
    with pytest.raises(ValueError, match="needs the task"):
        C.build_losses(cfg)
    fam = C.build_losses(C.CompareConfig(losses=["poly1", "flsd53", "asl"], epsilon=-1.0, poly_gamma=2.0,
                                         asl_gamma_neg=2.0, asl_clip=0.0), "dense")
    assert [s.name for s in fam] == ["Poly-1 γ=2 ε=-1", "FLSD-53", "ASL γ+=0 γ-=2 clip=0"]
    assert variants.budget(fam) == {"Poly-1": ["Poly-1 γ=2 ε=-1"], "FLSD-53": ["FLSD-53"],
                                    "ASL": ["ASL γ+=0 γ-=2 clip=0"]}


def test_config_rejects_bad_family_values_naming_them():
    for field, value, pattern in [("epsilon", -2.0, "epsilon .*must be >= -1"), ("asl_clip", 1.0, r"asl_clip .*must be in \[0, 1\)"),
                                  ("asl_gamma_neg", -1.0, "asl_gamma_neg"), ("poly_gamma", -0.5, "poly_gamma")]:
        with pytest.raises(ValueError, match=pattern):
            C.CompareConfig(**{field: value}).validate()
    with pytest.raises(ValueError, match="need --model net"):
        C.CompareConfig(losses=["asl"], model="lightgbm").validate()


# ----------------------------------------------------------------------------- the command
def test_compare_cli_runs_the_family_on_a_binary_table(tmp_path):
    csv = _binary_csv(tmp_path)
    res = _cli(csv, "--losses", "ce,balanced_ce,focal,poly1,flsd53,asl", "--gammas", "2", "--epsilon", "2",
               "--asl-gamma-neg", "3", "--asl-clip", "0.1", "--seeds", "1", "--epochs", "2",
               "-o", str(tmp_path / "o"), "--no-html", "-q")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o" / "bin.json").read_text())
    names = ["CE", "balanced CE", "balanced CE α=0.25", "balanced CE α=0.75", "focal γ=2", "Poly-1 ε=2",
             "FLSD-53", "ASL γ+=0 γ-=3 clip=0.1"]
    assert list(data["summary"]) == names
    for n in names:  # calibration for every loss
        assert 0.0 <= data["summary"][n]["ece"]["mean"] <= 1.0
    kinds = {d["name"]: d for d in data["losses"]}
    assert kinds["Poly-1 ε=2"]["epsilon"] == 2.0 and kinds["ASL γ+=0 γ-=3 clip=0.1"]["clip"] == 0.1
    assert kinds["FLSD-53"]["gamma"] == {"thresholds": [0.2], "values": [5.0, 3.0]}
    assert data["tries"]["cross-entropy"] == names[:4] and data["tries"]["focal"] == ["focal γ=2"]
    out = " ".join(res.output.split())
    assert "tries: cross-entropy: 4 tries" in out and "tries: Poly-1: 1 try (Poly-1 ε=2)" in out
    assert "focal loss got fewer tries (1) than the cross-entropy family (4)" in out


def test_compare_cli_says_when_asl_does_not_apply(tmp_path):
    res = _cli("digits", "--losses", "ce,asl,poly1", "--seeds", "1", "--epochs", "1", "-o", str(tmp_path),
               "--no-html", "-q")
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "asl is a sigmoid (binary / multi-label) loss and does not apply to this multi-class" in out
    data = json.loads((tmp_path / "digits.json").read_text())
    assert list(data["summary"]) == ["CE", "Poly-1 ε=1"]
    assert any("does not apply" in n for n in data["notes"])
    res = _cli("digits", "--losses", "asl", "--seeds", "1", "--epochs", "1", "-o", str(tmp_path))
    assert res.exit_code == 2 and "does not apply" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("args, message", [
    (["--epsilon", "-2"], "--epsilon (the Poly-1 coefficient) must be >= -1"),
    (["--epsilon", "nan"], "--epsilon"),
    (["--asl-clip", "1"], "--asl-clip (the probability shift of the negatives) must be in [0, 1)"),
    (["--asl-clip", "-0.1"], "--asl-clip (the probability shift of the negatives) must be in [0, 1)"),
    (["--asl-gamma-neg", "-1"], "--asl-gamma-neg"),
    (["--asl-gamma-pos", "-1"], "--asl-gamma-pos"),
    (["--poly-gamma", "-1"], "--poly-gamma"),
    (["--losses", "ce,poly2"], "losses must be a non-empty list of"),
    (["--losses", "poly1", "--model", "lightgbm"], "need --model net"),
])
def test_compare_cli_bad_family_options(tmp_path, args, message):
    res = _cli("digits", *args, "-o", str(tmp_path / "o"))
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()) and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()  # nothing trained, nothing written


def test_compare_cli_no_balanced_grid_prints_the_smaller_budget(tmp_path):
    res = _cli("digits", "--no-balanced-grid", "--gammas", "1,2", "--seeds", "1", "--epochs", "1",
               "-o", str(tmp_path), "--no-html", "-q")
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "cross-entropy: 2 tries (CE, balanced CE)" in out and "focal: 2 tries" in out
    assert list(json.loads((tmp_path / "digits.json").read_text())["summary"]) == [
        "CE", "balanced CE", "focal γ=1", "focal γ=2"]


def test_variants_docstring_examples():
    import doctest

    result = doctest.testmod(variants, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
