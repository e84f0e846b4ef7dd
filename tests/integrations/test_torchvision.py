"""focalkit.integrations.torchvision and docs/integrations/torchvision.md.

torchvision's functions are compared twice: against the real torchvision where it imports (its Python
part; see integration_recipes.py for why its C++ operators are missing here), and always against stand-ins
re-typed from torchvision 0.28's source (``torchvision/ops/focal_loss.py`` and
``RetinaNetClassificationHead.compute_loss`` in ``torchvision/models/detection/retinanet.py``), fed
the inputs RetinaNet builds: per-image targets with ``labels``, ``cls_logits`` of shape
(N, anchors, classes), and ``matched_idxs`` holding a box index, -1 (background) or -2 (between
the IoU thresholds: ignored).
"""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from integration_recipes import need, run_page
from focalkit.integrations import torchvision as fktv


# ------------------------------------------------------------------ stand-ins, re-typed from torchvision 0.28


def tv_sigmoid_focal_loss(inputs, targets, alpha: float = 0.25, gamma: float = 2, reduction: str = "none"):
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


def tv_compute_loss(targets, head_outputs, matched_idxs, between_thresholds=-2):
    """``RetinaNetClassificationHead.compute_loss`` (``self.BETWEEN_THRESHOLDS`` is -2)."""
    losses = []
    cls_logits = head_outputs["cls_logits"]
    for targets_per_image, cls_logits_per_image, matched_idxs_per_image in zip(targets, cls_logits, matched_idxs):
        foreground_idxs_per_image = matched_idxs_per_image >= 0
        num_foreground = foreground_idxs_per_image.sum()
        gt_classes_target = torch.zeros_like(cls_logits_per_image)
        gt_classes_target[
            foreground_idxs_per_image,
            targets_per_image["labels"][matched_idxs_per_image[foreground_idxs_per_image]],
        ] = 1.0
        valid_idxs_per_image = matched_idxs_per_image != between_thresholds
        losses.append(
            tv_sigmoid_focal_loss(
                cls_logits_per_image[valid_idxs_per_image], gt_classes_target[valid_idxs_per_image], reduction="sum"
            )
            / max(1, num_foreground)
        )
    res = losses[0]
    for x in losses[1:]:
        res = res + x
    return res / len(targets)


def head_inputs(num_images=3, anchors=500, num_classes=6, boxes=(4, 0, 7), seed=0, dtype=torch.float32):
    """What RetinaNet hands the classification head: targets, head outputs and matched indices."""
    g = torch.Generator().manual_seed(seed)
    targets, matched = [], []
    for i in range(num_images):
        nb = boxes[i % len(boxes)]
        targets.append({"labels": torch.randint(0, num_classes, (nb,), generator=g)})
        if nb == 0:  # RetinaNet.compute_loss: an image with no boxes has every anchor background
            matched.append(torch.full((anchors,), -1, dtype=torch.int64))
            continue
        u = torch.rand(anchors, generator=g)
        m = torch.where(u < 0.85, -1, -2)  # most anchors background, some between the thresholds
        fg = u > 0.95
        m[fg] = torch.randint(0, nb, (int(fg.sum()),), generator=g)
        matched.append(m)
    logits = (torch.randn(num_images, anchors, num_classes, generator=g) * 3 - 2).to(dtype)
    return targets, {"cls_logits": logits}, matched


def import_torchvision():
    need("torchvision")
    return importlib.import_module("torchvision")


# ------------------------------------------------------------------ the drop-in


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("alpha, gamma", [(0.25, 2), (0.5, 0.5), (-1, 2), (0.9, 0), (0.25, 3.5)])
@pytest.mark.parametrize("soft", [False, True])
def test_drop_in_matches_torchvisions_formula(reduction, alpha, gamma, soft):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 7, generator=g) * 3
    t = torch.rand(5, 7, generator=g) if soft else (torch.rand(5, 7, generator=g) > 0.7).float()
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours = fktv.sigmoid_focal_loss(a, t, alpha, gamma, reduction)  # positional, as torchvision's callers
    theirs = tv_sigmoid_focal_loss(b, t, alpha, gamma, reduction)
    torch.testing.assert_close(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_drop_in_defaults_are_torchvisions():
    g = torch.Generator().manual_seed(2)
    x, t = torch.randn(4, 3, generator=g), (torch.rand(4, 3, generator=g) > 0.5).float()
    out = fktv.sigmoid_focal_loss(x, t)
    assert out.shape == x.shape  # reduction="none"
    torch.testing.assert_close(out, tv_sigmoid_focal_loss(x, t))
    torch.testing.assert_close(fktv.sigmoid_focal_loss(inputs=x, targets=t, alpha=0.25, gamma=2, reduction="none"), out)


def test_drop_in_against_real_torchvision():
    tv = import_torchvision()
    g = torch.Generator().manual_seed(3)
    x, t = torch.randn(6, 4, generator=g) * 4, torch.rand(6, 4, generator=g)
    for args in [(), (0.25, 2, "sum"), (-1, 1, "mean"), (0.75, 0, "none")]:
        torch.testing.assert_close(fktv.sigmoid_focal_loss(x, t, *args), tv.ops.sigmoid_focal_loss(x, t, *args))


def test_drop_in_low_precision_is_computed_in_float32():
    g = torch.Generator().manual_seed(4)
    x, t = torch.randn(64, 8, generator=g) * 6, (torch.rand(64, 8, generator=g) > 0.9).float()
    out = fktv.sigmoid_focal_loss(x.half(), t.half(), 0.25, 2, "sum")
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), tv_sigmoid_focal_loss(x.half().float(), t, 0.25, 2, "sum"), rtol=2e-3, atol=0)


@pytest.mark.parametrize("alpha", [1.5, -0.5, -2])
def test_drop_in_refuses_torchvisions_invalid_alphas(alpha):
    with pytest.raises(ValueError, match="alpha must be in \\[0, 1\\], or -1"):
        fktv.sigmoid_focal_loss(torch.zeros(2, 2), torch.zeros(2, 2), alpha)


def test_drop_in_wants_the_inputs_shape():
    with pytest.raises(ValueError, match="inputs' shape"):
        fktv.sigmoid_focal_loss(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction"):
        fktv.sigmoid_focal_loss(torch.zeros(2), torch.zeros(2), 0.25, 2, "batchmean")
    with pytest.raises(TypeError, match="alpha"):
        fktv.sigmoid_focal_loss(torch.zeros(2), torch.zeros(2), "0.25")


# ------------------------------------------------------------------ RetinaNet's classification loss


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("num_classes, boxes", [(6, (4, 0, 7)), (80, (12, 3, 1)), (1, (2, 5, 0))])
def test_classification_loss_matches_the_heads_compute_loss(seed, num_classes, boxes):
    targets, outputs, matched = head_inputs(num_classes=num_classes, boxes=boxes, seed=seed)
    a = outputs["cls_logits"].clone().requires_grad_(True)
    b = outputs["cls_logits"].clone().requires_grad_(True)
    ours = fktv.retinanet_classification_loss(targets, {"cls_logits": a}, matched)
    theirs = tv_compute_loss(targets, {"cls_logits": b}, matched)
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_classification_loss_with_other_alpha_and_gamma():
    targets, outputs, matched = head_inputs(seed=5)
    x = outputs["cls_logits"]
    for alpha, gamma in [(0.5, 1.0), (None, 0.0), (0.75, 3.0)]:
        ours = fktv.retinanet_classification_loss(targets, outputs, matched, alpha=alpha, gamma=gamma)
        expected = 0.0
        for t, xi, m in zip(targets, x, matched):
            onehot = torch.zeros_like(xi)
            fg = m >= 0
            onehot[fg, t["labels"][m[fg]]] = 1.0
            keep = m != -2
            expected += tv_sigmoid_focal_loss(xi[keep], onehot[keep], -1 if alpha is None else alpha, gamma, "sum") / max(
                1, int(fg.sum())
            )
        torch.testing.assert_close(ours, expected / len(targets))


def test_classification_loss_in_float16():
    targets, outputs, matched = head_inputs(seed=6, dtype=torch.float16)
    ours = fktv.retinanet_classification_loss(targets, outputs, matched)
    assert ours.dtype == torch.float16
    expected = tv_compute_loss(targets, {"cls_logits": outputs["cls_logits"].float()}, matched)
    torch.testing.assert_close(ours.float(), expected, rtol=2e-3, atol=0)


def test_classification_loss_refuses_mismatched_batches():
    targets, outputs, matched = head_inputs()
    with pytest.raises(ValueError, match="same images"):
        fktv.retinanet_classification_loss(targets[:2], outputs, matched)


def test_classification_loss_against_the_real_head():
    import_torchvision()
    from torchvision.models.detection.retinanet import RetinaNetClassificationHead

    torch.manual_seed(0)
    head = RetinaNetClassificationHead(in_channels=16, num_anchors=9, num_classes=5)
    features = [torch.randn(2, 16, 8, 8), torch.randn(2, 16, 4, 4)]
    logits = head(features)  # (2, 9 * (64 + 16), 5)
    targets, _, matched = head_inputs(num_images=2, anchors=logits.shape[1], num_classes=5, boxes=(3, 0))
    expected = head.compute_loss(targets, {"cls_logits": logits}, matched)
    torch.testing.assert_close(tv_compute_loss(targets, {"cls_logits": logits}, matched), expected)  # stand-in is faithful
    fktv.patch_retinanet(head)
    torch.testing.assert_close(head.compute_loss(targets, {"cls_logits": logits}, matched), expected)


# ------------------------------------------------------------------ patch_retinanet


def _fake_retinanet():
    cls_head = nn.Module()
    cls_head.compute_loss = lambda *a: "torchvision's"
    cls_head.BETWEEN_THRESHOLDS = -2
    head = nn.Module()
    head.classification_head = cls_head
    model = nn.Module()
    model.head = head
    return model, head, cls_head


@pytest.mark.parametrize("which", [0, 1, 2])
def test_patch_accepts_the_model_its_head_or_its_classification_head(which):
    parts = _fake_retinanet()
    assert fktv.patch_retinanet(parts[which], alpha=0.5, gamma=1.0) is parts[which]
    fn = parts[2].compute_loss
    assert fn.func is fktv.retinanet_classification_loss
    assert fn.keywords == {"alpha": 0.5, "gamma": 1.0, "between_thresholds": -2}
    targets, outputs, matched = head_inputs(seed=7)
    torch.testing.assert_close(
        fn(targets, outputs, matched),
        fktv.retinanet_classification_loss(targets, outputs, matched, alpha=0.5, gamma=1.0),
    )


def test_patch_refuses_other_things_and_bad_arguments():
    with pytest.raises(TypeError, match="RetinaNet"):
        fktv.patch_retinanet(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="alpha"):
        fktv.patch_retinanet(_fake_retinanet()[0], alpha=2.0)
    with pytest.raises(ValueError, match="gamma"):
        fktv.patch_retinanet(_fake_retinanet()[0], gamma=-1.0)


def test_patched_real_retinanet_gives_torchvisions_losses():
    import_torchvision()
    from collections import OrderedDict

    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    class Backbone(nn.Module):
        out_channels = 8

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, 4, 1)

        def forward(self, x):
            return OrderedDict(p=self.conv(x))

    torch.manual_seed(0)
    model = RetinaNet(Backbone(), num_classes=4, min_size=32, max_size=32,
                      anchor_generator=AnchorGenerator(sizes=((8,),), aspect_ratios=((0.5, 1.0, 2.0),)))
    images = [torch.rand(3, 32, 32) for _ in range(3)]
    targets = [{"boxes": torch.tensor([[2.0, 2.0, 12.0, 12.0], [16.0, 8.0, 30.0, 20.0]]), "labels": torch.tensor([1, 3])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
               {"boxes": torch.tensor([[5.0, 5.0, 25.0, 25.0]]), "labels": torch.tensor([0])}]
    model.train()
    expected = model(images, targets)
    fktv.patch_retinanet(model)
    got = model(images, targets)
    torch.testing.assert_close(got["classification"], expected["classification"])
    torch.testing.assert_close(got["bbox_regression"], expected["bbox_regression"])


# ------------------------------------------------------------------ the page and the docstrings


def test_page_example_trains_a_retinanet():
    import_torchvision()
    ns = run_page("torchvision")
    assert ns["classification_losses"][-1] < ns["classification_losses"][0] / 5
    assert ns["right"] >= 14


def test_docstring_examples():
    failed, attempted = doctest.testmod(fktv, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted >= 3 and failed == 0
