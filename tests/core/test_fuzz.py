"""The fuzz campaign (focalkit.testing.fuzz): a seeded subset on every backend, and the harness itself.

The full campaign is ``make fuzz`` (10,000 cases, docs/fuzz.md); here 160 cases run in four chunks
(one xdist worker each) in well under a minute. The harness is tested too: it must catch a loss that
is wrong (a mutant), its generator must reach every corner it claims, its known issues must still
reproduce (an entry whose bug is fixed must go), and the float64 reference it trusts must be exact
where the campaign leans on it (confident predictions).
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch

import focalkit as fk
from focalkit.testing import fuzz, reference as R
from focalkit.testing.fuzz import campaign, check, known, registry
from focalkit.testing.fuzz.cases import FLOAT_DTYPES

SEED = 20260412
CHUNKS = 4
PER_CHUNK = 40
LOSSES = sorted(registry.LOSSES)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_seeded_subset_passes_on_every_backend(chunk: int) -> None:
    active, _ = known.active_known_issues()
    indices = range(chunk * PER_CHUNK, (chunk + 1) * PER_CHUNK)
    outcomes, errors = campaign.run_cases(
        SEED, indices, losses=LOSSES, backends=fk.available_backends(), known=active
    )
    assert not errors, errors
    report = campaign.Report(seed=SEED, cases=PER_CHUNK, losses=tuple(LOSSES),
                             backends=tuple(fk.available_backends()), device="cpu", outcomes=outcomes,
                             known=tuple(k.name for k in active))
    assert report.ok, campaign.summary(report)
    assert len(outcomes) == PER_CHUNK * len(fk.available_backends())


@pytest.mark.parametrize("issue", known.KNOWN_ISSUES, ids=lambda k: k.name)
def test_every_known_issue_still_reproduces(issue: known.KnownIssue) -> None:
    assert issue.ref and issue.summary
    assert issue.repro(), (
        f"known issue {issue.name} ({issue.ref}) no longer reproduces: it is fixed, so the campaign "
        "already checks its cases again; delete its entry from src/focalkit/testing/fuzz/known.py"
    )


def _mutant(name: str, wrap) -> registry.LossSpec:
    base = registry.LOSSES[name]
    return dataclasses.replace(base, name=f"mutant_{name}", function=wrap(base.function), focal_modes=None,
                               module=lambda **kw: (lambda x, t, **k: wrap(base.function)(x, t, **kw, **k)))


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g * 1.001


def _gamma_off(f):
    def g(x, t, **kw):  # the loss's exponent (gamma; ASL's gamma_neg; QFL's beta) a little off
        name = next(k for k in ("gamma", "gamma_neg", "beta") if k in kw)
        return f(x, t, **{**kw, name: kw[name] * 1.01 + 0.01})
    return g


def _nan_for_large(f):
    def g(x, t, **kw):
        out = f(x, t, **kw)
        return torch.where(x.detach().abs().amax() > 50, out * float("nan"), out) if x.numel() else out
    return g


def _grad_off(f):
    return lambda x, t, **kw: f(_ScaleGrad.apply(x), t, **kw)


def _ignores_nothing(f):
    return lambda x, t, **kw: f(x, t, **{**kw, "ignore_index": None if kw.get("ignore_index") is None else -12345})


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize(("mutation", "checks"), [
    (_gamma_off, {"loss", "grad"}),
    (_nan_for_large, {"loss-nonfinite", "grad-nonfinite"}),
    (_grad_off, {"grad"}),
    (_ignores_nothing, {"loss", "grad", "exception"}),
], ids=["gamma-off", "nan", "grad-off", "ignore-index-ignored"])
def test_the_campaign_catches_a_wrong_loss(monkeypatch: pytest.MonkeyPatch, loss, mutation, checks) -> None:
    spec = _mutant(loss, mutation)
    monkeypatch.setitem(registry.LOSSES, spec.name, spec)
    seen: Counter[str] = Counter()
    for i in range(60):  # until caught: a handful of cases suffice
        outcomes, errors = campaign.run_cases(3, [i], losses=[spec.name], backends=["eager"],
                                              dtypes=(torch.float64, torch.float32))
        assert not errors
        seen.update(f.check for o in outcomes for f in o.failures)
        if set(seen) & checks:
            break
    assert set(seen) & checks, seen


def test_the_generator_reaches_every_corner_it_claims_and_is_deterministic() -> None:
    cases = [campaign.case_at(7, i, LOSSES) for i in range(600)]
    seen: dict[str, Counter] = {k: Counter() for k in ("dtype", "shape", "layout", "form", "api", "reduction",
                                                       "alpha", "extra")}
    for c in cases:
        kw = c.kwargs
        seen["dtype"][c.dtype] += 1
        seen["shape"][c.tags["shape"]] += 1
        seen["layout"][c.layout] += 1
        seen["form"][c.target_form] += 1
        seen["api"][c.api.split(":")[0]] += 1
        seen["reduction"][kw["reduction"]] += 1
        if c.loss in ("sigmoid_focal", "softmax_focal"):
            a = kw["alpha"]
            seen["alpha"]["none" if a is None else "float" if isinstance(a, float) else "per-class"] += 1
        extra = seen["extra"]
        extra["weight"] += kw["weight"] is not None
        extra["normalizer"] += kw["normalizer"] is not None
        extra["ignore"] += c.kwargs["ignore_index"] not in (None, -100)
        extra["smoothing"] += kw.get("label_smoothing", 0) > 0
        extra["gamma>5"] += kw.get("gamma", 0) > 5
        extra["gamma0"] += kw.get("gamma") == 0
        extra["epsilon=-1"] += kw.get("epsilon") == -1.0
        extra["asl clip 0, gamma_neg 0"] += kw.get("clip") == 0 and kw.get("gamma_neg") == 0
        extra["vfl q 0 and 1"] += c.loss == "varifocal" and c.target_form in ("hard", "mask")
        extra["nonfinite"] += c.nonfinite is not None
        extra["1e4"] += bool(c.logits.numel()) and float(c.logits.double().abs().max()) >= 1e4
        extra["empty"] += c.logits.numel() == 0
        extra["5d"] += c.logits.dim() == 5
        extra["loss-scale"] += c.grad_output.dim() == 0 and float(c.grad_output) == 2.0**15
        extra["wide-uint8"] += c.targets.dtype == torch.uint8 and c.num_classes > 156
        extra["non-contiguous targets"] += c.target_layout != "contiguous"
        extra["focal"] += c.api.startswith("focal")
        extra["confident"] += c.tags["logits"] == "confident"
    assert set(seen["dtype"]) == set(FLOAT_DTYPES)
    assert {"0d", "1d", "2d", "3d", "4d", "5d", "empty", "wide"} <= set(seen["shape"])
    assert {"contiguous", "strided", "transposed", "expanded", "channels_last"} <= set(seen["layout"])
    assert {"hard", "soft", "mask", "index", "squeezed", "prob"} <= set(seen["form"])
    assert set(seen["api"]) == {"function", "module", "focal"}
    assert set(seen["reduction"]) == {"none", "mean", "sum"}
    assert set(seen["alpha"]) == {"none", "float", "per-class"}
    assert min(seen["extra"].values()) > 0, seen["extra"]
    again = campaign.case_at(7, 123, LOSSES)
    assert again.describe() == cases[123].describe()
    assert torch.equal(again.logits, cases[123].logits) and torch.equal(again.targets, cases[123].targets)


def test_compare_is_normwise_expects_inf_beyond_the_range_and_flags_nan() -> None:
    f16 = torch.float16
    err, problem, _ = check.compare(torch.tensor([1.0, 2e-4]), np.array([1.0, 1e-4]), torch.float32, 1e-5, 1e-25)
    assert problem and err == pytest.approx(1e-4)
    assert check.compare(torch.tensor([1.0, 2e-4]), np.array([1.0, 2e-4 + 1e-7]), torch.float32, 1e-5, 1e-25)[1] is None
    assert "non-finite" in check.compare(torch.tensor([float("nan")]), np.array([1.0]), torch.float32, 1e-5, 0)[1]
    # a float16 sum of 70000: inf is the right answer, a finite one is not
    assert check.compare(torch.tensor([float("inf")], dtype=f16), np.array([7e4]), f16, 2e-3, 6e-5)[1] is None
    assert "beyond" in check.compare(torch.tensor([65504.0], dtype=f16), np.array([7e4]), f16, 2e-3, 6e-5)[1]
    # half against its float32 twin: one rounding is fine, a flushed subnormal is not
    twin = torch.tensor([0.1, 3e-7, 1000.0])
    assert check.compare_half(twin.half(), twin)[1] is None
    worst, problem = check.compare_half(torch.tensor([0.1, 0.0, 1000.0], dtype=f16), twin)
    assert "flushed" in problem and worst > 1
    assert check.compare_half(torch.tensor([0.1, 3e-7, 1001.0], dtype=f16), twin)[1]


def test_the_reference_is_exact_for_confident_predictions() -> None:
    # the campaign compares small losses relative to themselves: 1 - p_t must not cancel
    for x, gamma in [(30.0, 2.0), (17.0, 0.5), (40.0, 1.0)]:
        q = math.exp(-x) / (1 + math.exp(-x))  # 1 - sigmoid(x), exact to rounding
        want = 0.25 * q**gamma * math.log1p(math.exp(-x))
        got = float(R.sigmoid_focal_loss(np.array([x]), np.array([1.0]), gamma=gamma, reduction="sum"))
        assert got == pytest.approx(want, rel=1e-13)
        want_sm = q**gamma * math.log1p(math.exp(-x))  # two classes [x, 0]: p_0 = sigmoid(x)
        got_sm = float(R.softmax_focal_loss(np.array([[x, 0.0]]), np.array([0]), gamma=gamma, reduction="sum"))
        assert got_sm == pytest.approx(want_sm, rel=1e-13)
    # an absolute step keeps the finite differences right where all logits are 1e4 apart by O(1)
    x = 1e4 + np.array([[0.3, -0.2, 0.1]])
    g_abs = R.softmax_focal_grad(x, np.array([0]), step=1e-3, gamma=2.0, reduction="sum")
    g_zero = R.softmax_focal_grad(x - 1e4, np.array([0]), gamma=2.0, reduction="sum")
    np.testing.assert_allclose(g_abs, g_zero, rtol=1e-7, atol=1e-10)


def test_tolerances_say_why() -> None:
    assert set(check.TOLERANCES) == set(FLOAT_DTYPES)
    for dtype, tol in check.TOLERANCES.items():
        assert tol.why and 0 < tol.loss < 0.05 and 0 < tol.grad < 0.05
        assert tol.loss >= torch.finfo(dtype).eps / 2 or dtype == torch.float64


def test_command_line_runs_a_campaign_and_replays_a_case() -> None:
    run = subprocess.run([sys.executable, "-m", "focalkit.testing.fuzz", "--cases", "4", "--seed", "5",
                          "--backends", "reference,eager", "--jobs", "1"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 cases x 2 backends" in run.stdout and "evaluations 8" in run.stdout
    assert run.stdout.rstrip().splitlines()[-2] == "PASS"
    replay = subprocess.run([sys.executable, "-m", "focalkit.testing.fuzz", "--seed", "5", "--replay", "3",
                             "--backends", "eager"], capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0 and replay.stdout.startswith("case 3 (seed 5)"), replay.stdout + replay.stderr
    bad = subprocess.run([sys.executable, "-m", "focalkit.testing.fuzz", "--losses", "nope"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown loss 'nope'" in bad.stderr


def test_doctests() -> None:
    import doctest

    for mod in (fuzz, registry, campaign):
        failed, attempted = doctest.testmod(mod)
        assert failed == 0 and attempted >= 1, mod.__name__
