"""Bad input gets a clear ValueError/TypeError that names the argument."""

from __future__ import annotations

import pytest
import torch

import focalkit as fk

X = torch.randn(4, 3)
T = torch.rand(4, 3)
Y = torch.randint(0, 3, (4,))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: fk.sigmoid_focal_loss(X.long(), T), TypeError, "logits must be a floating-point"),
        (lambda: fk.sigmoid_focal_loss(X.numpy(), T), TypeError, "logits must be a torch.Tensor"),
        (lambda: fk.sigmoid_focal_loss(X, T.numpy()), TypeError, "targets must be a torch.Tensor"),
        (lambda: fk.sigmoid_focal_loss(X, torch.rand(4, 2)), ValueError, "targets of shape"),
        (lambda: fk.sigmoid_focal_loss(X, T * 3), ValueError, r"must be in \[0, 1\]"),
        (lambda: fk.sigmoid_focal_loss(X, T - 1), ValueError, r"must be in \[0, 1\]"),
        (lambda: fk.sigmoid_focal_loss(X, torch.full((4,), 4)), ValueError, "class-index targets must be in"),
        (lambda: fk.sigmoid_focal_loss(X, torch.full((4,), -2)), ValueError, "class-index targets"),
        (lambda: fk.sigmoid_focal_loss(X, torch.rand(4)), TypeError, "must hold integer class indices"),
        (lambda: fk.sigmoid_focal_loss(X, torch.full((4, 3), 2)), ValueError, "0/1 labels"),
        (lambda: fk.sigmoid_focal_loss(X, T, gamma=-1.0), ValueError, "gamma must be"),
        (lambda: fk.sigmoid_focal_loss(X, T, gamma=float("nan")), ValueError, "gamma must be"),
        (lambda: fk.sigmoid_focal_loss(X, T, gamma="2"), TypeError, "gamma must be a real number"),
        (lambda: fk.sigmoid_focal_loss(X, T, alpha=1.5), ValueError, r"alpha must be in \[0, 1\]"),
        (lambda: fk.sigmoid_focal_loss(X, T, alpha=-0.1), ValueError, r"alpha must be in \[0, 1\]"),
        (lambda: fk.sigmoid_focal_loss(X, T, alpha=torch.tensor([0.5, 2.0, 0.1])), ValueError, "alpha values"),
        (lambda: fk.sigmoid_focal_loss(X, T, alpha=torch.ones(5)), ValueError, "alpha of shape"),
        (lambda: fk.sigmoid_focal_loss(X, T, reduction="avg"), ValueError, "reduction must be one of"),
        (lambda: fk.sigmoid_focal_loss(X, T, label_smoothing=1.5), ValueError, "label_smoothing"),
        (lambda: fk.sigmoid_focal_loss(X, T, weight=torch.ones(5)), ValueError, "weight of shape"),
        (lambda: fk.sigmoid_focal_loss(X, T, weight=-torch.ones(4, 3)), ValueError, "weight must be finite and non-negative"),
        (lambda: fk.sigmoid_focal_loss(X, T, weight=[1.0]), TypeError, "weight must be a torch.Tensor"),
        (lambda: fk.sigmoid_focal_loss(X, T, normalizer=-1), ValueError, "normalizer must be"),
        (lambda: fk.sigmoid_focal_loss(X, T, normalizer=torch.ones(2)), ValueError, "normalizer must be"),
        (lambda: fk.sigmoid_focal_loss(X, T, normalizer=2.0, reduction="none"), ValueError, "normalizer"),
        (lambda: fk.sigmoid_focal_loss(X, T, ignore_index=1.5), TypeError, "ignore_index"),
        (lambda: fk.softmax_focal_loss(X, Y, alpha=0.25), TypeError, "only rescale the loss"),
        (lambda: fk.softmax_focal_loss(X, Y, alpha=[1.0, 2.0]), ValueError, "length C = 3"),
        (lambda: fk.softmax_focal_loss(X, Y, alpha=[1.0, -2.0, 1.0]), ValueError, "alpha values"),
        (lambda: fk.softmax_focal_loss(X, torch.full((4,), 3)), ValueError, r"must be in \[0, 2\]"),
        (lambda: fk.softmax_focal_loss(X, torch.full((4,), -5)), ValueError, "class-index targets"),
        (lambda: fk.softmax_focal_loss(X, Y.float()), TypeError, "must be an integer tensor"),
        (lambda: fk.softmax_focal_loss(X, torch.rand(4, 3) * 2), ValueError, "probability targets"),
        (lambda: fk.softmax_focal_loss(X, torch.randint(0, 3, (5,))), ValueError, "targets of shape"),
        (lambda: fk.softmax_focal_loss(torch.randn(4), Y), ValueError, r"must be \(N, C\)"),
        (lambda: fk.softmax_focal_loss(X, Y, ignore_index=None), TypeError, "ignore_index"),
        (lambda: fk.softmax_focal_loss(X, Y, weight=torch.ones(4, 3)), ValueError, "weight of shape"),
        (lambda: fk.softmax_focal_loss(X, Y, reduction=None), ValueError, "reduction"),
        (lambda: fk.softmax_focal_loss(X.half().long(), Y), TypeError, "floating-point"),
    ],
)
def test_bad_input_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_validate_args_false_skips_value_checks_but_not_shape_checks():
    # out-of-range values are not read (no host sync) ...
    fk.sigmoid_focal_loss(X, T * 3, validate_args=False)
    # ... but shapes are always checked
    with pytest.raises(ValueError, match="targets of shape"):
        fk.sigmoid_focal_loss(X, torch.rand(4, 2), validate_args=False)


def test_ignore_index_values_are_exempt_from_range_checks():
    y = torch.tensor([0, 255, 2, 255])
    fk.softmax_focal_loss(X, y, ignore_index=255)
    fk.sigmoid_focal_loss(X, y, ignore_index=255)
    fk.sigmoid_focal_loss(X, torch.where(T > 0.5, -1.0, T), ignore_index=-1)


def test_module_constructor_checks():
    with pytest.raises(ValueError, match="gamma"):
        fk.SigmoidFocalLoss(gamma=-2)
    with pytest.raises(ValueError, match="alpha"):
        fk.SigmoidFocalLoss(alpha=2.0)
    with pytest.raises(TypeError, match="only rescale"):
        fk.SoftmaxFocalLoss(alpha=0.5)
    with pytest.raises(ValueError, match="reduction"):
        fk.SoftmaxFocalLoss(reduction="batchmean")
    with pytest.raises(ValueError, match="mode must be one of"):
        fk.FocalLoss(mode="multi-class")
    with pytest.raises(TypeError, match="weight"):
        fk.SigmoidFocalLoss(weight=[1.0, 2.0])


def test_backend_selection_errors():
    with pytest.raises(ValueError, match="unknown backend"):
        fk.set_backend("cuda-magic")
    with pytest.raises(TypeError, match="backend must be a string"):
        fk.set_backend(3)
