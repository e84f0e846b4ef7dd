"""focalkit inside torchvision: ``ops.sigmoid_focal_loss`` and RetinaNet's classification loss.

* :func:`sigmoid_focal_loss` has torchvision's exact signature, ``(inputs, targets, alpha=0.25,
  gamma=2, reduction="none")`` with ``alpha`` and ``gamma`` positional, its defaults (no reduction)
  and its ``alpha=-1`` for "no alpha weighting", so it replaces the import and nothing else.
* :func:`retinanet_classification_loss` is ``RetinaNetClassificationHead.compute_loss`` computed
  from class indices (value C = background, ignored anchors dropped by ``ignore_index``), with no
  one-hot target and no boolean-mask copy of the logits: the same number, faster.
  :func:`patch_retinanet` installs it on a model.

This module never imports torchvision: it works on the tensors torchvision hands over.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from focalkit import _validation as V
from focalkit.functional import sigmoid_focal_loss as _sigmoid_focal_loss

__all__ = ["BETWEEN_THRESHOLDS", "patch_retinanet", "retinanet_classification_loss", "sigmoid_focal_loss"]

#: ``torchvision.models.detection._utils.Matcher.BETWEEN_THRESHOLDS``: the matched index of an
#: anchor whose IoU falls between the two thresholds; RetinaNet leaves such anchors out of the loss.
BETWEEN_THRESHOLDS = -2


def sigmoid_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    alpha: float = 0.25,
    gamma: float = 2,
    reduction: str = "none",
) -> Tensor:
    r"""``torchvision.ops.sigmoid_focal_loss``, computed by focalkit.

    With :math:`p = \sigma(x)`, :math:`p_t = p t + (1 - p)(1 - t)` and
    :math:`\alpha_t = \alpha t + (1 - \alpha)(1 - t)`, per element

    .. math::
        \mathrm{FL} = \alpha_t (1 - p_t)^\gamma \, \mathrm{BCE}(x, t)

    the same function as torchvision's, with its signature and defaults; the differences are
    focalkit's: computed from log-sigmoid (no NaN gradient at gamma < 1 and saturated logits),
    float16/bfloat16 in float32, one fused pass.

    Args:
        inputs: logits of any shape.
        targets: the inputs' shape, 0/1 or soft labels in [0, 1] (float, or integer/bool 0/1).
        alpha: weight of positives in [0, 1], or -1 for no weighting (torchvision's convention).
        gamma: focusing parameter >= 0.
        reduction: ``"none"`` (default, as in torchvision), ``"mean"`` (over all elements) or
            ``"sum"``.

    Returns:
        The loss in the inputs' dtype: the inputs' shape for ``"none"``, else a scalar.

    Example:
        >>> import torch
        >>> from focalkit.integrations.torchvision import sigmoid_focal_loss
        >>> x = torch.tensor([[2.0, -1.0], [-3.0, 0.5]])
        >>> t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> sigmoid_focal_loss(x, t, 0.25, 2, "sum")   # alpha and gamma positional, as torchvision calls it
        tensor(0.0344)
    """
    a = V.check_real("alpha", alpha)
    if a != -1 and not 0.0 <= a <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], or -1 for no alpha weighting (torchvision's convention), got {a}")
    if isinstance(targets, Tensor) and isinstance(inputs, Tensor) and targets.shape != inputs.shape:
        raise ValueError(
            f"targets of shape {tuple(targets.shape)} must have the inputs' shape {tuple(inputs.shape)}, as in "
            "torchvision; for class-index targets call focalkit.sigmoid_focal_loss"
        )
    return _sigmoid_focal_loss(
        inputs, targets, alpha=None if a == -1 else a, gamma=gamma, reduction=reduction
    )


def retinanet_classification_loss(
    targets: Sequence[Mapping[str, Tensor]],
    head_outputs: Mapping[str, Tensor],
    matched_idxs: Sequence[Tensor],
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    between_thresholds: int = BETWEEN_THRESHOLDS,
) -> Tensor:
    r"""RetinaNet's classification loss from class indices: ``RetinaNetClassificationHead.compute_loss``.

    For image i with anchors a, classes c, :math:`n_i` foreground anchors and focal loss
    :math:`\mathrm{FL}` (alpha 0.25, gamma 2 as in torchvision):

    .. math::
        L = \frac{1}{N} \sum_i \frac{1}{\max(1, n_i)} \sum_{a\ \mathrm{not\ ignored}} \sum_c
        \mathrm{FL}(x_{iac}, [c = y_{ia}])

    where :math:`y_{ia}` is the class of the ground-truth box matched to anchor a, or background
    (all classes negative) for ``matched_idxs == -1``; anchors with ``matched_idxs ==
    between_thresholds`` (-2) are left out. torchvision builds a one-hot target and copies the kept
    logits with a boolean mask; here the labels go to focalkit as class indices, one fused call
    per image.

    Args:
        targets: per image a dict with ``"labels"`` (int64, one class per ground-truth box).
        head_outputs: a dict with ``"cls_logits"`` of shape (N, num_anchors, num_classes).
        matched_idxs: per image, for each anchor, the index of its ground-truth box, -1
            (background) or ``between_thresholds`` (ignored).
        alpha: weight of positives in [0, 1], or None.
        gamma: focusing parameter >= 0.
        between_thresholds: the matched index of ignored anchors (torchvision's -2).

    Returns:
        The loss, a scalar in the logits' dtype.

    Example:
        >>> import torch
        >>> from focalkit.integrations.torchvision import retinanet_classification_loss
        >>> logits = torch.zeros(1, 4, 3)                     # 1 image, 4 anchors, 3 classes
        >>> matched = [torch.tensor([0, -1, -2, 1])]          # anchors 0 and 3 on boxes 0 and 1
        >>> targets = [{"labels": torch.tensor([2, 0])}]
        >>> retinanet_classification_loss(targets, {"cls_logits": logits}, matched)  # p = 1/2 everywhere:
        tensor(0.4982)

        that is ln 2 * (1/2)**2 * (2 positives * 0.25 + 7 negatives * 0.75) / 2 foreground anchors.
    """
    cls_logits = head_outputs["cls_logits"]
    if len(targets) != len(matched_idxs) or len(targets) != cls_logits.shape[0]:
        raise ValueError(
            f"targets ({len(targets)}), matched_idxs ({len(matched_idxs)}) and cls_logits (batch "
            f"{cls_logits.shape[0]}) must describe the same images"
        )
    num_classes = cls_logits.shape[-1]
    losses = []
    for targets_i, logits_i, matched_i in zip(targets, cls_logits, matched_idxs):
        foreground = matched_i >= 0
        labels = torch.full_like(matched_i, num_classes)  # value C = background
        labels[foreground] = targets_i["labels"][matched_i[foreground]].to(labels.dtype)
        labels[matched_i == between_thresholds] = between_thresholds
        if num_classes == 1:  # one class: 0/1 targets of the logits' shape, never read two ways
            labels = torch.where(labels == between_thresholds, labels, (labels == 0).to(labels.dtype))[:, None]
        losses.append(
            _sigmoid_focal_loss(
                logits_i, labels, alpha=alpha, gamma=gamma, reduction="sum",
                ignore_index=between_thresholds, normalizer=foreground.sum(),  # 0 counts as 1
            )
        )
    return torch.stack(losses).sum() / len(targets)


def patch_retinanet(model: nn.Module, *, alpha: float | None = 0.25, gamma: float = 2.0) -> nn.Module:
    """Make a torchvision RetinaNet compute its classification loss with :func:`retinanet_classification_loss`.

    Args:
        model: a ``torchvision.models.detection.RetinaNet``, its ``head`` (``RetinaNetHead``) or its
            ``head.classification_head`` (``RetinaNetClassificationHead``).
        alpha: weight of positives in [0, 1], or None (torchvision's is 0.25).
        gamma: focusing parameter >= 0 (torchvision's is 2).

    Returns:
        ``model``, whose classification head's ``compute_loss`` is replaced on that instance (not on
        the class; TorchScript scripting of the patched model is not supported).

    Example:
        >>> from torch import nn
        >>> from focalkit.integrations.torchvision import patch_retinanet
        >>> head = nn.Module(); head.compute_loss = None      # stand-in for a RetinaNetClassificationHead
        >>> patch_retinanet(head, gamma=1.0).compute_loss.keywords
        {'alpha': 0.25, 'gamma': 1.0, 'between_thresholds': -2}
    """
    head: Any = model
    for name in ("head", "classification_head"):
        head = getattr(head, name, head)
    if not isinstance(head, nn.Module) or not hasattr(head, "compute_loss"):
        raise TypeError(
            "model must be a torchvision RetinaNet, its head or its classification head (a module with "
            f"compute_loss), got {type(model).__name__}"
        )
    if alpha is not None:
        V.check_alpha_scalar(alpha)
    head.compute_loss = functools.partial(
        retinanet_classification_loss,
        alpha=alpha,
        gamma=V.check_gamma(gamma),
        between_thresholds=int(getattr(head, "BETWEEN_THRESHOLDS", BETWEEN_THRESHOLDS)),
    )
    return model
