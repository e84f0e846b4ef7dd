"""``nn.Module`` wrappers around the functional losses.

The modules hold the loss's settings; tensors (``alpha`` when it is per-class, ``weight``) are
registered as buffers so that ``.to(device)`` and ``state_dict`` carry them. ``forward`` never
changes the module (MONAI's FocalLoss, by contrast, dropped alpha after one call).
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
from torch import Tensor, nn

from focalkit import _validation as V
from focalkit.family import asymmetric_loss, quality_focal_loss, varifocal_loss
from focalkit.functional import sigmoid_focal_loss, softmax_focal_loss

__all__ = [
    "AsymmetricLoss",
    "FocalLoss",
    "QualityFocalLoss",
    "SigmoidFocalLoss",
    "SoftmaxFocalLoss",
    "VarifocalLoss",
]


class _FocalBase(nn.Module):
    alpha: Tensor | None
    weight: Tensor | None
    _function: Any
    _extra_kwargs: dict[str, Any] = {}  # the function's arguments that only one of the losses has

    def __init__(
        self,
        *,
        alpha: Any,
        gamma: float,
        reduction: str,
        weight: Tensor | None,
        normalizer: float | Tensor | None,
        ignore_index: int | None,
        label_smoothing: float,
        validate_args: bool,
        epsilon: float = 0.0,
    ) -> None:
        super().__init__()
        V.check_reduction(reduction)
        self.gamma = V.check_gamma(gamma)
        self.epsilon = V.check_epsilon(epsilon)
        self.label_smoothing = V.check_label_smoothing(label_smoothing)
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.validate_args = validate_args
        self.normalizer = normalizer
        if weight is not None and not isinstance(weight, Tensor):
            raise TypeError(f"weight must be a torch.Tensor or None, got {type(weight).__name__}")
        self.register_buffer("weight", weight)
        if alpha is None or (isinstance(alpha, numbers.Real) and not isinstance(alpha, bool)):
            self.alpha_value = alpha if alpha is None else float(alpha)
            self.register_buffer("alpha", None)
        else:
            self.alpha_value = None
            a = V._alpha_tensor(alpha)
            if not isinstance(alpha, Tensor):  # a list: a buffer in the default dtype, as parameters are
                a = a.to(torch.get_default_dtype())  # (module.double() makes it float64)
            self.register_buffer("alpha", a.clone())


    def forward(
        self,
        logits: Tensor,
        targets: Tensor,
        *,
        weight: Tensor | None = None,
        normalizer: float | Tensor | None = None,
    ) -> Tensor:
        """The loss of ``logits`` against ``targets``; ``weight``/``normalizer`` override the module's."""
        return self._function(
            logits,
            targets,
            alpha=self.alpha if self.alpha is not None else self.alpha_value,
            gamma=self.gamma,
            reduction=self.reduction,
            weight=self.weight if weight is None else weight,
            normalizer=self.normalizer if normalizer is None else normalizer,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            validate_args=self.validate_args,
            epsilon=self.epsilon,
            **self._extra_kwargs,
        )

    def extra_repr(self) -> str:
        a = self.alpha_value if self.alpha is None else f"tensor{tuple(self.alpha.shape)}"
        return (
            f"alpha={a}, gamma={self.gamma}, reduction={self.reduction!r}, "
            f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}, epsilon={self.epsilon}"
        )


class SigmoidFocalLoss(_FocalBase):
    """Module form of :func:`focalkit.sigmoid_focal_loss` (binary, multi-label, dense detection).

    The constructor takes the function's keyword arguments (``label_smoothing_mode`` and the
    Poly-1 ``epsilon`` included; ``gamma`` may be a :class:`focalkit.PiecewiseGamma`);
    ``forward(logits, targets, *, weight=None, normalizer=None)`` takes per-batch ``weight`` /
    ``normalizer`` that override the constructor's.

    Example:
        >>> import torch, focalkit as fk
        >>> crit = fk.SigmoidFocalLoss(alpha=0.25, gamma=2.0, reduction="sum")
        >>> logits = torch.randn(4, 30, 80, requires_grad=True)       # anchors x classes
        >>> labels = torch.full((4, 30), 80)                          # 80 = background
        >>> labels[:, :3] = torch.randint(0, 80, (4, 3))
        >>> loss = crit(logits.transpose(1, 2), labels, normalizer=fk.num_positives(labels, 80))
        >>> loss.backward()
    """

    def __init__(
        self,
        alpha: float | Tensor | None = 0.25,
        gamma: float = 2.0,
        reduction: str = "mean",
        weight: Tensor | None = None,
        normalizer: float | Tensor | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        validate_args: bool = True,
        label_smoothing_mode: str = "binary",
        epsilon: float = 0.0,
    ) -> None:
        mode = V.check_label_smoothing_mode(label_smoothing_mode)
        if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool) and not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1] (the weight of positives), got {alpha}")
        V.check_ignore_index(ignore_index, allow_none=True)
        super().__init__(
            alpha=alpha, gamma=gamma, reduction=reduction, weight=weight, normalizer=normalizer,
            ignore_index=ignore_index, label_smoothing=label_smoothing, validate_args=validate_args,
            epsilon=epsilon,
        )
        self._extra_kwargs = {"label_smoothing_mode": mode}

    _function = staticmethod(sigmoid_focal_loss)


class SoftmaxFocalLoss(_FocalBase):
    """Module form of :func:`focalkit.softmax_focal_loss` (multi-class, segmentation).

    The constructor takes the function's keyword arguments (the Poly-1 ``epsilon`` included;
    ``gamma`` may be a :class:`focalkit.PiecewiseGamma`).

    Example:
        >>> import torch, focalkit as fk
        >>> crit = fk.SoftmaxFocalLoss(alpha=fk.class_weights([900, 90, 10]), ignore_index=255)
        >>> logits = torch.randn(2, 3, 16, 16, requires_grad=True)
        >>> target = torch.randint(0, 3, (2, 16, 16)); target[:, :2] = 255
        >>> crit(logits, target).backward()
    """

    def __init__(
        self,
        alpha: Any = None,
        gamma: float = 2.0,
        reduction: str = "mean",
        weight: Tensor | None = None,
        normalizer: float | Tensor | None = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        validate_args: bool = True,
        epsilon: float = 0.0,
    ) -> None:
        if alpha is not None and isinstance(alpha, numbers.Real):
            V.check_softmax_alpha(alpha, 0, validate_args)  # raises the explanatory TypeError
        V.check_ignore_index(ignore_index, allow_none=False)
        super().__init__(
            alpha=alpha, gamma=gamma, reduction=reduction, weight=weight, normalizer=normalizer,
            ignore_index=ignore_index, label_smoothing=label_smoothing, validate_args=validate_args,
            epsilon=epsilon,
        )

    _function = staticmethod(softmax_focal_loss)


_MODES = ("binary", "multilabel", "multiclass")


class FocalLoss(nn.Module):
    """One entry point: ``mode`` picks the sigmoid or the softmax focal loss.

    * ``"binary"``: logits (N,), (N, 1) or (N, 1, d1, ...), targets 0/1 (or soft) of the same
      shape or with the singleton class dimension left out; sigmoid loss, default alpha 0.25.
    * ``"multilabel"``: logits (N, C, ...), targets of the same shape (or class indices with C as
      background); sigmoid loss, default alpha 0.25.
    * ``"multiclass"``: logits (N, C, ...), class indices or probabilities; softmax loss, default
      alpha None, ignore_index -100.

    Other keyword arguments go to :class:`SigmoidFocalLoss` / :class:`SoftmaxFocalLoss`.

    Example:
        >>> import torch, focalkit as fk
        >>> crit = fk.FocalLoss("binary", gamma=2.0)
        >>> crit(torch.randn(8, 1), torch.randint(0, 2, (8,)).float()).shape
        torch.Size([])
    """

    def __init__(self, mode: str = "multiclass", **kwargs: Any) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.mode = mode
        self.loss: nn.Module = (
            SoftmaxFocalLoss(**kwargs) if mode == "multiclass" else SigmoidFocalLoss(**kwargs)
        )

    def forward(self, logits: Tensor, targets: Tensor, **kwargs: Any) -> Tensor:
        # (N, 1, ...) logits with (N, ...) targets are binary labels in the sigmoid loss itself.
        return self.loss(logits, targets, **kwargs)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class _SigmoidFamilyBase(nn.Module):
    """A module over one of :mod:`focalkit.family`'s losses: its settings, ``weight`` as a buffer."""

    weight: Tensor | None
    _function: Any
    _settings: tuple[str, ...] = ()

    def _init_common(
        self, reduction: str, weight: Tensor | None, normalizer: Any, ignore_index: int | None, validate_args: bool
    ) -> None:
        V.check_reduction(reduction)
        V.check_ignore_index(ignore_index, allow_none=True)
        if weight is not None and not isinstance(weight, Tensor):
            raise TypeError(f"weight must be a torch.Tensor or None, got {type(weight).__name__}")
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.validate_args = validate_args
        self.normalizer = normalizer
        self.register_buffer("weight", weight)

    def _call(self, logits: Tensor, targets: Tensor, weight: Tensor | None, normalizer: Any, **extra: Any) -> Tensor:
        return self._function(
            logits,
            targets,
            reduction=self.reduction,
            weight=self.weight if weight is None else weight,
            normalizer=self.normalizer if normalizer is None else normalizer,
            ignore_index=self.ignore_index,
            validate_args=self.validate_args,
            **{k: getattr(self, k) for k in self._settings},
            **extra,
        )

    def extra_repr(self) -> str:
        settings = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._settings)
        return f"{settings}, reduction={self.reduction!r}, ignore_index={self.ignore_index}"


class AsymmetricLoss(_SigmoidFamilyBase):
    """Module form of :func:`focalkit.asymmetric_loss` (ASL, multi-label).

    ``forward(logits, targets, *, weight=None, normalizer=None)``; per-batch ``weight`` /
    ``normalizer`` override the constructor's. ``"mean"`` averages over elements; timm's ASL
    returns the sum (``reduction="sum"``).

    Example:
        >>> import torch, focalkit as fk
        >>> crit = fk.AsymmetricLoss(gamma_neg=4.0, clip=0.05)
        >>> logits = torch.randn(8, 20, requires_grad=True)
        >>> crit(logits, (torch.rand(8, 20) > 0.9).float()).backward()
    """

    _settings = ("gamma_pos", "gamma_neg", "clip")

    def __init__(
        self,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        reduction: str = "mean",
        weight: Tensor | None = None,
        ignore_index: int | None = None,
        validate_args: bool = True,
        normalizer: float | Tensor | None = None,
    ) -> None:
        super().__init__()
        self.gamma_pos = V.check_float_gamma(gamma_pos, "gamma_pos")
        self.gamma_neg = V.check_float_gamma(gamma_neg, "gamma_neg")
        self.clip = V.check_clip(clip)
        self._init_common(reduction, weight, normalizer, ignore_index, validate_args)

    _function = staticmethod(asymmetric_loss)

    def forward(
        self, logits: Tensor, targets: Tensor, *, weight: Tensor | None = None, normalizer: float | Tensor | None = None
    ) -> Tensor:
        """The loss of ``logits`` against ``targets``."""
        return self._call(logits, targets, weight, normalizer)


class _ScoredFamilyBase(_SigmoidFamilyBase):
    """The losses of quality targets (QFL, VFL): dense scores, or class indices plus ``scores``."""

    def forward(
        self, logits: Tensor, targets: Tensor, *, scores: Tensor | None = None, weight: Tensor | None = None,
        normalizer: float | Tensor | None = None,
    ) -> Tensor:  # fmt: skip
        """The loss of ``logits`` against ``targets`` (and ``scores`` for class indices)."""
        return self._call(logits, targets, weight, normalizer, scores=scores)


class QualityFocalLoss(_ScoredFamilyBase):
    """Module form of :func:`focalkit.quality_focal_loss` (QFL, GFL's classification-quality loss).

    ``forward(logits, targets, *, scores=None, weight=None, normalizer=None)``: ``scores`` go with
    class-index targets (the labelled class's quality).

    Example:
        >>> import torch, focalkit as fk
        >>> crit = fk.QualityFocalLoss(beta=2.0, reduction="sum")
        >>> logits = torch.randn(6, 4, requires_grad=True)
        >>> labels = torch.tensor([0, 4, 2, 4, 1, 3])                    # 4 = background
        >>> crit(logits, labels, scores=torch.rand(6), normalizer=4).backward()
    """

    _settings = ("beta",)

    def __init__(
        self,
        beta: float = 2.0,
        reduction: str = "mean",
        weight: Tensor | None = None,
        normalizer: float | Tensor | None = None,
        ignore_index: int | None = None,
        validate_args: bool = True,
    ) -> None:
        super().__init__()
        self.beta = V.check_float_gamma(beta, "beta")
        self._init_common(reduction, weight, normalizer, ignore_index, validate_args)

    _function = staticmethod(quality_focal_loss)


class VarifocalLoss(_ScoredFamilyBase):
    """Module form of :func:`focalkit.varifocal_loss` (VFL, VarifocalNet).

    ``forward(logits, targets, *, scores=None, weight=None, normalizer=None)``.

    Example:
        >>> import torch, focalkit as fk
        >>> crit = fk.VarifocalLoss(alpha=0.75, gamma=2.0)
        >>> logits = torch.randn(6, 4, requires_grad=True)
        >>> q = torch.zeros(6, 4); q[0, 1] = 0.7; q[3, 2] = 0.4          # IoU-aware target scores
        >>> crit(logits, q).backward()
    """

    _settings = ("alpha", "gamma", "iou_weighted")

    def __init__(
        self,
        alpha: float = 0.75,
        gamma: float = 2.0,
        iou_weighted: bool = True,
        reduction: str = "mean",
        weight: Tensor | None = None,
        normalizer: float | Tensor | None = None,
        ignore_index: int | None = None,
        validate_args: bool = True,
    ) -> None:
        super().__init__()
        self.alpha = V.check_non_negative("alpha", alpha)
        self.gamma = V.check_float_gamma(gamma, "gamma")
        self.iou_weighted = V.check_bool("iou_weighted", iou_weighted)
        self._init_common(reduction, weight, normalizer, ignore_index, validate_args)

    _function = staticmethod(varifocal_loss)
