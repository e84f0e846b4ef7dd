"""focalkit: focal loss (Lin et al. 2017, RetinaNet) done right for PyTorch.

    >>> import torch, focalkit as fk
    >>> logits = torch.randn(16, 5, requires_grad=True)
    >>> loss = fk.softmax_focal_loss(logits, torch.randint(0, 5, (16,)), gamma=2.0)
    >>> loss.backward()

The core imports only torch and numpy. The tools (:mod:`focalkit.tools`: the ``focalkit`` CLI, explain,
compare, tune) need the optional extras.
"""

from typing import Any

from focalkit.backends import available_backends, get_backend, kernel_status, set_backend, use_backend
from focalkit.distributed import num_positives
from focalkit.functional import sigmoid_focal_loss, softmax_focal_loss
from focalkit.family import asymmetric_loss, quality_focal_loss, varifocal_loss
from focalkit.gamma import FLSD53, PiecewiseGamma
from focalkit.modules import (
    AsymmetricLoss,
    FocalLoss,
    QualityFocalLoss,
    SigmoidFocalLoss,
    SoftmaxFocalLoss,
    VarifocalLoss,
)
from focalkit.weights import class_weights, prior_bias

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The tools exported on the package (``fk.tune``), loaded on first use.

    The core never imports a tool: a tool offers such a name through the ``focalkit.tools`` entry
    point group of the installed distribution (see pyproject.toml), so its extras (optuna for
    ``fk.tune``) are imported only when the name is used.
    """
    from importlib.metadata import entry_points

    for ep in entry_points(group="focalkit.tools", name=name):
        return ep.load()
    raise AttributeError(f"module 'focalkit' has no attribute {name!r}")


__all__ = [
    "FLSD53",
    "AsymmetricLoss",
    "FocalLoss",
    "PiecewiseGamma",
    "QualityFocalLoss",
    "SigmoidFocalLoss",
    "SoftmaxFocalLoss",
    "VarifocalLoss",
    "asymmetric_loss",
    "available_backends",
    "class_weights",
    "get_backend",
    "kernel_status",
    "num_positives",
    "prior_bias",
    "quality_focal_loss",
    "set_backend",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "use_backend",
    "varifocal_loss",
]
