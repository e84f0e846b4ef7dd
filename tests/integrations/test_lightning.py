"""docs/integrations/lightning.md: the example runs as written, in fp32 and in bf16-mixed."""

from __future__ import annotations

import pytest
import torch

from integration_recipes import need, run_page


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_page_example_trains_in_both_precisions(precision, tmp_path, monkeypatch):
    need("pytorch_lightning")
    monkeypatch.chdir(tmp_path)  # Lightning may write lightning_logs/ etc.
    ns = run_page("lightning", {'PRECISION = "bf16-mixed"': f'PRECISION = "{precision}"'})
    assert ns["trainer"].precision == precision
    assert len(ns["model"].epoch_losses) == 8
    # the example's own asserts checked that the loss fell and the predictions are right; be explicit
    assert ns["model"].epoch_losses[-1] < ns["model"].epoch_losses[0] / 2
    assert float(ns["recall"]) > 0.85 and float(ns["accuracy"]) > 0.99


def test_bf16_logits_reach_the_loss_in_bf16():
    """Under bf16 autocast the linear layer's output is bfloat16; the loss takes it as it is."""
    need("pytorch_lightning")
    import focalkit as fk

    lin = torch.nn.Linear(4, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = lin(torch.randn(8, 4)).squeeze(1)
        loss = fk.sigmoid_focal_loss(logits, torch.tensor([0.0, 1.0] * 4))
    assert logits.dtype == torch.bfloat16
    loss.float().backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()
