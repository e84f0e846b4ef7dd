"""Focal loss, functional API: ``sigmoid_focal_loss`` and ``softmax_focal_loss``.

Lin, Goyal, Girshick, He and Dollar, "Focal Loss for Dense Object Detection", ICCV 2017
(arXiv:1708.02002)::

    FL(p_t) = -alpha_t * (1 - p_t) ** gamma * log(p_t)

Both losses are computed from logits (log-sigmoid / log-softmax), never by clamping
probabilities, in float32 for float16/bfloat16 input (the result is returned in the input's
dtype). The gradient is computed analytically in the forward pass (see ``focalkit.backends`` for
the paths, :mod:`focalkit._autograd` for the one autograd Function and
:mod:`focalkit.backends.closed_form` for the math).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

from focalkit import _fastpath, _validation as V, backends
from focalkit._autograd import FocalLossFunction, reduce_loss
from focalkit._torch_compat import transforms_active
from focalkit.backends import closed_form, composed
from focalkit.backends.registry import CallInfo, Variant
from focalkit.gamma import PiecewiseGamma

__all__ = ["sigmoid_focal_loss", "softmax_focal_loss"]


def _requires_grad(*objs: Any) -> bool:
    return any(isinstance(o, Tensor) and o.requires_grad for o in objs)


def _dispatch(
    op: str,
    logits: Tensor,
    targets: Tensor,
    kwargs: dict[str, Any],
    *,
    labels: bool,
    soft: bool,
    weight: Tensor | None,
    reduction: str,
    normalizer: Any,
) -> Tensor:
    """Pick the path for a validated call (see :mod:`focalkit.backends`) and run it."""
    if weight is not None:
        kwargs = {**kwargs, "weight": weight}
    alpha = kwargs.get("alpha")
    # The composed path: autograd for alpha, weight, soft targets or scores that need gradients,
    # and for torch.func transforms / torch.jit.trace.
    backend = None
    if not (_requires_grad(alpha, weight, targets, kwargs.get("scores")) or transforms_active()):
        info = CallInfo(
            op="sigmoid" if op == "sigmoid" else "softmax",
            device=logits.device,
            dtype=logits.dtype,
            labels=labels,
            soft=soft,
            alpha="none" if alpha is None else ("tensor" if isinstance(alpha, Tensor) else "float"),
            weight=weight is not None,
            reduce=reduction != "none",
            variant=kwargs.get("variant"),
            piecewise=isinstance(kwargs["gamma"], PiecewiseGamma),
            thresholds=len(kwargs["gamma"].thresholds) if isinstance(kwargs["gamma"], PiecewiseGamma) else 0,
        )
        backend = backends.resolve(info)
    if backend is None:
        out = _composed_loss(op, targets, kwargs, reduction, normalizer, logits)
    else:
        kernel = backend.sigmoid_focal_fwd if op == "sigmoid" else backend.softmax_focal_fwd
        recompute = functools.partial(_composed_loss, op, targets, kwargs, reduction, normalizer)
        out = FocalLossFunction.apply(
            logits.contiguous(), kernel, {"targets": targets, **kwargs}, reduction, normalizer,
            op == "softmax", recompute,
        )  # fmt: skip
    if out.dtype == torch.float32 and torch.is_autocast_enabled(logits.device.type):
        return out  # as PyTorch's own losses (autocast's float32 list): the loss stays float32
    return out.to(logits.dtype)


def _composed_loss(
    op: str, targets: Tensor, kwargs: dict[str, Any], reduction: str, normalizer: Any, x: Tensor
) -> Tensor:
    """The reduced loss as differentiable torch ops (the ``"reference"`` path)."""
    elementwise = composed.sigmoid_focal_elementwise if op == "sigmoid" else composed.softmax_focal_elementwise
    loss, count = elementwise(x, targets, **kwargs)
    return reduce_loss(loss, count, reduction, normalizer)


def sigmoid_focal_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: float | Tensor | None = 0.25,
    gamma: float | PiecewiseGamma = 2.0,
    reduction: str = "mean",
    weight: Tensor | None = None,
    normalizer: float | Tensor | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    validate_args: bool = True,
    label_smoothing_mode: str = "binary",
    epsilon: float = 0.0,
) -> Tensor:
    r"""Sigmoid focal loss for binary, multi-label and dense (detection) classification.

    With :math:`p = \sigma(x)` per element and target :math:`t \in [0, 1]`:

    .. math::
        p_t = p t + (1 - p)(1 - t), \quad \alpha_t = \alpha t + (1 - \alpha)(1 - t),\\
        \mathrm{FL} = \alpha_t (1 - p_t)^\gamma \, \mathrm{CE}(x, t), \quad
        \mathrm{CE}(x, t) = -t \log p - (1 - t) \log(1 - p)

    For hard labels CE = -log(p_t), the paper's form; soft labels use this standard soft form
    (torchvision's formula). ``gamma = 0`` is (alpha-weighted) ``binary_cross_entropy_with_logits``.

    Poly-1 (Leng et al., "PolyLoss", ICLR 2022, arXiv:2204.12511): ``epsilon`` adds
    :math:`\epsilon (1 - p_t)^{\gamma + 1}` per element (alpha multiplies only the focal term,
    ``weight`` both); with ``gamma=0`` and ``alpha=None`` it is Poly-1 cross-entropy,
    CE + epsilon (1 - p_t). ``gamma`` may be a :class:`focalkit.PiecewiseGamma` (FLSD-53,
    Mukhoti et al. 2020): a gamma piecewise constant in p_t, treated as a constant by the gradient.

    Args:
        logits: float tensor of any shape; class dimension 1 when ``targets`` are class indices.
        targets: either (a) a tensor of the logits' shape with values in [0, 1]: float (hard or
            soft labels), or integer/bool 0/1 labels (a binary mask); or (b) integer class indices
            with the class dimension 1 removed, shape (N,) for (N, C) logits or (N, d1, ..., dk)
            for (N, C, d1, ..., dk): the value C means background (all classes negative), and
            ``ignore_index`` drops the whole position. With a single class (logits (N, 1) or
            (N, 1, d1, ...), a binary head), targets without the class dimension, (N,) or
            (N, d1, ...), are binary 0/1 (or soft) labels, 1 = positive, as a user means them.
        alpha: weight of positives in [0, 1] (negatives get 1 - alpha); ``None`` turns it off; a
            tensor broadcastable to the logits gives per-class alpha (a 1-D tensor of length C is
            applied along dimension 1).
        gamma: focusing parameter >= 0 (0 gives cross-entropy), or a
            :class:`focalkit.PiecewiseGamma` such as ``fk.FLSD53`` (gamma chosen by p_t).
        reduction: ``"none"`` (the logits' shape, ignored elements 0), ``"sum"``, or ``"mean"``
            (the sum divided by the number of non-ignored elements; alpha and weight do not
            renormalize it).
        weight: optional non-negative tensor broadcastable to the logits, multiplying each element.
        normalizer: if given, the result is the sum divided by it (RetinaNet divides by the number
            of positive anchors, see :func:`focalkit.num_positives`); 0 is treated as 1.
        ignore_index: target value whose elements (or positions, for class indices) contribute
            nothing. A batch where everything is ignored gives 0 with zero gradient.
        label_smoothing: in [0, 1]; targets move toward 0.5: t * (1 - ls) + 0.5 * ls.
        validate_args: check target values, weight and alpha values (a host sync on GPU).
        label_smoothing_mode: ``"binary"`` (default, toward 0.5 as above) or ``"uniform"``: toward
            1/C over the C = logits.shape[1] classes, t * (1 - ls) + ls / C, the convention of
            ``F.cross_entropy`` and of timm's ``BinaryCrossEntropy(smoothing=ls)``.
        epsilon: the Poly-1 coefficient, a finite number >= -1 (0: the plain focal loss).

    Returns:
        The loss, in the logits' dtype: a scalar, or per element for ``reduction="none"``.

    Example:
        >>> import torch, focalkit as fk
        >>> logits = torch.tensor([[2.0, -1.0], [-3.0, 0.5]])
        >>> fk.sigmoid_focal_loss(logits, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        tensor(0.0086)
        >>> fk.sigmoid_focal_loss(logits, torch.tensor([0, 2]))  # class indices, 2 = background
        tensor(0.0751)
        >>> fk.sigmoid_focal_loss(logits, torch.tensor([0, 2]), gamma=fk.FLSD53, epsilon=1.0)
        tensor(0.0841)
    """
    out = _fastpath.sigmoid_focal_loss(
        logits, targets, alpha, gamma, reduction, weight, normalizer, ignore_index, label_smoothing,
        validate_args, label_smoothing_mode, epsilon, _composed_loss,
    )  # fmt: skip
    if out is not None:  # the common call on CPU, same checks and values (focalkit._fastpath)
        return out
    V.check_logits(logits)
    targets = V.check_targets_type(targets)
    V.check_reduction(reduction)
    gamma = V.check_gamma(gamma)
    epsilon = V.check_epsilon(epsilon)
    label_smoothing = V.check_label_smoothing(label_smoothing)
    V.check_ignore_index(ignore_index, allow_none=True)
    targets, labels = V.parse_sigmoid_targets(logits, targets, ignore_index, validate_args)
    alpha = V.check_sigmoid_alpha(alpha, logits, validate_args)
    weight = V.check_weight(weight, logits.shape, validate_args)
    normalizer = V.check_normalizer(normalizer, reduction, validate_args)
    label_smoothing_mode = V.check_label_smoothing_mode(label_smoothing_mode, logits if label_smoothing else None)
    if label_smoothing and label_smoothing_mode == "uniform":
        targets, ignore_index = closed_form.sigmoid_uniform_smoothed_targets(
            logits, targets, labels, ignore_index, label_smoothing
        )
        labels, label_smoothing = False, 0.0

    kwargs: dict[str, Any] = dict(
        labels=labels,
        alpha=alpha,
        gamma=gamma,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
    )
    if epsilon:
        V.warn_negative_poly(epsilon, alpha, sigmoid=True)
        kwargs["variant"] = Variant(epsilon=epsilon)
    return _dispatch(
        "sigmoid", logits, targets, kwargs, labels=labels, soft=False, weight=weight,
        reduction=reduction, normalizer=normalizer,
    )  # fmt: skip


def softmax_focal_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    alpha: Any = None,
    gamma: float | PiecewiseGamma = 2.0,
    reduction: str = "mean",
    weight: Tensor | None = None,
    normalizer: float | Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    validate_args: bool = True,
    epsilon: float = 0.0,
) -> Tensor:
    r"""Softmax focal loss for multi-class classification and semantic segmentation.

    With :math:`p = \mathrm{softmax}(x)` over the class dimension 1 and a target distribution
    :math:`t` (one-hot for class indices):

    .. math::
        \mathrm{FL} = -\sum_c \alpha_c \, t_c \, (1 - p_c)^\gamma \log p_c

    which for a hard label y is :math:`-\alpha_y (1 - p_y)^\gamma \log p_y`. ``gamma = 0`` is
    ``F.cross_entropy`` with ``weight=alpha`` (for ``reduction="none"``/``"sum"``; see ``mean``).

    Poly-1 (Leng et al., ICLR 2022): ``epsilon`` adds :math:`\epsilon (1 - p_t)^{\gamma + 1}` per
    position with :math:`p_t = \sum_c t_c p_c` (the paper's form for soft targets; p_y for a hard
    label); alpha multiplies only the focal term, ``weight`` both. With ``gamma=0`` it is Poly-1
    cross-entropy. A :class:`focalkit.PiecewiseGamma` gamma is evaluated at p_c in the focal
    term and at p_t in the Poly-1 term.

    Args:
        logits: (N, C) or (N, C, d1, ..., dk), floating point.
        targets: integer class indices (N,) / (N, d1, ..., dk), or class probabilities of the
            logits' shape (floating point, values in [0, 1]).
        alpha: ``None`` or a length-C sequence/tensor of non-negative per-class weights (e.g. from
            :func:`focalkit.class_weights`). A bare float is rejected: it would only rescale the loss.
        gamma: focusing parameter >= 0 (0 gives cross-entropy), or a
            :class:`focalkit.PiecewiseGamma` such as ``fk.FLSD53``.
        reduction: ``"none"`` (shape (N, d1, ..., dk), ignored positions 0), ``"sum"``, or
            ``"mean"`` (the sum divided by the number of non-ignored positions; alpha and weight
            do not renormalize it, unlike ``F.cross_entropy(weight=...)``).
        weight: optional non-negative tensor broadcastable to (N, d1, ..., dk), per position.
        normalizer: if given, the result is the sum divided by it; 0 is treated as 1.
        ignore_index: target value whose positions contribute nothing (class indices only).
        label_smoothing: in [0, 1], as in ``F.cross_entropy``: t = (1 - ls) onehot + ls / C.
        validate_args: check target values, weight and alpha values (a host sync on GPU).
        epsilon: the Poly-1 coefficient, a finite number >= -1 (0: the plain focal loss).

    Returns:
        The loss, in the logits' dtype: a scalar, or per position for ``reduction="none"``.

    Example:
        >>> import torch, focalkit as fk
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> fk.softmax_focal_loss(logits, torch.tensor([0, 2]))
        tensor(0.4838)
        >>> seg = torch.randn(2, 4, 8, 8)
        >>> fk.softmax_focal_loss(seg, torch.randint(0, 4, (2, 8, 8)), reduction="none").shape
        torch.Size([2, 8, 8])
        >>> fk.softmax_focal_loss(logits, torch.tensor([0, 2]), gamma=0.0, epsilon=1.0)  # Poly-1 CE
        tensor(1.3328)
    """
    out = _fastpath.softmax_focal_loss(
        logits, targets, alpha, gamma, reduction, weight, normalizer, ignore_index, label_smoothing,
        epsilon, _composed_loss, validate_args,
    )  # fmt: skip
    if out is not None:  # the common call on CPU, same checks and values (focalkit._fastpath)
        return out
    V.check_logits(logits)
    targets = V.check_targets_type(targets)
    V.check_reduction(reduction)
    gamma = V.check_gamma(gamma)
    epsilon = V.check_epsilon(epsilon)
    label_smoothing = V.check_label_smoothing(label_smoothing)
    V.check_ignore_index(ignore_index, allow_none=False)
    soft = V.parse_softmax_targets(logits, targets, ignore_index, validate_args)
    alpha = V.check_softmax_alpha(alpha, logits.shape[1], validate_args)
    weight = V.check_weight(weight, logits.shape[:1] + logits.shape[2:], validate_args)
    normalizer = V.check_normalizer(normalizer, reduction, validate_args)

    kwargs: dict[str, Any] = dict(
        alpha=alpha, gamma=gamma, ignore_index=ignore_index, label_smoothing=label_smoothing
    )
    if epsilon:
        V.warn_negative_poly(epsilon, alpha, sigmoid=False)
        kwargs["variant"] = Variant(epsilon=epsilon)
    return _dispatch(
        "softmax", logits, targets, kwargs, labels=not soft, soft=soft, weight=weight,
        reduction=reduction, normalizer=normalizer,
    )  # fmt: skip
