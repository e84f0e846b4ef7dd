"""docs/integrations/timm.md: the example, and focalkit at gamma = 0 against timm's own losses."""

from __future__ import annotations

import pytest
import torch

import focalkit as fk
from integration_recipes import need, run_page


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # pretrained=False: nothing may reach the network


def test_page_example_trains_with_mixup_cutmix():
    need("timm")
    ns = run_page("timm")
    assert ns["step"] == 29
    assert ns["loss_after"] < ns["loss_before"] / 2
    assert ns["accuracy_after"] > 0.9


def _same_loss_and_gradient(ours, theirs, logits):
    """ours(x) and theirs(x) agree, and so do their gradients with respect to the logits."""
    a, b = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    la, lb = ours(a), theirs(b)
    torch.testing.assert_close(la, lb)
    la.backward()
    lb.backward()
    torch.testing.assert_close(a.grad, b.grad)


def _mixup_targets(n: int = 16, c: int = 5, ls: float = 0.1, seed: int = 0):
    from timm.data import Mixup

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    images, y = torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, c, (n,), generator=g)
    _, soft = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=ls, num_classes=c)(images, y)
    logits = torch.randn(n, c, generator=g) * 3
    assert soft.shape == (n, c) and not torch.equal(soft, soft.round())  # really soft
    return logits, y, soft


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_target_cross_entropy_with_mixup(seed):
    need("timm")
    from timm.loss import SoftTargetCrossEntropy

    logits, _, soft = _mixup_targets(seed=seed)
    _same_loss_and_gradient(lambda x: fk.softmax_focal_loss(x, soft, gamma=0.0), lambda x: SoftTargetCrossEntropy()(x, soft), logits)


@pytest.mark.parametrize("ls", [0.0, 0.1, 0.3])
def test_label_smoothing_cross_entropy(ls):
    need("timm")
    from timm.loss import LabelSmoothingCrossEntropy

    logits, y, _ = _mixup_targets()
    _same_loss_and_gradient(
        lambda x: fk.softmax_focal_loss(x, y, gamma=0.0, label_smoothing=ls),
        lambda x: LabelSmoothingCrossEntropy(smoothing=ls)(x, y), logits,
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_cross_entropy_with_mixup_targets(seed):
    need("timm")
    from timm.loss import BinaryCrossEntropy

    logits, _, soft = _mixup_targets(seed=seed)
    _same_loss_and_gradient(
        lambda x: fk.sigmoid_focal_loss(x, soft, gamma=0.0, alpha=None), lambda x: BinaryCrossEntropy(smoothing=0.0)(x, soft), logits
    )


@pytest.mark.parametrize("ls", [0.05, 0.1, 0.4])
@pytest.mark.parametrize("c", [3, 10])
def test_binary_cross_entropy_label_smoothing_uniform_mode(ls, c):
    """timm smooths class-index targets toward 1/C: focalkit's label_smoothing_mode="uniform"."""
    need("timm")
    from timm.loss import BinaryCrossEntropy

    g = torch.Generator().manual_seed(c)
    logits, y = torch.randn(12, c, generator=g) * 2, torch.randint(0, c, (12,), generator=g)
    expected = BinaryCrossEntropy(smoothing=ls)(logits, y)
    ours = fk.sigmoid_focal_loss(logits, y, gamma=0.0, alpha=None, label_smoothing=ls, label_smoothing_mode="uniform")
    torch.testing.assert_close(ours, expected)
    module = fk.SigmoidFocalLoss(alpha=None, gamma=0.0, label_smoothing=ls, label_smoothing_mode="uniform")
    torch.testing.assert_close(module(logits, y), expected)
    # the default (toward 1/2) is a different loss unless C = 2: the test can tell them apart
    default = fk.sigmoid_focal_loss(logits, y, gamma=0.0, alpha=None, label_smoothing=ls)
    assert not torch.allclose(default, expected, rtol=1e-4, atol=0)
    _same_loss_and_gradient(
        lambda x: fk.sigmoid_focal_loss(x, y, gamma=0.0, alpha=None, label_smoothing=ls, label_smoothing_mode="uniform"),
        lambda x: BinaryCrossEntropy(smoothing=ls)(x, y), logits,
    )


def test_binary_cross_entropy_smooth_dense_is_the_default_mode():
    """timm's smooth_dense=True (multi-label targets toward 1/2) is focalkit's default smoothing."""
    need("timm")
    from timm.loss import BinaryCrossEntropy

    try:
        timm_loss = BinaryCrossEntropy(smoothing=0.2, smooth_dense=True)
    except TypeError:
        pytest.skip("this timm has no smooth_dense (added in timm 1.0.2x)")
    g = torch.Generator().manual_seed(3)
    logits, multi_hot = torch.randn(6, 4, generator=g), (torch.rand(6, 4, generator=g) > 0.6).float()
    _same_loss_and_gradient(
        lambda x: fk.sigmoid_focal_loss(x, multi_hot, gamma=0.0, alpha=None, label_smoothing=0.2),
        lambda x: timm_loss(x, multi_hot), logits,
    )


def test_sum_classes_is_a_normalizer_of_n():
    need("timm")
    from timm.loss import BinaryCrossEntropy

    logits, _, soft = _mixup_targets()
    _same_loss_and_gradient(
        lambda x: fk.sigmoid_focal_loss(x, soft, gamma=0.0, alpha=None, normalizer=x.shape[0]),
        lambda x: BinaryCrossEntropy(smoothing=0.0, sum_classes=True)(x, soft), logits,
    )
