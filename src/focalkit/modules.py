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
from focalkit.functional import sigmoid_focal_loss, softmax_focal_loss

__all__ = ["FocalLoss", "SigmoidFocalLoss", "SoftmaxFocalLoss"]


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
