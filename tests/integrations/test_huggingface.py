"""docs/integrations/huggingface.md: the example, and exact gradient accumulation with num_items_in_batch."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import focalkit as fk
from integration_recipes import need, run_page


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing here may reach the network


def test_page_example_trains(tmp_path, monkeypatch):
    need("transformers")
    need("accelerate")
    monkeypatch.chdir(tmp_path)
    ns = run_page("huggingface")
    assert ns["trainer"].args.gradient_accumulation_steps == 2
    assert ns["logged"][-1] < ns["logged"][0] / 3  # the page asserts these too
    assert min(ns["recall"]) > 0.85


class _Linear(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.lin = nn.Linear(8, c)

    def forward(self, features):
        return {"logits": self.lin(features)}


class _Rows(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"features": self.x[i], "labels": self.y[i]}


def _params_after_one_step(init: nn.Module, data, loss_func, batch: int, accum: int, out) -> torch.Tensor:
    from transformers import Trainer, TrainingArguments

    model = copy.deepcopy(init)
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=batch, gradient_accumulation_steps=accum,
        max_steps=1, max_grad_norm=0.0, lr_scheduler_type="constant", save_strategy="no", report_to="none",
        use_cpu=True, disable_tqdm=True, remove_unused_columns=False, seed=0,
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.5)  # the update is proportional to the gradient
    Trainer(model=model, args=args, train_dataset=data, compute_loss_func=loss_func, optimizers=(opt, None)).train()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _softmax_case():
    g = torch.Generator().manual_seed(0)
    return 3, torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g), fk.softmax_focal_loss


def _sigmoid_case():
    g = torch.Generator().manual_seed(1)
    y = (torch.rand(16, 4, generator=g) > 0.7).float()  # multi-label 0/1 targets (N, C)
    return 4, torch.randn(16, 8, generator=g), y, fk.sigmoid_focal_loss


@pytest.mark.parametrize("case", [_softmax_case, _sigmoid_case], ids=["softmax", "sigmoid"])
def test_gradient_accumulation_is_exact_with_num_items_in_batch(case, tmp_path):
    need("transformers")
    need("accelerate")
    c, x, y, loss = case()
    torch.manual_seed(0)
    init = _Linear(c)
    p0 = torch.cat([p.detach().flatten() for p in init.parameters()])
    data = _Rows(x, y)

    def normalized(outputs, labels, num_items_in_batch=None):
        assert num_items_in_batch is not None
        return loss(outputs["logits"], labels, gamma=2.0, normalizer=num_items_in_batch)

    def plain_mean(outputs, labels, num_items_in_batch=None):
        return loss(outputs["logits"], labels, gamma=2.0)

    one_batch = _params_after_one_step(init, data, normalized, 16, 1, tmp_path / "a")
    accumulated = _params_after_one_step(init, data, normalized, 8, 2, tmp_path / "b")
    assert (one_batch - p0).abs().max() > 1e-3  # the step moved the parameters
    torch.testing.assert_close(accumulated, one_batch, rtol=0, atol=1e-6)

    # the same step computed by hand: one SGD step on the full batch's mean loss
    ref = copy.deepcopy(init)
    loss(ref(x)["logits"], y, gamma=2.0).backward()
    by_hand = torch.cat([(p - 0.5 * p.grad).detach().flatten() for p in ref.parameters()])
    torch.testing.assert_close(one_batch, by_hand, rtol=0, atol=1e-6)

    # the plain mean makes the accumulated update twice as large: what normalizer= prevents
    mean_accumulated = _params_after_one_step(init, data, plain_mean, 8, 2, tmp_path / "c")
    ratio = (mean_accumulated - p0).norm() / (one_batch - p0).norm()
    assert abs(float(ratio) - 2.0) < 0.05, float(ratio)
