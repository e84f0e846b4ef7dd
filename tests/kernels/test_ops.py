"""The custom ops (torch.ops.focalkit.*), the dispatcher wiring and torch.compile without graph breaks."""

from __future__ import annotations

import pytest
import torch

import focalkit as fk
from focalkit import backends
from focalkit.kernels import cpu, cpu_fast, ops

needs_cpu_kernel = pytest.mark.skipif(not cpu.available(), reason="C kernel not built")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@needs_cpu_kernel
def test_ops_pass_opcheck():
    g = _gen(0)
    x = torch.randn(3, 4, 5, generator=g)
    t = torch.rand(3, 4, 5, generator=g)
    y = torch.randint(0, 5, (3, 5), generator=g)
    for reduce in (True, False):
        torch.library.opcheck(
            torch.ops.focalkit.sigmoid_focal_fwd.default,
            (x, t, False, 0.25, 2.0, None, 0.0, reduce, True),
            test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"),
        )
        torch.library.opcheck(
            torch.ops.focalkit.sigmoid_focal_fwd.default,
            (x, y, True, None, 0.5, 4, 0.1, reduce, True),
            test_utils=("test_schema", "test_faketensor"),
        )
        torch.library.opcheck(
            torch.ops.focalkit.softmax_focal_fwd.default,
            (x, y.clamp(max=3), torch.rand(4, generator=g), 2.0, -100, 0.1, reduce, True),
            test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"),
        )


@needs_cpu_kernel
@pytest.mark.parametrize("reduce", [True, False])
def test_op_grad_output_is_the_gradient_and_the_op_is_forward_only(reduce):
    """The ops return d(sum of loss)/dx; the one autograd path is the loss functions' Function."""
    from focalkit.testing import reference

    g = _gen(1)
    x = torch.randn(2, 3, 4, generator=g, requires_grad=True)
    y = torch.randint(0, 3, (2, 4), generator=g)
    loss, count, grad = ops.softmax_focal_fwd(
        x, y, alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0, reduce=reduce,
        compute_grad=True,
    )  # fmt: skip
    ref_grad = reference.softmax_focal_grad(x, y, gamma=2.0, reduction="sum")
    torch.testing.assert_close(grad.double(), torch.from_numpy(ref_grad), rtol=2e-5, atol=1e-6)
    assert count.item() == 8
    with pytest.raises(RuntimeError, match="no autograd formula"):
        (loss.sum()).backward()


def test_backends_registered():
    names = fk.available_backends()
    assert names[:2] == ["reference", "eager"]
    if cpu.available():
        assert "fused" in names
    with pytest.raises(ValueError, match="unknown backend"):
        fk.set_backend("nope")


@needs_cpu_kernel
def test_auto_picks_fused_and_falls_back_to_eager():
    from dataclasses import replace

    info = backends.CallInfo(op="sigmoid", device=torch.device("cpu"), dtype=torch.float32,
                             labels=False, soft=False, alpha="float", weight=False, reduce=True)  # fmt: skip
    assert backends.resolve(info).name == "fused"
    assert backends.resolve(replace(info, dtype=torch.float64)).name == "eager"
    assert backends.resolve(replace(info, weight=True)).name == "eager"
    assert backends.resolve(replace(info, alpha="tensor")).name == "eager"
    soft = replace(info, op="softmax", soft=True, alpha="none")  # class probabilities: the kernel
    assert backends.resolve(soft).name == "fused"
    assert backends.resolve(replace(soft, op="sigmoid")).name == "eager"
    with fk.use_backend("fused"):
        assert backends.resolve(replace(soft, weight=True)).name == "eager"
    with fk.use_backend("reference"):
        assert backends.resolve(info) is None


@needs_cpu_kernel
def test_functional_calls_reach_the_c_kernel(monkeypatch):
    calls = []
    real_sig, real_soft = cpu.sigmoid_focal_fwd, cpu.softmax_focal_fwd
    monkeypatch.setattr(cpu, "sigmoid_focal_fwd", lambda *a, **k: calls.append("sig") or real_sig(*a, **k))
    monkeypatch.setattr(cpu, "softmax_focal_fwd", lambda *a, **k: calls.append("soft") or real_soft(*a, **k))
    real_ep = cpu_fast.entry_points()  # the eager fast path's way into the same kernel

    class Recording:
        scale = real_ep.scale

        def sigmoid_dense(self, *a):
            return calls.append("sig") or real_ep.sigmoid_dense(*a)

        def softmax_labels(self, *a):
            return calls.append("soft") or real_ep.softmax_labels(*a)

    monkeypatch.setattr(cpu_fast, "entry_points", Recording)
    x = torch.randn(4, 5, requires_grad=True)
    fk.sigmoid_focal_loss(x, torch.rand(4, 5)).backward()
    fk.softmax_focal_loss(x, torch.tensor([0, 1, 2, 4])).backward()
    fk.sigmoid_focal_loss(x.double(), torch.rand(4, 5).double())  # float64: eager, not the kernel
    assert calls == ["sig", "soft"]


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(6, 4)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = self.lin(x)
        a = fk.sigmoid_focal_loss(z, t, validate_args=False)
        b = fk.softmax_focal_loss(z, y, alpha=[1.0, 2.0, 0.5, 1.0], validate_args=False)
        return a + b


@needs_cpu_kernel
def test_torch_compile_fullgraph_no_graph_break(monkeypatch):
    torch._dynamo.reset()
    g = _gen(2)
    model = _Tiny()
    x, t = torch.randn(16, 6, generator=g), (torch.rand(16, 4, generator=g) < 0.3).float()
    y = torch.randint(0, 4, (16,), generator=g)
    with fk.use_backend("eager"):
        ref = model(x, t, y)
        ref.backward()
    want = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    calls = []
    real = cpu.softmax_focal_fwd
    monkeypatch.setattr(cpu, "softmax_focal_fwd", lambda *a, **k: calls.append(1) or real(*a, **k))
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with fk.use_backend("fused"):
        out = compiled(x, t, y)
        out.backward()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for p, w in zip(model.parameters(), want):
        torch.testing.assert_close(p.grad, w, rtol=1e-5, atol=1e-6)
    assert calls, "the compiled graph did not run focalkit's kernel"
    torch._dynamo.reset()


@pytest.mark.slow
def test_benchmark_quick_smoke(tmp_path):
    """benchmarks/bench.py --quick runs end to end and writes its JSON (a smoke test, not a timing)."""
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run(
        [sys.executable, os.path.join(root, "benchmarks", "bench.py"), "--quick", "--only",
         "classification,labels", "--repeats", "1", "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(out.read_text())
    methods = {(x["case"], x["method"]) for x in data["results"]}
    assert ("classification", "CE baseline: cross_entropy") in methods
    assert ("detection labels", "focalkit eager") in methods
    for x in data["results"]:
        if not x["note"].startswith("failed"):
            assert x["ms"] > 0 and x["peak_mb"] is not None
    base = [x for x in data["results"] if x["note"] == "baseline"]
    assert all(abs(x["ratio"] - 1.0) < 1e-9 for x in base)
    assert "| case |" in r.stdout


def test_bench_cli_registered_and_clear_error(tmp_path):
    pytest.importorskip("typer")
    from typer.testing import CliRunner

    from focalkit.tools.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["bench", "--help"])
    assert r.exit_code == 0 and "--quick" in r.output
    r = runner.invoke(app, ["bench", "--script", str(tmp_path / "missing.py")])
    assert r.exit_code != 0


@pytest.mark.parametrize("name", ["fused", "eager"])
def test_in_place_backward_scaling_is_safe_with_retained_graphs(name):
    """Backward scales the saved gradient in place on CPU; retained graphs and factors still add up."""
    if name not in fk.available_backends():
        pytest.skip(f"{name} not available")
    g = _gen(3)
    x = torch.randn(64, 5, generator=g, requires_grad=True)
    t = (torch.rand(64, 5, generator=g) < 0.3).float()
    with fk.use_backend(name):
        loss = fk.sigmoid_focal_loss(x, t)
        loss.backward(retain_graph=True)
        g1 = x.grad.clone()
        loss.backward(retain_graph=True)
        torch.testing.assert_close(x.grad, 2 * g1)
        x.grad = None
        (loss * 3).backward(retain_graph=True)
        torch.testing.assert_close(x.grad, 3 * g1)
        x.grad = None
        (loss * 0).backward(retain_graph=True)
        assert (x.grad == 0).all()
        x.grad = None
        loss.backward()
        torch.testing.assert_close(x.grad, g1)
    xr = x.detach().double().requires_grad_()
    with fk.use_backend("reference"):
        fk.sigmoid_focal_loss(xr, t.double()).backward()
    torch.testing.assert_close(g1.double(), xr.grad, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["cpu", "ops", "package"])
def test_docstring_examples(name):
    """The kernel modules' examples run; those that need the C kernel skip, visibly, without it."""
    import doctest

    import focalkit.kernels as kernels_pkg

    mod = {"cpu": cpu, "ops": ops, "package": kernels_pkg}[name]
    if name in ("cpu", "ops") and not cpu.available():
        pytest.skip(f"the example of focalkit.kernels.{name} needs the C kernel: {cpu.load_error()}")
    failed, attempted = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failed == 0, mod.__name__