"""A negative Poly-1 epsilon with alpha: the loss is computed as asked, with a warning where it
rewards wrong predictions (alpha_t + epsilon < 0; measured in `focalkit compare`: AP 0.000)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import focalkit as fk
from focalkit.testing import reference


def _no_warning(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


def test_sigmoid_default_alpha_with_epsilon_minus_one_warns_and_the_loss_really_falls_as_p_t_falls() -> None:
    t = torch.zeros(2)
    x = torch.tensor([-3.0, -1.0])  # p_t = 0.95, then 0.73 for a negative (alpha_t = 0.75)
    with pytest.warns(UserWarning, match="alpha_t \\+ epsilon < 0"):
        loss = fk.sigmoid_focal_loss(x, t, epsilon=-1.0, reduction="none")
    want = reference.sigmoid_focal_loss(x.double().numpy(), t.double().numpy(), alpha=0.25, gamma=2.0,
                                        epsilon=-1.0, reduction="none")
    np.testing.assert_allclose(loss.numpy(), want, rtol=1e-5, atol=1e-7)
    assert loss[1] < loss[0] < 0  # the warning's claim: a worse prediction, a lower loss


@pytest.mark.parametrize("alpha, epsilon", [(None, -1.0), (0.5, -0.5), (0.25, 0.5), (0.25, -0.25)])
def test_sigmoid_no_warning_where_alpha_t_plus_epsilon_is_non_negative(alpha, epsilon) -> None:
    x, t = torch.randn(4, 3), (torch.rand(4, 3) > 0.5).float()
    loss = _no_warning(lambda: fk.sigmoid_focal_loss(x, t, alpha=alpha, epsilon=epsilon, reduction="none"))
    assert (loss >= -1e-7).all()


def test_softmax_per_class_alpha_warns_on_its_smallest_class_weight() -> None:
    x, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
    with pytest.warns(UserWarning, match="as low as 0.2"):
        fk.softmax_focal_loss(x, y, alpha=[0.2, 1.0, 1.0], epsilon=-0.5)
    _no_warning(lambda: fk.softmax_focal_loss(x, y, alpha=[0.5, 1.0, 1.0], epsilon=-0.5))
    _no_warning(lambda: fk.softmax_focal_loss(x, y, epsilon=-1.0))
