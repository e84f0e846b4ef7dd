"""focalkit.tools.experiments and ``focalkit compare``: data, metrics vs scikit-learn, training, CLI."""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("typer")
pytest.importorskip("matplotlib")

import typer  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
)
from typer.testing import CliRunner  # noqa: E402

import focalkit as fk  # noqa: E402
from focalkit.tools.experiments import compare as C  # noqa: E402
from focalkit.tools.experiments import metrics as M  # noqa: E402
from focalkit.tools.experiments.cli import compare as compare_cmd  # noqa: E402
from focalkit.tools.experiments.data import (  # noqa: E402
    DataError,
    _templates,
    class_counts,
    kfold,
    load_data,
    make_dense,
    train_test_split,
)
from focalkit.tools.experiments.models import build_model, init_prior_bias  # noqa: E402
from focalkit.tools.experiments.train import (  # noqa: E402
    LossSpec,
    TrainConfig,
    compute_loss,
    fit_and_score,
    load_checkpoint,
    resolve_alpha,
)

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _group() -> None:  # keeps "compare" a subcommand
        pass

    app.command("compare")(compare_cmd)
    return app


def _cli(*args: str):
    return runner.invoke(_app(), ["compare", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


@pytest.fixture(scope="module")
def small_dense():
    return make_dense(40, size=24, objects_per_image=2.0, seed=5)


# ----------------------------------------------------------------------------- data


def test_dense_shapes_sparsity_and_determinism():
    ds = make_dense(60, seed=1)
    assert ds.task == "dense" and ds.num_classes == 3 and ds.rare_classes == [0, 1, 2]
    assert ds.X.shape == (60, 1, 48, 48) and ds.X.dtype == np.float32
    assert ds.y.shape == (60, 24, 24) and ds.y.dtype == np.int64
    assert set(np.unique(ds.y)) <= {0, 1, 2, 3}
    fg = (ds.y < 3).mean()
    assert 3e-4 < fg < 5e-3  # on the order of one foreground anchor per thousand
    again = make_dense(60, seed=1)
    np.testing.assert_array_equal(again.X, ds.X)
    np.testing.assert_array_equal(again.y, ds.y)
    other = make_dense(60, seed=2)
    assert not np.array_equal(other.X, ds.X)


def test_dense_labels_sit_on_their_objects():
    """Without clutter, the 5x5 patch at each labelled anchor matches its class's template best."""
    ds = make_dense(40, clutter_per_image=0.0, objects_per_image=2.0, seed=3)
    tpl = [t - t.mean() for t in _templates()]
    checked = 0
    for n, gy, gx in zip(*np.nonzero(ds.y < 3)):
        label = ds.y[n, gy, gx]
        best = -np.inf
        for cy in (2 * gy, 2 * gy + 1):
            for cx in (2 * gx, 2 * gx + 1):
                patch = ds.X[n, 0, cy - 2 : cy + 3, cx - 2 : cx + 3]
                if patch.shape != (5, 5):
                    continue
                scores = [float(((patch - patch.mean()) * t).sum()) for t in tpl]
                if scores[label] > best:
                    best, best_scores = scores[label], scores
        assert int(np.argmax(best_scores)) == label
        checked += 1
    assert checked > 40


def test_digits_imbalance(digits):
    from sklearn.datasets import load_digits

    orig = np.bincount(load_digits().target, minlength=10)
    counts = class_counts(digits)
    assert digits.rare_classes == [3, 8] and digits.task == "multiclass"
    for c in range(10):
        if c in (3, 8):
            assert 0.01 <= counts[c] / counts.sum() <= 0.02
        else:
            assert counts[c] == orig[c]  # untouched
    np.testing.assert_array_equal(load_data("digits").y, digits.y)


def _write(tmp_path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_csv_binary_rare_class_is_positive(tmp_path):
    rows = ["a,b,label"] + [f"{i},{i % 7},{'yes' if i % 10 == 0 else 'no'}" for i in range(50)]
    ds = load_data(_write(tmp_path, "d.csv", "\n".join(rows)), target="label")
    assert ds.task == "binary" and ds.num_classes == 2 and ds.rare_classes == [1]
    assert ds.class_names == ["no", "yes"]
    assert ds.y.sum() == 5 and ds.X.shape == (50, 2)
    np.testing.assert_array_equal(ds.y, (np.arange(50) % 10 == 0).astype(int))


def test_csv_default_target_and_multiclass(tmp_path):
    rows = ["x1,x2,cls"] + [f"{i * 0.5},{-i},{0 if i < 30 else (1 if i < 57 else 2)}" for i in range(60)]
    ds = load_data(_write(tmp_path, "m.csv", "\n".join(rows)))  # last column
    assert ds.task == "multiclass" and ds.num_classes == 3
    assert ds.rare_classes == [2]  # 3 of 60 rows


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("a,b,y\n1,2,0\n3,4,1\n", r"no column 'target'.*a, b, y"),
        ("a,target\n1,0\nfoo,1\n2,1\n", r"column 'a' is not numeric \(row 3: 'foo'\)"),
        ("a,target\n1,0\n2,0\n3,0\n", r"single class"),
        ("a,target\n1,0\nnan,1\n2,1\n", r"'a' has 'nan' \(row 3\)"),
        ("a,target\n1,0\n,1\n2,1\n", r"missing value in column 'a' \(row 3\)"),
        ("", r"empty"),
        ("a,target\n", r"no data rows"),
        ("a,target\n1,0.5\n2,1.5\n", r"non-integer numbers"),
        ("a,target\n1,0\n2,0\n3,1\n", r"single example"),
        ("a,target\n1,0\n2\n", r"row 3 has 1 fields"),
    ],
)
def test_csv_errors(tmp_path, text, pattern):
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError, match=pattern):
        load_data(path, target="target" if "target" in text or "a,b,y" in text else None)


def test_npz_loading_and_errors(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.array([0] * 36 + [1] * 4)
    ok = tmp_path / "ok.npz"
    np.savez(ok, X=X, y=y)
    ds = load_data(str(ok))
    assert ds.task == "binary" and ds.y.sum() == 4 and ds.X.dtype == np.float32
    np.savez(tmp_path / "nokey.npz", X=X, labels=y)
    with pytest.raises(DataError, match=r"missing array\(s\) \['y'\]"):
        load_data(str(tmp_path / "nokey.npz"))
    Xn = X.copy()
    Xn[5, 1] = np.nan
    np.savez(tmp_path / "nan.npz", X=Xn, y=y)
    with pytest.raises(DataError, match=r"NaN/inf \(row 5, column 1\)"):
        load_data(str(tmp_path / "nan.npz"))
    np.savez(tmp_path / "len.npz", X=X, y=y[:-1])
    with pytest.raises(DataError, match="40 rows but y has 39"):
        load_data(str(tmp_path / "len.npz"))
    np.savez(tmp_path / "one.npz", X=X, y=np.zeros(40, int))
    with pytest.raises(DataError, match="single class"):
        load_data(str(tmp_path / "one.npz"))
    np.savez(tmp_path / "obj.npz", X=np.array([[1, "a"]] * 4, dtype=object), y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="cannot read"):
        load_data(str(tmp_path / "obj.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid .npz"):
        load_data(str(tmp_path / "junk.npz"))


def test_load_data_bad_sources(tmp_path):
    with pytest.raises(DataError, match="no such file.*dense, digits"):
        load_data("nope.csv")
    with pytest.raises(DataError, match="unknown file type"):
        load_data(_write(tmp_path, "x.json", "{}"))
    with pytest.raises(TypeError, match="source"):
        load_data(3)


def test_splits_stratified_and_partitioning(digits, small_dense):
    tr, te = train_test_split(digits, test_fraction=0.3, seed=0)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(digits)
    for c in (3, 8):  # the rare classes are on both sides in proportion
        assert abs((digits.y[te] == c).sum() - 0.3 * (digits.y == c).sum()) <= 1
    assert not np.array_equal(train_test_split(digits, seed=1)[1], te)
    np.testing.assert_array_equal(train_test_split(digits, seed=0)[1], te)
    folds = kfold(digits, 5, seed=0)
    assert len(folds) == 5
    np.testing.assert_array_equal(np.sort(np.concatenate([v for _, v in folds])), np.arange(len(digits)))
    for trf, va in folds:
        assert len(np.intersect1d(trf, va)) == 0
        assert (digits.y[va] == 3).sum() in (4, 5)
    dtr, dte = train_test_split(small_dense, test_fraction=0.25, seed=0)
    assert len(dte) == 10 and len(dtr) == 30
    assert len(kfold(small_dense, 4)) == 4
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(digits, test_fraction=1.0)
    with pytest.raises(ValueError, match="k must be"):
        kfold(digits, 1)
    with pytest.raises(DataError, match="smallest class"):
        kfold(digits, 50)


# ----------------------------------------------------------------------------- metrics


def test_ece_hand_example():
    # bins [0, .5) and [.5, 1]: (0.1, y=0), (0.3, y=1) -> conf .2, freq .5; (0.9, 0.9, y=1) -> .9, 1
    # ECE = 2/4 * 0.3 + 2/4 * 0.1 = 0.2
    assert M.expected_calibration_error([0, 1, 1, 1], [0.1, 0.3, 0.9, 0.9], n_bins=2) == pytest.approx(0.2)
    # perfectly calibrated bins give 0; probability 1.0 falls in the last bin
    assert M.expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.0, 1.0], n_bins=10) == pytest.approx(0.0)
    r = M.reliability_bins([0, 1, 1], [0.0, 1.0, 0.95], n_bins=10)
    assert r["count"][0] == 1 and r["count"][9] == 2 and sum(r["count"]) == 3
    assert math.isnan(r["confidence"][4])
    with pytest.raises(ValueError, match="probabilities"):
        M.expected_calibration_error([0, 1], [0.2, 1.2])
    with pytest.raises(ValueError, match="same length"):
        M.expected_calibration_error([0, 1], [0.2])
    with pytest.raises(ValueError, match="0/1"):
        M.expected_calibration_error([0, 2], [0.2, 0.3])
    with pytest.raises(ValueError, match="n_bins"):
        M.reliability_bins([0, 1], [0.2, 0.3], n_bins=0)


def _brute_best_f1(y, p):
    best = 0.0
    for t in np.unique(p):
        pred = p >= t
        tp = (pred & (y == 1)).sum()
        if tp:
            prec, rec = tp / pred.sum(), tp / (y == 1).sum()
            best = max(best, 2 * prec * rec / (prec + rec))
    return best


def test_multiclass_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    n, k = 400, 4
    y = rng.choice(k, n, p=[0.6, 0.3, 0.07, 0.03])
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    r = M.evaluate("multiclass", probs, y, num_classes=k, rare_classes=[2, 3])
    aps = [average_precision_score(y == c, probs[:, c]) for c in (2, 3)]
    assert r["ap"] == pytest.approx(np.mean(aps))
    assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, probs.argmax(1)))
    assert r["brier"] == pytest.approx(np.mean([brier_score_loss(y == c, probs[:, c]) for c in (2, 3)]))
    assert r["f1"] == pytest.approx(np.mean([_brute_best_f1((y == c).astype(int), probs[:, c]) for c in (2, 3)]))
    assert r["ece"] == pytest.approx(
        np.mean([M.expected_calibration_error((y == c).astype(int), probs[:, c], 15) for c in (2, 3)])
    )
    for c in ("2", "3"):  # AP from the kept PR-curve corners equals scikit-learn's AP
        curve = r["pr_curve"][int(c)]
        rec, prec = np.array(curve["recall"]), np.array(curve["precision"])
        assert rec[0] == 1.0 and rec[-1] == 0.0 and prec[-1] == 1.0
        assert np.sum((rec[:-1] - rec[1:]) * prec[:-1]) == pytest.approx(r["per_class"][int(c)]["ap"], abs=1e-4)


def test_binary_and_dense_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.05).astype(int)
    p = np.clip(0.3 * y + rng.random(500) * 0.6, 0, 1)
    r = M.evaluate("binary", p, y, num_classes=2, rare_classes=[1])
    assert r["ap"] == pytest.approx(average_precision_score(y, p))
    assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p >= 0.5))
    assert r["brier"] == pytest.approx(brier_score_loss(y, p))
    # dense: (n, C, h, w) sigmoid probabilities, labels (n, h, w) with C = background
    n, k, h, w = 3, 2, 5, 6
    lab = np.full((n, h, w), k)
    lab[0, 1, 2], lab[1, 3, 3], lab[2, 0, 5], lab[2, 4, 1] = 0, 1, 0, 1
    pr = rng.random((n, k, h, w)) * 0.6
    pr[0, 0, 1, 2] = 0.9
    d = M.evaluate("dense", pr, lab, num_classes=k, rare_classes=[0, 1])
    flat_p, flat_y = np.moveaxis(pr, 1, -1).reshape(-1, k), lab.reshape(-1)
    assert d["ap"] == pytest.approx(np.mean([average_precision_score(flat_y == c, flat_p[:, c]) for c in (0, 1)]))
    pred = np.where(flat_p.max(1) >= 0.5, flat_p.argmax(1), k)
    assert d["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(flat_y, pred))
    assert d["per_class"][0]["positives"] == 2
    with pytest.raises(ValueError, match="task"):
        M.evaluate("regression", p, y, num_classes=2, rare_classes=[1])


# ----------------------------------------------------------------------------- training


def test_lossspec_validation_and_names():
    assert LossSpec("ce").name == "CE"
    assert LossSpec("balanced_ce").name == "balanced CE"
    assert LossSpec("focal", gamma=2.0).name == "focal γ=2"
    assert LossSpec("focal", gamma=0.5, alpha=0.75).name == "focal γ=0.5 α=0.75"
    with pytest.raises(ValueError, match="kind"):
        LossSpec("hinge")
    with pytest.raises(ValueError, match="gamma"):
        LossSpec("focal", gamma=-1.0)
    with pytest.raises(ValueError, match="gamma applies"):
        LossSpec("ce", gamma=2.0)
    with pytest.raises(ValueError, match="no alpha"):
        LossSpec("ce", alpha=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LossSpec("focal", gamma=1.0, alpha=1.5)
    with pytest.raises(TypeError, match="gamma"):
        LossSpec("focal", gamma="2")
    with pytest.raises(ValueError, match="alpha_method"):
        LossSpec("balanced_ce", alpha_method="median")


def test_resolve_alpha(digits, small_dense, tmp_path):
    tr, _ = train_test_split(digits, seed=0)
    counts = class_counts(digits, tr)
    torch.testing.assert_close(resolve_alpha(LossSpec("balanced_ce"), digits, tr), fk.class_weights(counts))
    torch.testing.assert_close(resolve_alpha(LossSpec("focal", gamma=2.0), digits, tr), fk.class_weights(counts))
    assert resolve_alpha(LossSpec("ce"), digits, tr) is None
    assert resolve_alpha(LossSpec("focal", gamma=2.0, alpha="off"), digits, tr) is None
    with pytest.raises(ValueError, match="per-class weights"):
        resolve_alpha(LossSpec("focal", gamma=2.0, alpha=0.25), digits, tr)
    with pytest.raises(ValueError, match="10 classes"):
        resolve_alpha(LossSpec("focal", gamma=2.0, alpha=[1.0, 2.0]), digits, tr)
    # dense: balanced alpha per class = negatives / all anchors ("inverse"); focal: paper's 0.25
    dtr = np.arange(30)
    pos = class_counts(small_dense, dtr)
    total = small_dense.y[dtr].size
    torch.testing.assert_close(
        resolve_alpha(LossSpec("balanced_ce"), small_dense, dtr),
        torch.tensor((total - pos) / total, dtype=torch.float32),
    )
    assert resolve_alpha(LossSpec("focal", gamma=2.0), small_dense, dtr) == 0.25
    # binary: positive share
    rows = "a,target\n" + "\n".join(f"{i},{int(i % 5 == 0)}" for i in range(40))
    b = load_data(_write(tmp_path, "b.csv", rows))
    btr = np.arange(40)
    assert resolve_alpha(LossSpec("balanced_ce"), b, btr) == pytest.approx(32 / 40)


def test_compute_loss_matches_torch():
    torch.manual_seed(0)
    x = torch.randn(8, 1)
    y = torch.randint(0, 2, (8,))
    torch.testing.assert_close(
        compute_loss("binary", x, y, alpha=None, gamma=0.0, num_classes=2),
        torch.nn.functional.binary_cross_entropy_with_logits(x[:, 0], y.float()),
    )
    x = torch.randn(8, 4)
    y = torch.randint(0, 4, (8,))
    torch.testing.assert_close(
        compute_loss("multiclass", x, y, alpha=None, gamma=0.0, num_classes=4),
        torch.nn.functional.cross_entropy(x, y),
    )
    x = torch.randn(2, 3, 4, 4)
    y = torch.full((2, 4, 4), 3)
    y[0, 1, 1], y[1, 2, 3] = 0, 2
    onehot = torch.nn.functional.one_hot(y, 4)[..., :3].permute(0, 3, 1, 2).float()
    want = torch.nn.functional.binary_cross_entropy_with_logits(x, onehot, reduction="sum") / 2
    torch.testing.assert_close(compute_loss("dense", x, y, alpha=None, gamma=0.0, num_classes=3), want)


def test_prior_bias_init(digits, small_dense):
    m = build_model(small_dense, seed=0)
    init_prior_bias(m, 0.01)
    torch.testing.assert_close(m.head.bias, torch.full((3,), fk.prior_bias(0.01)))
    m = build_model(digits, seed=0)
    init_prior_bias(m, [0.1] * 10)
    torch.testing.assert_close(m.head.bias, torch.full((10,), fk.prior_bias(0.1)))
    with pytest.raises(ValueError, match="10 outputs"):
        init_prior_bias(m, [0.1, 0.2])
    a, b = build_model(digits, seed=3), build_model(digits, seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_fit_and_score_deterministic_and_seeded(digits):
    tr, te = train_test_split(digits, seed=0)
    spec = LossSpec("focal", gamma=2.0)
    a = fit_and_score(digits, tr, te, spec, seed=0, epochs=2)
    b = fit_and_score(digits, tr, te, spec, seed=0, epochs=2)
    c = fit_and_score(digits, tr, te, spec, seed=1, epochs=2)
    for k in ("ap", "f1", "balanced_accuracy", "ece", "brier", "loss_curve"):
        assert a[k] == b[k]
    assert a["loss_curve"] != c["loss_curve"]
    assert len(a["loss_curve"]) == 2 and a["epochs"] == 2 and a["train_time"] > 0
    assert 0 <= a["ap"] <= 1 and 0 <= a["ece"] <= 1
    assert set(a["pr_curve"]) == {3, 8} and set(a["reliability"]) == {3, 8}


def test_fit_and_score_learns_dense(small_dense):
    tr, te = np.arange(30), np.arange(30, 40)
    r = fit_and_score(small_dense, tr, te, LossSpec("focal", gamma=2.0), seed=0,
                      config=TrainConfig(epochs=3, batch_size=10, lr=5e-3))
    assert r["loss_curve"][-1] < r["loss_curve"][0]
    assert r["prior"] == 0.01 and r["alpha"] == 0.25
    assert all(math.isfinite(r[k]) for k in ("ap", "f1", "ece", "brier"))


def test_on_epoch_callback_and_pruning(digits):
    tr, te = train_test_split(digits, seed=0)
    seen = []
    fit_and_score(digits, tr, te, LossSpec("ce"), epochs=3, on_epoch=lambda e, m: seen.append((e, m)))
    assert [e for e, _ in seen] == [1, 2, 3]
    assert set(seen[0][1]) == {"ap", "f1", "balanced_accuracy", "ece", "brier", "loss"}

    class Prune(Exception):
        pass

    def stop(epoch, metrics):
        if epoch == 2:
            raise Prune

    with pytest.raises(Prune):
        fit_and_score(digits, tr, te, LossSpec("ce"), epochs=5, on_epoch=stop)
    with pytest.raises(ValueError, match="epochs"):
        fit_and_score(digits, tr, te, LossSpec("ce"), epochs=0)
    with pytest.raises(TypeError, match="LossSpec"):
        fit_and_score(digits, tr, te, "ce")


def test_save_and_init_from(digits, small_dense, tmp_path):
    tr, te = train_test_split(digits, seed=0)
    path = str(tmp_path / "m.pt")
    first = fit_and_score(digits, tr, te, LossSpec("ce"), epochs=3, save=path)
    ck = load_checkpoint(path, digits)  # weights_only=True
    assert ck["meta"]["dataset"] == "digits"
    # lr = 0: the loaded model is scored unchanged, so it reproduces the saved model's metrics
    frozen = TrainConfig(epochs=1, batch_size=64, lr=0.0)
    again = fit_and_score(digits, tr, te, LossSpec("focal", gamma=2.0), init_from=path, config=frozen)
    assert again["ap"] == pytest.approx(first["ap"]) and again["brier"] == pytest.approx(first["brier"])
    scratch = fit_and_score(digits, tr, te, LossSpec("focal", gamma=2.0), config=frozen)
    assert scratch["ap"] != pytest.approx(first["ap"])
    with pytest.raises(ValueError, match="holds a model for"):
        fit_and_score(small_dense, np.arange(30), np.arange(30, 40), LossSpec("ce"), init_from=path, epochs=1)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot load"):
        load_checkpoint(str(tmp_path / "junk.pt"), digits)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a model saved by"):
        load_checkpoint(str(tmp_path / "other.pt"), digits)
    with pytest.raises(ValueError, match="no such file"):
        load_checkpoint(str(tmp_path / "missing.pt"), digits)


# ----------------------------------------------------------------------------- compare


def _summary(**rows):
    s = {}
    for name, (mean, std) in rows.items():
        s[name] = {m: {"mean": mean, "std": std, "values": []} for m in M.METRICS}
    return s


def test_verdicts_overlap_logic():
    v = C.verdicts(_summary(CE=(0.50, 0.02), focal=(0.60, 0.03)), n_seeds=3)
    assert v["ap"]["best"] == "focal" and v["ap"]["clear"] and "wins" in v["ap"]["text"]
    assert v["ece"]["best"] == "CE" and v["ece"]["clear"]  # lower is better
    v = C.verdicts(_summary(CE=(0.50, 0.06), focal=(0.60, 0.05)), n_seeds=3)
    assert v["ap"]["best"] == "focal" and not v["ap"]["clear"]
    assert v["ap"]["text"].startswith("no clear difference") and v["ap"]["ties"] == ["CE"]
    v = C.verdicts(_summary(CE=(0.50, 0.0), focal=(0.60, 0.0)), n_seeds=1)
    assert not v["ap"]["clear"] and "one seed" in v["ap"]["text"]


def test_headline_focal_vs_cross_entropy():
    specs = [LossSpec("ce"), LossSpec("balanced_ce"), LossSpec("focal", gamma=1.0), LossSpec("focal", gamma=2.0)]
    s = _summary(**{"CE": (0.50, 0.02), "balanced CE": (0.55, 0.02), "focal γ=1": (0.70, 0.03), "focal γ=2": (0.60, 0.3)})
    h = C.headline(s, specs, 3)
    assert "best focal (focal γ=1)" in h and "(balanced CE)" in h and h.endswith("focal loss helps here (the intervals do not overlap)")
    s["focal γ=1"]["ap"] = {"mean": 0.56, "std": 0.05, "values": []}
    assert C.headline(s, specs, 3).endswith("no clear difference")
    s["focal γ=1"]["ap"] = {"mean": 0.30, "std": 0.01, "values": []}
    s["focal γ=2"]["ap"] = {"mean": 0.31, "std": 0.01, "values": []}
    assert "cross-entropy is better" in C.headline(s, specs, 3)
    assert "one seed" in C.headline(s, specs, 1)
    assert C.headline(s, specs[:2], 3) == ""


def test_summarize_mean_and_sample_sd():
    runs = [{"loss": "CE", **{m: v for m in M.METRICS}} for v in (1.0, 2.0, 4.0)]
    s = C.summarize(runs, ["CE"])
    assert s["CE"]["ap"]["mean"] == pytest.approx(7 / 3)
    assert s["CE"]["ap"]["std"] == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1))


def test_config_validation_and_losses():
    cfg = C.CompareConfig(gammas=[0.5, 2.0])
    assert [s.name for s in C.build_losses(cfg)] == ["CE", "balanced CE", "focal γ=0.5", "focal γ=2"]
    for bad in (dict(seeds=[]), dict(seeds=[1, 1]), dict(losses=["mse"]), dict(gammas=[-1.0]),
                dict(prior=1.5), dict(test_fraction=0.0), dict(losses=["ce", "ce"])):
        with pytest.raises(ValueError):
            C.CompareConfig(**bad).validate()
    with pytest.raises(ValueError, match="repeat"):
        C.build_losses(C.CompareConfig(gammas=[2.0, 2.0]))


def _numbers(result):
    return [(r["loss"], r["seed"], r["ap"], r["f1"], r["brier"], r["ece"], r["loss_curve"]) for r in result["runs"]]


def test_compare_cli_end_to_end(tmp_path):
    out = tmp_path / "out"
    res = _cli("digits", "--epochs", "2", "--seeds", "2", "--gammas", "1,2", "-o", str(out), "--quiet")
    assert res.exit_code == 0, res.output
    assert "CE" in res.output and "focal γ=2" in res.output and "wrote" in res.output
    data = json.loads((out / "digits.json").read_text())
    # the command line's default gives the cross-entropy family a grid (issue 14: a fair baseline)
    names = ["CE", "balanced CE", "balanced CE inverse_sqrt", "balanced CE effective_number", "focal γ=1", "focal γ=2"]
    assert data["seeds"] == [0, 1] and len(data["runs"]) == 6 * 2
    assert list(data["summary"]) == names
    assert data["tries"] == {"cross-entropy": names[:4], "focal": names[4:]}
    assert "cross-entropy: 4 tries (CE, balanced CE, balanced CE inverse_sqrt, balanced CE effective_number)" in res.output
    assert "the cross-entropy family got fewer tries" not in res.output
    assert set(data["verdicts"]) == set(M.METRICS)
    assert data["config"]["gammas"] == [1.0, 2.0] and data["dataset"]["rare_classes"] == [3, 8]
    for r in data["runs"]:
        assert all(k in r for k in ("ap", "f1", "balanced_accuracy", "ece", "brier", "train_time", "loss_curve"))
    html = (out / "digits.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert not re.search(r"""(src|href)=["']?https?:""", html)  # self-contained
    assert "focal γ=2" in html and data["verdicts"]["ap"]["text"].split(":")[0] in html
    assert data["headline"].startswith("best focal") and "Answer:" in html
    assert "Tries per family" in html and "focal loss got fewer tries (2) than the cross-entropy family (4)" in html
    # the same command gives the same numbers
    res2 = _cli("digits", "--epochs", "2", "--seeds", "2", "--gammas", "1,2", "-o", str(tmp_path / "o2"), "-q")
    assert res2.exit_code == 0
    assert _numbers(json.loads((tmp_path / "o2" / "digits.json").read_text())) == _numbers(data)


def test_compare_cli_csv_save_and_init_from(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 1.6).astype(int)
    rows = ["f0,f1,f2,f3,target"] + [",".join(f"{v:.4f}" for v in x) + f",{t}" for x, t in zip(X, y)]
    csv = _write(tmp_path, "mine.csv", "\n".join(rows))
    save = tmp_path / "models"
    res = _cli(csv, "--losses", "ce,focal", "--gammas", "2", "--seeds", "1", "--epochs", "3",
               "-o", str(tmp_path / "o"), "--save", str(save), "--no-html", "-q")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o" / "mine.json").read_text())
    assert data["dataset"]["task"] == "binary" and "one seed" in data["verdicts"]["ap"]["text"]
    assert not (tmp_path / "o" / "mine.html").exists()
    saved = sorted(os.listdir(save))
    assert saved == ["mine.csv-ce-seed0.pt", "mine.csv-focal-gamma-2-seed0.pt"]
    res = _cli(csv, "--losses", "focal", "--gammas", "2", "--seeds", "2", "--epochs", "1",
               "--init-from", str(save / saved[0]), "-o", str(tmp_path / "o3"), "-q")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o3" / "mine.json").read_text())
    assert any("split" in n for n in data["notes"]) and all(r["prior"] is None for r in data["runs"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["{bad}"], "column 'a' is not numeric"),
        (["{bad}", "--target", "zzz"], "no column 'zzz'"),
        (["missing.csv"], "no such file"),
        (["digits", "--gammas", "1,x"], "--gammas must be comma-separated numbers"),
        (["digits", "--losses", "ce,mse"], "losses must be"),
        (["digits", "--prior", "2"], "--prior must be"),
        (["digits", "--alpha", "0.25"], "single alpha is a sigmoid"),
        (["digits", "--init-from", "{bad}"], "cannot load"),
        (["digits", "--backend", "gpu-magic"], "--backend: unknown backend"),
        (["digits", "--device", "tpu"], "--device must be"),
    ],
)
def test_compare_cli_errors_without_traceback(tmp_path, args, message):
    bad = _write(tmp_path, "bad.csv", "a,target\n1,0\nfoo,1\n2,1\n")
    args = [a.replace("{bad}", bad) for a in args]
    res = runner.invoke(_app(), ["compare", *args, "-o", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_compare_cli_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the output directory should be
    res = runner.invoke(_app(), ["compare", "digits", "--losses", "ce", "--seeds", "1", "--epochs", "1",
                                 "-o", str(blocker / "sub"), "-q"])
    # found before any training (issue 12), one line, bad-input exit code
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "--out" in res.output and "is a file" in " ".join(res.output.split())


def test_compare_cli_backend_option(tmp_path):
    res = _cli("digits", "--losses", "focal", "--gammas", "2", "--seeds", "1", "--epochs", "1",
               "--backend", "reference", "-o", str(tmp_path), "-q")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "digits.json").read_text())["environment"]["backend"] == "reference"
    assert fk.get_backend() == "auto"  # the command does not leak its backend choice


def test_compare_cli_dense_smoke(tmp_path):
    res = _cli("dense", "--losses", "ce,focal", "--gammas", "2", "--seeds", "1", "--epochs", "1",
               "-o", str(tmp_path), "-q")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "dense.json").read_text())
    assert data["dataset"]["task"] == "dense" and data["train_config"]["prior"] == "auto"
    assert [r["prior"] for r in data["runs"]] == [0.01, 0.01]
    assert (tmp_path / "dense.html").exists()


def test_registered_in_focalkit_cli():
    from focalkit.tools import cli

    names = [c.name or c.callback.__name__ for c in cli.app.registered_commands]
    assert "compare" in names


@pytest.mark.parametrize("module", ["data", "metrics", "models", "train", "compare"])
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"focalkit.tools.experiments.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
