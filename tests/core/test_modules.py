"""nn.Module wrappers, class weights, the prior bias and the positive count."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

import focalkit as fk


def test_modules_equal_functions():
    x = torch.randn(6, 4, 3)
    y = torch.randint(0, 4, (6, 3))
    a = torch.tensor([0.5, 1.0, 2.0, 1.0])
    crit = fk.SoftmaxFocalLoss(alpha=a, gamma=1.5, ignore_index=-1, label_smoothing=0.05)
    torch.testing.assert_close(
        crit(x, y), fk.softmax_focal_loss(x, y, alpha=a, gamma=1.5, ignore_index=-1, label_smoothing=0.05)
    )
    t = torch.rand(6, 4, 3)
    sig = fk.SigmoidFocalLoss(alpha=0.3, gamma=1.0, reduction="sum")
    torch.testing.assert_close(sig(x, t), fk.sigmoid_focal_loss(x, t, alpha=0.3, gamma=1.0, reduction="sum"))


def test_forward_does_not_mutate_and_alpha_is_a_buffer():
    a = [0.2, 0.3, 0.5]
    crit = fk.SoftmaxFocalLoss(alpha=a)
    x, y = torch.randn(5, 3), torch.randint(0, 3, (5,))
    first = crit(x, y)
    second = crit(x, y)
    torch.testing.assert_close(first, second)
    assert "alpha" in crit.state_dict()
    torch.testing.assert_close(crit.alpha, torch.tensor(a))
    crit64 = crit.to(torch.float64)
    assert crit64.alpha.dtype == torch.float64
    buf = io.BytesIO()
    torch.save(crit.state_dict(), buf)
    buf.seek(0)
    fresh = fk.SoftmaxFocalLoss(alpha=[1.0, 1.0, 1.0])
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(fresh(x, y), first)


def test_per_call_weight_and_normalizer_override_constructor():
    x, t = torch.randn(4, 2), (torch.rand(4, 2) > 0.5).float()
    crit = fk.SigmoidFocalLoss(weight=torch.full((4, 2), 2.0), normalizer=2.0)
    base = fk.sigmoid_focal_loss(x, t, reduction="sum")
    torch.testing.assert_close(crit(x, t), base * 2 / 2)
    torch.testing.assert_close(crit(x, t, weight=torch.ones(4, 2), normalizer=4), base / 4)


def test_focal_loss_modes():
    x = torch.randn(8, 1)
    t = torch.randint(0, 2, (8,))
    binary = fk.FocalLoss("binary", gamma=2.0)
    torch.testing.assert_close(binary(x, t), fk.sigmoid_focal_loss(x, t.unsqueeze(1)))
    xm, tm = torch.randn(8, 5), (torch.rand(8, 5) > 0.7).float()
    torch.testing.assert_close(fk.FocalLoss("multilabel")(xm, tm), fk.sigmoid_focal_loss(xm, tm))
    ym = torch.randint(0, 5, (8,))
    torch.testing.assert_close(fk.FocalLoss("multiclass")(xm, ym), fk.softmax_focal_loss(xm, ym))
    seg = torch.randn(2, 1, 4, 4)
    mask = torch.randint(0, 2, (2, 4, 4))
    torch.testing.assert_close(fk.FocalLoss("binary")(seg, mask), fk.sigmoid_focal_loss(seg, mask.unsqueeze(1)))
    assert "binary" in repr(binary) and "gamma=2.0" in repr(binary)


def test_module_in_training_loop_decreases_loss():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    torch.nn.init.constant_(model.bias, fk.prior_bias(0.01))
    crit = fk.SigmoidFocalLoss()
    opt = torch.optim.SGD(model.parameters(), lr=2.0)
    x = torch.randn(64, 4)
    y = (x[:, :3] > 1).float()
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:]))  # a smooth loss: monotone at this lr


# ---------------------------------------------------------------- class_weights / prior_bias / num_positives


def test_class_weights_methods():
    counts = [900, 90, 10]
    n = np.array(counts, dtype=np.float64)
    for method, raw in (
        ("inverse", 1 / n),
        ("inverse_sqrt", 1 / np.sqrt(n)),
        ("effective_number", (1 - 0.99) / (1 - 0.99**n)),
    ):
        w = fk.class_weights(counts, method=method, beta=0.99)
        assert w.dtype == torch.float32 and w.shape == (3,)
        np.testing.assert_allclose(w.numpy(), raw * 3 / raw.sum(), rtol=1e-6)
        assert w.sum().item() == pytest.approx(3.0)
    torch.testing.assert_close(fk.class_weights(torch.tensor(counts)), fk.class_weights(np.array(counts)))
    # effective number tends to inverse frequency as beta -> 1 and to uniform as beta -> 0
    np.testing.assert_allclose(fk.class_weights(counts, "effective_number", beta=0.0).numpy(), [1, 1, 1], rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"counts": [10, 0, 5]}, ValueError, "zero"),
        ({"counts": [10, -1]}, ValueError, "non-negative"),
        ({"counts": []}, ValueError, "non-empty"),
        ({"counts": [[1, 2]]}, ValueError, "1-D"),
        ({"counts": ["a", "b"]}, TypeError, "counts"),
        ({"counts": [1, 2], "method": "log"}, ValueError, "method must be one of"),
        ({"counts": [1, 2], "method": "effective_number", "beta": 1.0}, ValueError, "beta"),
    ],
)
def test_class_weights_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fk.class_weights(**kwargs)


def test_prior_bias():
    assert fk.prior_bias(0.01) == pytest.approx(-math.log(99))
    assert torch.sigmoid(torch.tensor(fk.prior_bias(0.2))).item() == pytest.approx(0.2, rel=1e-6)
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="pi must be in"):
            fk.prior_bias(bad)
    with pytest.raises(TypeError, match="pi"):
        fk.prior_bias("0.01")


def test_num_positives_single_process():
    labels = torch.tensor([[3, 0, 3], [1, 3, -1]])
    assert fk.num_positives(labels, 3, ignore_index=-1).item() == 2.0
    mask = torch.tensor([[0.0, 1.0], [1.0, -1.0]])
    assert fk.num_positives(mask, ignore_index=-1).item() == 2.0
    assert fk.num_positives(torch.zeros(0, dtype=torch.long), 5).item() == 0.0
    with pytest.raises(ValueError, match="num_classes"):
        fk.num_positives(labels, 0)
    with pytest.raises(TypeError, match="targets"):
        fk.num_positives([1, 2])
    with pytest.raises(TypeError, match="integer class indices"):
        fk.num_positives(mask, 3)


def test_backend_context_and_listing():
    assert fk.get_backend() in fk.available_backends() + ["auto"]
    names = fk.available_backends()
    assert names[:2] == ["reference", "eager"]
    with fk.use_backend("eager"):
        assert fk.get_backend() == "eager"
        with fk.use_backend("reference"):
            assert fk.get_backend() == "reference"
        assert fk.get_backend() == "eager"
