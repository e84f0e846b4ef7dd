r"""The focal family's sigmoid losses: asymmetric, quality focal and varifocal.

Each is a parameter set (a :class:`~focalkit.backends.registry.Variant` kind) of the one sigmoid
pass behind :func:`focalkit.sigmoid_focal_loss`: the same dispatcher, the same autograd Function,
the same guarantees (computed from logits with log-sigmoid, never by clamping probabilities;
float16/bfloat16 computed in float32; finite at logits of +-1e4; ``weight``, ``normalizer``,
``ignore_index`` and the three reductions; an exact gradient, through the modulating factor too).
The math of each pass is in :mod:`focalkit.backends.closed_form_family`.

Targets are of the logits' shape (any shape; values in [0, 1]), or integer class indices with the
class dimension 1 removed (the value C = logits.shape[1] means background), as for
:func:`focalkit.sigmoid_focal_loss`; the quality and varifocal losses then take the labelled
class's target score from ``scores=`` (1 when not given), so no dense target is built by the user.

Poly-1 and FLSD-53 are arguments of the focal losses themselves (``epsilon=``,
``gamma=fk.FLSD53``).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from focalkit import _validation as V
from focalkit.backends.registry import Variant
from focalkit.functional import _dispatch

__all__ = ["asymmetric_loss", "quality_focal_loss", "varifocal_loss"]


def _sigmoid_family(
    logits: Tensor, targets: Tensor, variant: Variant, *, alpha: float | None, gamma: float, reduction: str,
    weight: Tensor | None, normalizer: Any, ignore_index: int | None, scores: Tensor | None, validate_args: bool,
) -> Tensor:
    """Validate the shared arguments of a sigmoid-family call and dispatch it."""
    V.check_logits(logits)
    targets = V.check_targets_type(targets)
    V.check_reduction(reduction)
    V.check_ignore_index(ignore_index, allow_none=True)
    targets, labels = V.parse_sigmoid_targets(logits, targets, ignore_index, validate_args)
    scores = V.check_scores(scores, targets, labels, validate_args)
    weight = V.check_weight(weight, logits.shape, validate_args)
    normalizer = V.check_normalizer(normalizer, reduction, validate_args)
    kwargs: dict[str, Any] = dict(
        labels=labels, alpha=alpha, gamma=gamma, ignore_index=ignore_index, label_smoothing=0.0, variant=variant
    )
    if scores is not None:
        kwargs["scores"] = scores
    return _dispatch(
        "sigmoid", logits, targets, kwargs, labels=labels, soft=False, weight=weight,
        reduction=reduction, normalizer=normalizer,
    )  # fmt: skip


def asymmetric_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    reduction: str = "mean",
    weight: Tensor | None = None,
    ignore_index: int | None = None,
    validate_args: bool = True,
    normalizer: float | Tensor | None = None,
) -> Tensor:
    r"""Asymmetric loss (ASL) for multi-label classification.

    Ridnik, Ben-Baruch, Zamir, Noy, Friedman, Protter and Zelnik-Manor, "Asymmetric Loss For
    Multi-Label Classification", ICCV 2021 (arXiv:2009.14119). With :math:`p = \sigma(x)` per
    element, target :math:`t \in [0, 1]` and the shifted probability of the negatives
    :math:`p_m = \max(p - m, 0)` (m = ``clip``):

    .. math::
        \mathrm{ASL} = -t (1 - p)^{\gamma_+} \log p - (1 - t) p_m^{\gamma_-} \log(1 - p_m)

    Easy negatives are down-weighted harder than positives (gamma_neg > gamma_pos), and negatives
    with p <= clip are discarded. The gradient is exact (the focusing weight is not detached, like
    timm's default). ``clip=0`` means no shift; ``gamma_pos = gamma_neg = clip = 0`` is BCE.

    Unlike timm's ``AsymmetricLossMultiLabel``, which returns the *sum* over every element,
    ``reduction="mean"`` divides by the number of non-ignored elements; use ``reduction="sum"`` for
    timm's scale.

    Args:
        logits: float tensor of any shape, e.g. (N, C) for C labels.
        targets: 0/1 (or soft) labels of the logits' shape, or class indices with the class
            dimension removed (C = background), as for :func:`focalkit.sigmoid_focal_loss`.
        gamma_pos: focusing exponent of the positives, >= 0.
        gamma_neg: focusing exponent of the negatives, >= 0.
        clip: probability margin m in [0, 1) shifting the negatives.
        reduction: ``"none"`` (the logits' shape, ignored elements 0), ``"sum"`` or ``"mean"`` (the
            sum over the non-ignored elements' count).
        weight: optional non-negative tensor broadcastable to the logits, multiplying each element.
        ignore_index: target value whose elements (or positions, for class indices) count nothing.
        validate_args: check target, weight and normalizer values (a host sync on GPU).
        normalizer: if given, the result is the sum divided by it (0 is treated as 1).

    Returns:
        The loss in the logits' dtype: a scalar, or per element for ``reduction="none"``.

    Example:
        >>> import torch, focalkit as fk
        >>> logits = torch.tensor([[2.0, -1.0, -3.0], [0.5, 1.5, -0.2]])
        >>> labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
        >>> fk.asymmetric_loss(logits, labels)
        tensor(0.2031)
        >>> fk.asymmetric_loss(logits, labels, reduction="sum")  # timm's AsymmetricLossMultiLabel
        tensor(1.2183)
    """
    gamma_pos = V.check_float_gamma(gamma_pos, "gamma_pos")
    variant = Variant(kind="asymmetric", gamma_neg=V.check_float_gamma(gamma_neg, "gamma_neg"), clip=V.check_clip(clip))
    return _sigmoid_family(
        logits, targets, variant, alpha=None, gamma=gamma_pos, reduction=reduction, weight=weight,
        normalizer=normalizer, ignore_index=ignore_index, scores=None, validate_args=validate_args,
    )  # fmt: skip


def quality_focal_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    beta: float = 2.0,
    reduction: str = "mean",
    weight: Tensor | None = None,
    normalizer: float | Tensor | None = None,
    ignore_index: int | None = None,
    scores: Tensor | None = None,
    validate_args: bool = True,
) -> Tensor:
    r"""Quality focal loss (QFL) of Generalized Focal Loss, for joint class-quality scores.

    Li, Wang, Wu, Chen, Hu, Li, Tang and Yang, "Generalized Focal Loss: Learning Qualified and
    Distributed Bounding Boxes for Dense Object Detection", NeurIPS 2020 (arXiv:2006.04388). The
    target t in [0, 1] is a quality score (the IoU of the box for its labelled class, 0 elsewhere);
    with :math:`p = \sigma(x)`:

    .. math::
        \mathrm{QFL} = |t - p|^\beta \, \mathrm{CE}(x, t), \quad
        \mathrm{CE}(x, t) = -t \log p - (1 - t) \log(1 - p)

    The gradient goes through the modulating factor too (as mmdet's ``QualityFocalLoss``). With
    hard 0/1 targets it is the focal loss without alpha (gamma = beta).

    Args:
        logits: float tensor, (N, C) or (N, C, d1, ..., dk) for class indices; any shape otherwise.
        targets: quality scores of the logits' shape, or integer class indices with the class
            dimension removed (C = background) whose labelled class gets the target ``scores``.
        beta: exponent of the modulating factor, >= 0 (the paper uses 2).
        reduction: ``"none"``, ``"sum"`` or ``"mean"`` (sum over the non-ignored elements' count).
        weight: optional non-negative tensor broadcastable to the logits.
        normalizer: if given, the result is the sum divided by it (GFL divides by the number of
            positives); 0 is treated as 1.
        ignore_index: target value whose elements (or positions, for class indices) count nothing.
        scores: with class-index targets, the target score of each position's labelled class,
            a float tensor of the targets' shape in [0, 1] (default 1).
        validate_args: check target, scores, weight and normalizer values (a host sync on GPU).

    Returns:
        The loss in the logits' dtype: a scalar, or per element for ``reduction="none"``.

    Example:
        >>> import torch, focalkit as fk
        >>> logits = torch.tensor([[1.0, -2.0], [-1.0, 0.5]])
        >>> fk.quality_focal_loss(logits, torch.tensor([[0.8, 0.0], [0.0, 0.6]]))
        tensor(0.0068)
        >>> fk.quality_focal_loss(logits, torch.tensor([0, 1]), scores=torch.tensor([0.8, 0.6]))
        tensor(0.0068)
    """
    beta = V.check_float_gamma(beta, "beta")
    return _sigmoid_family(
        logits, targets, Variant(kind="quality"), alpha=None, gamma=beta, reduction=reduction, weight=weight,
        normalizer=normalizer, ignore_index=ignore_index, scores=scores, validate_args=validate_args,
    )  # fmt: skip


def varifocal_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: float = 0.75,
    gamma: float = 2.0,
    iou_weighted: bool = True,
    reduction: str = "mean",
    weight: Tensor | None = None,
    normalizer: float | Tensor | None = None,
    ignore_index: int | None = None,
    scores: Tensor | None = None,
    validate_args: bool = True,
) -> Tensor:
    r"""Varifocal loss (VFL) of VarifocalNet, for IoU-aware classification scores.

    Zhang, Wang, Dayoub and Sunderhauf, "VarifocalNet: An IoU-aware Dense Object Detector", CVPR
    2021 (arXiv:2008.13367). With the target score q = t in [0, 1] (the IoU for the labelled class,
    0 elsewhere) and :math:`p = \sigma(x)`:

    .. math::
        \mathrm{VFL} = \begin{cases} q \, \mathrm{CE}(x, q) & q > 0 \\
        \alpha p^\gamma \, \mathrm{CE}(x, 0) & q = 0 \end{cases}

    Positives are weighted by their score q (by 1 when ``iou_weighted=False``) and never
    down-weighted by p; only negatives are focused. The gradient goes through the weight (as
    mmdet's ``VarifocalLoss``).

    Args:
        logits: float tensor, (N, C) or (N, C, d1, ..., dk) for class indices; any shape otherwise.
        targets: target scores of the logits' shape, or integer class indices with the class
            dimension removed (C = background) whose labelled class gets the target ``scores``.
        alpha: weight of the negatives, a finite number >= 0 (the paper uses 0.75).
        gamma: focusing exponent of the negatives, >= 0 (the paper uses 2).
        iou_weighted: weight positives by q (True, the paper) or by 1.
        reduction: ``"none"``, ``"sum"`` or ``"mean"`` (sum over the non-ignored elements' count).
        weight: optional non-negative tensor broadcastable to the logits.
        normalizer: if given, the result is the sum divided by it; 0 is treated as 1.
        ignore_index: target value whose elements (or positions, for class indices) count nothing.
        scores: with class-index targets, the target score of each position's labelled class
            (default 1).
        validate_args: check target, scores, weight and normalizer values (a host sync on GPU).

    Returns:
        The loss in the logits' dtype: a scalar, or per element for ``reduction="none"``.

    Example:
        >>> import torch, focalkit as fk
        >>> logits = torch.tensor([[1.0, -2.0], [-1.0, 0.5]])
        >>> fk.varifocal_loss(logits, torch.tensor([[0.8, 0.0], [0.0, 0.6]]))
        tensor(0.2084)
    """
    variant = Variant(kind="varifocal", iou_weighted=V.check_bool("iou_weighted", iou_weighted))
    return _sigmoid_family(
        logits, targets, variant, alpha=V.check_non_negative("alpha", alpha), gamma=V.check_float_gamma(gamma, "gamma"),
        reduction=reduction, weight=weight, normalizer=normalizer, ignore_index=ignore_index, scores=scores,
        validate_args=validate_args,
    )  # fmt: skip
