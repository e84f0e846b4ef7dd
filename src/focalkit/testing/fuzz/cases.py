"""Random cases of the fuzz campaign: what a case holds and how one is drawn.

A :class:`Case` is fully determined by ``(seed, index)``: :func:`draw_case` seeds a NumPy generator
with both, so a failure is replayed exactly with ``python -m focalkit.testing.fuzz --seed S
--replay I``. The tensors of a case live on the CPU in their final dtype; :func:`materialize` lays
them out (non-contiguous, expanded, channels_last, ...) on the device of a run.

Two base generators cover the two shapes of loss: :func:`sigmoid_case` (per-element losses over
logits of any shape: hard, soft, 0/1-mask or class-index targets) and :func:`softmax_case`
(per-position losses over (N, C, d1, ..., dk) logits: class indices or class probabilities). A
loss of the focal family registers with one of them and, through ``extra``, draws its own
keyword arguments (see :mod:`focalkit.testing.fuzz.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["Case", "draw_case", "materialize", "sigmoid_case", "softmax_case"]

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
HALF_DTYPES = (torch.float16, torch.bfloat16)
MAX_NUMEL = 2048  # keeps a case (and the Triton interpreter) fast; shapes are resampled below it
LOGIT_LIMIT = 1e4


@dataclass
class Case:
    """One random call of a loss, with everything needed to run it and to compute its reference.

    Attributes:
        loss: the name of the loss in the registry.
        seed, index: what the case was drawn from.
        api: ``"function"``, ``"module"`` (the loss's nn.Module) or ``"focal:<mode>"``
            (:class:`focalkit.FocalLoss` in that mode).
        dtype: the logits' dtype.
        logits: the logits' values (CPU, ``dtype``), in their logical shape.
        layout: how the logits are laid out for the call: ``contiguous``, ``strided`` (every other
            element of a larger tensor), ``transposed``, ``expanded`` (stride 0 along ``axis``),
            ``channels_last``.
        axis: the expanded axis (``layout == "expanded"``).
        targets: the targets (CPU) in their logical shape; ``target_layout`` as for the logits.
        target_form: ``hard``, ``soft``, ``mask`` (integer/bool 0/1), ``index`` (class indices,
            class dimension removed), ``squeezed`` (C = 1, 0/1 labels with the class dimension
            removed) or ``prob`` (softmax class probabilities).
        kwargs: the loss's keyword arguments (alpha, gamma, reduction, weight, normalizer,
            ignore_index, label_smoothing, validate_args, and a family loss's own).
        at_call: module API: ``weight``/``normalizer`` passed to ``forward`` instead of the
            constructor.
        grad_output: the gradient fed to ``backward`` (the output's shape and dtype): ones, random
            or a loss scale (``GradScaler``-style powers of two).
        nonfinite: ``None``, or the value (``nan``, ``inf``, ``-inf``) put into one logit whose loss
            counts, to check that it propagates.
        ref_kwargs: keyword arguments for the reference that differ from ``kwargs`` (a module's
            list alpha is stored as a buffer in the default dtype, float32).
        ref_targets: the targets as the reference reads them, when not ``targets`` (C = 1 labels).
        tags: labels for the summary (shape kind, logit scale, ...).
    """

    loss: str
    seed: int
    index: int
    api: str
    dtype: torch.dtype
    logits: Tensor
    layout: str
    axis: int
    targets: Tensor
    target_form: str
    target_layout: str
    target_axis: int
    kwargs: dict[str, Any]
    at_call: bool
    grad_output: Tensor
    nonfinite: str | None = None
    ref_kwargs: dict[str, Any] = field(default_factory=dict)
    ref_targets: Tensor | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(self.logits.shape[1]) if self.logits.dim() >= 2 else 1

    def describe(self) -> str:
        """A few lines naming everything that defines the case (the tensors by shape and dtype)."""

        def show(v: Any) -> str:
            if isinstance(v, Tensor):
                s = f"tensor{tuple(v.shape)} {str(v.dtype).replace('torch.', '')}"
                return s + (f" = {v.tolist()}" if v.numel() <= 8 else "")
            return repr(v)

        kw = ", ".join(f"{k}={show(v)}" for k, v in self.kwargs.items())
        x = self.logits.double()
        span = f"[{x.min().item():.4g}, {x.max().item():.4g}]" if x.numel() else "[]"
        lines = [
            f"case {self.index} (seed {self.seed}): {self.loss} via {self.api}, {self.dtype}, "
            f"logits {tuple(self.logits.shape)} {self.layout} in {span}",
            f"  targets {self.target_form} {show(self.targets)} {self.target_layout}",
            f"  {kw}" + (" (weight/normalizer at the call)" if self.at_call else ""),
            f"  backward with grad_output {show(self.grad_output)}"
            + (f"; one logit set to {self.nonfinite}" if self.nonfinite else ""),
        ]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# drawing helpers


def _pick(rng: np.random.Generator, options: list[Any], p: list[float] | None = None) -> Any:
    if p is not None:
        p = np.asarray(p, dtype=float) / np.sum(p)
    return options[int(rng.choice(len(options), p=p))]


def _numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) if shape else 1


def _shrink(shape: list[int], keep: tuple[int, ...] = ()) -> tuple[int, ...]:
    """Halve the largest dimension (outside ``keep``) until the shape has at most MAX_NUMEL elements."""
    while _numel(tuple(shape)) > MAX_NUMEL:
        free = [i for i in range(len(shape)) if i not in keep] or list(range(len(shape)))
        i = max(free, key=lambda j: shape[j])
        shape[i] = max(1, shape[i] // 2)
    return tuple(shape)


def draw_shape(rng: np.random.Generator, *, min_dim: int, min_classes: int = 1) -> tuple[tuple[int, ...], str]:
    """A logits shape and its kind: 0-d/1-d (sigmoid), (N, C), dense up to 5-D, empty, or wide C."""
    kinds = ["0d", "1d", "2d", "3d", "4d", "5d", "empty", "wide"]
    p = [3, 8, 30, 15, 15, 10, 7, 4]
    kind = _pick(rng, [k for k in kinds if k[0] not in "01" or int(k[0]) >= min_dim],
                 [w for k, w in zip(kinds, p) if k[0] not in "01" or int(k[0]) >= min_dim])
    n = int(_pick(rng, [1, 2, 3, 4, 8, 16, 64], [10, 15, 10, 15, 15, 10, 5]))
    c = max(min_classes, int(_pick(rng, [1, 2, 3, 5, 8, 10], [12, 20, 15, 20, 15, 8])))
    if kind == "0d":
        return (), kind
    if kind == "1d":
        return (n,), kind
    if kind == "wide":  # many classes: labels past 127 and 155 (narrow integer targets)
        return _shrink([int(rng.integers(1, 5)), int(rng.integers(150, 300))], keep=(1,)), kind
    if kind == "empty":
        nd = int(rng.integers(max(min_dim, 1), 6))
        shape = [n, c] + [int(rng.integers(1, 5)) for _ in range(nd - 2)]
        shape = shape[:nd]
        zero = [i for i in range(nd) if not (i == 1 and nd >= 2 and min_dim >= 2)]
        shape[int(_pick(rng, zero))] = 0
        return tuple(shape), kind
    nd = int(kind[0])
    spatial = [int(_pick(rng, [1, 2, 3, 4, 7, 8, 16])) for _ in range(nd - 2)]
    return _shrink([n, c] + spatial, keep=(1,)), kind


def draw_logits(rng: np.random.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> tuple[Tensor, str]:
    """Logits in [-1e4, 1e4]: Gaussian at a random scale, sometimes shifted to +-1e4 (every logit
    huge, differences O(1)) or sprinkled with exact +-1e4."""
    scale = float(_pick(rng, [1e-3, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0, 1e3, 1e4],
                        [4, 8, 20, 20, 12, 10, 8, 6, 6]))
    x = rng.standard_normal(shape) * scale
    tag = f"scale {scale:g}"
    r = rng.random()
    if r < 0.12:
        shift = float(_pick(rng, [LOGIT_LIMIT, -LOGIT_LIMIT, 0.5 * LOGIT_LIMIT]))
        x = shift + rng.standard_normal(shape) * min(scale, 3.0)
        tag = f"shift {shift:g}"
    elif r < 0.22 and x.size:
        mask = rng.random(shape) < 0.3
        x = np.where(mask, rng.choice([-LOGIT_LIMIT, LOGIT_LIMIT], size=shape), x)
        tag += " +-1e4"
    x = np.clip(x, -LOGIT_LIMIT, LOGIT_LIMIT)
    return torch.from_numpy(np.asarray(x, dtype=np.float64)).to(dtype), tag


def draw_gamma(rng: np.random.Generator) -> float:
    r = rng.random()
    if r < 0.15:
        return 0.0
    if r < 0.45:
        return float(_pick(rng, [0.5, 1.0, 2.0, 3.0, 5.0, 10.0]))
    if r < 0.6:
        return float(rng.uniform(0.0, 1.0))
    return float(rng.uniform(0.0, 10.0))


def _float_tensor(rng: np.random.Generator, values: np.ndarray, dtypes: list[torch.dtype]) -> Tensor:
    return torch.from_numpy(np.asarray(values, dtype=np.float64)).to(_pick(rng, dtypes))


def _int_fits(dtype: torch.dtype, value: int) -> bool:
    if dtype == torch.bool:
        return value in (0, 1)
    info = torch.iinfo(dtype)
    return info.min <= value <= info.max


def _place_ignored(rng: np.random.Generator, t: np.ndarray, ignore_index: int | None, dtype: torch.dtype) -> np.ndarray:
    """Set a random fraction of the targets to ignore_index, when the targets' dtype holds it."""
    if ignore_index is None or t.size == 0:
        return t
    if not dtype.is_floating_point and not _int_fits(dtype, ignore_index):
        return t
    frac = float(_pick(rng, [0.0, 0.1, 0.5, 1.0], [2, 5, 3, 1]))
    return np.where(rng.random(t.shape) < frac, ignore_index, t)


def draw_weight(rng: np.random.Generator, loss_shape: tuple[int, ...], dtype: torch.dtype) -> Tensor | None:
    """None, or non-negative weights broadcastable to ``loss_shape`` (some dimensions 1 or dropped)."""
    if rng.random() < 0.6:
        return None
    shape = [s if rng.random() < 0.6 else 1 for s in loss_shape]
    if shape and rng.random() < 0.3:
        shape = shape[int(rng.integers(0, len(shape) + 1)):]
    w = rng.uniform(0.0, 3.0, size=tuple(shape))
    w = np.where(rng.random(w.shape) < 0.1, 0.0, w)
    wdt = _pick(rng, [dtype, torch.float32, torch.float64, torch.int64], [4, 2, 2, 1])
    if wdt == torch.int64:
        w = np.round(w)
    return torch.from_numpy(np.asarray(w, dtype=np.float64)).to(wdt)


def draw_normalizer(rng: np.random.Generator, reduction: str, dtype: torch.dtype) -> Any:
    if reduction == "none" or rng.random() < 0.65:
        return None
    v = float(_pick(rng, [0.0, 1.0, float(rng.uniform(0.5, 100.0))], [1, 1, 4]))
    form = _pick(rng, ["float", "int", "tensor0d", "tensor1"], [4, 1, 3, 2])
    if form == "float":
        return v
    if form == "int":
        return int(round(v))
    t = torch.tensor(v, dtype=_pick(rng, [dtype, torch.float32, torch.float64, torch.int64]))
    return t if form == "tensor0d" else t.reshape(1)


def draw_grad_output(rng: np.random.Generator, out_shape: tuple[int, ...], dtype: torch.dtype, reduction: str) -> Tensor:
    """What backward is fed: ones, random values, or a loss scale (a power of two, as GradScaler)."""
    half = dtype in HALF_DTYPES
    if reduction != "none":
        scale = float(_pick(rng, [1.0, 0.5, 2.0**8, 2.0**15], [6, 1, 1, 2] if half else [6, 1, 1, 1]))
        return torch.tensor(scale, dtype=dtype)
    if rng.random() < 0.3:
        return torch.ones(out_shape, dtype=dtype)
    scale = float(_pick(rng, [1.0, 2.0**8, 2.0**12], [4, 1, 1])) if half else 1.0
    g = np.clip(rng.standard_normal(out_shape), -4.0, 4.0) * scale
    return torch.from_numpy(np.asarray(g, dtype=np.float64)).to(dtype)


def draw_layout(rng: np.random.Generator, values: Tensor) -> tuple[Tensor, str, int]:
    """A memory layout for a tensor; for ``expanded`` the values are made constant along the axis."""
    nd = values.dim()
    options, weights = ["contiguous"], [10.0]
    if nd >= 1:
        options.append("strided"), weights.append(3.0)
    if nd >= 2:
        options.append("transposed"), weights.append(2.0)
    big = [i for i in range(nd) if values.shape[i] > 1]
    if big:
        options.append("expanded"), weights.append(2.0)
    if nd in (4, 5):
        options.append("channels_last"), weights.append(3.0)
    layout = _pick(rng, options, weights)
    axis = -1
    if layout == "expanded":
        axis = int(_pick(rng, big))
        values = values.narrow(axis, 0, 1).expand(values.shape).clone()
    return values, layout, axis


def lay_out(
    values: Tensor, layout: str, axis: int, device: torch.device | str, *, requires_grad: bool = False
) -> Tensor:
    """A tensor holding ``values`` in ``layout`` on ``device``.

    With ``requires_grad`` the tensor's storage is a leaf that requires grad and the result views it
    (its ``.grad`` retained), so the gradient can be read in the logical shape whatever the layout.
    """
    v = values.to(device)
    if layout == "strided":
        leaf = torch.zeros(v.shape[:-1] + (2 * v.shape[-1],), dtype=v.dtype, device=v.device)
        leaf[..., ::2] = v
    elif layout == "transposed":
        leaf = v.transpose(0, -1).contiguous()
    elif layout == "expanded":
        leaf = v.narrow(axis, 0, 1).clone()
    elif layout == "channels_last":
        leaf = v.clone(memory_format=torch.channels_last if v.dim() == 4 else torch.channels_last_3d)
    else:
        leaf = v.clone()
    leaf.requires_grad_(requires_grad)
    if layout == "strided":
        out = leaf[..., ::2]
    elif layout == "transposed":
        out = leaf.transpose(0, -1)
    elif layout == "expanded":
        out = leaf.expand(v.shape)
    else:
        return leaf
    if requires_grad:
        out.retain_grad()
    return out


def materialize(
    case: Case, device: torch.device | str, dtype: torch.dtype | None = None
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """(logits, targets, kwargs) on ``device`` in the case's layouts; the logits require grad.

    ``dtype`` overrides the logits' dtype (the float32 twin of a half-precision case: the same
    values, exactly).
    """
    values = case.logits if dtype is None else case.logits.to(dtype)
    x = lay_out(values, case.layout, case.axis, device, requires_grad=True)
    t = lay_out(case.targets, case.target_layout, case.target_axis, device)
    kwargs = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in case.kwargs.items()}
    return x, t, kwargs


def counted(family: str, shape: tuple[int, ...], targets: Tensor, ignore_index: int | None) -> np.ndarray:
    """Which elements (sigmoid) or positions (softmax) count in the loss: those not ignored.

    Compared in int64/float64, so a narrow target dtype cannot wrap ignore_index onto a label.
    """
    if family == "softmax":
        if targets.is_floating_point():  # a position with an all-zero distribution has no loss
            return (targets.double().sum(1) > 0).numpy()
        return (targets.to(torch.int64) != ignore_index).numpy()
    if ignore_index is None:
        return np.ones(shape, dtype=bool)
    t = targets.double() if targets.is_floating_point() else targets.to(torch.int64)
    valid = (t != ignore_index).numpy()
    if valid.shape != shape:  # class indices or C = 1 labels: a position counts for every class
        valid = np.broadcast_to(np.expand_dims(valid, 1), shape)
    return valid


# ---------------------------------------------------------------------------------------------
# the two base generators

INDEX_DTYPES = [torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8]


def _index_dtype(rng: np.random.Generator, max_label: int) -> torch.dtype:
    fits = [d for d in INDEX_DTYPES if _int_fits(d, max_label)]
    return _pick(rng, fits, [6 if d == torch.int64 else 2 for d in fits])


def _nonfinite(rng: np.random.Generator, x: Tensor, counted: np.ndarray, op: str) -> tuple[Tensor, str | None]:
    """Sometimes put NaN/inf into one logit whose loss counts (not ignored)."""
    if rng.random() >= 0.04 or not counted.any():
        return x, None
    value = _pick(rng, ["nan", "inf", "-inf"] if op == "sigmoid" else ["nan", "inf"])
    flat = np.flatnonzero(counted.reshape(-1))
    pos = np.unravel_index(int(_pick(rng, list(flat))), counted.shape)
    if op == "softmax":  # counted is per position: pick a class
        pos = (pos[0], int(rng.integers(0, x.shape[1]))) + tuple(pos[1:])
    x = x.clone()
    x[pos] = float(value)
    return x, value


def _confident(rng: np.random.Generator, shape: tuple[int, ...], targets: Tensor, form: str, dtype: torch.dtype) -> Tensor:
    """Logits of a converged model: every element right by a margin of 8 to 40 (losses 1e-4 to 1e-18),
    where a loss computed with log(1 + tiny) instead of log1p loses its digits."""
    t = targets.to(torch.int64).numpy()
    if form == "index":  # class indices, C = background: one-hot over the classes
        c = shape[1]
        t = np.stack([t == k for k in range(c)], axis=1).astype(np.int64)
    elif t.shape != shape:  # 0/1 labels without the class dimension
        t = np.expand_dims(t, 1)
    pos = np.broadcast_to(t == 1, shape)
    margin = rng.uniform(8.0, 40.0, size=shape)
    return torch.from_numpy(np.where(pos, margin, -margin)).to(dtype)


def sigmoid_case(rng: np.random.Generator, dtype: torch.dtype) -> dict[str, Any]:
    """The random parts of a sigmoid-family case (see :class:`Case`), without api or layout."""
    shape, kind = draw_shape(rng, min_dim=0)
    x, scale_tag = draw_logits(rng, shape, dtype)
    nd = len(shape)
    c = shape[1] if nd >= 2 else 1
    forms = ["hard", "soft", "mask"] + (["index"] if nd >= 2 else []) + (["squeezed"] if nd >= 2 and c == 1 else [])
    form = _pick(rng, forms, [4, 3, 2, 4, 3][: len(forms)])
    if kind == "wide":
        form = "index"
    ignore_index = None
    if rng.random() < 0.4:
        if form == "index":
            ignore_index = int(_pick(rng, [-1, -100, 255, c + 1]))
            ignore_index = ignore_index if not 0 <= ignore_index <= c else -1
        else:
            ignore_index = int(_pick(rng, [-1, -100, 255, 0, 1], [4, 3, 2, 1, 1]))
    if form == "index":
        t_shape = shape[:1] + shape[2:]
        tdt = _index_dtype(rng, c)
        labels = rng.integers(0, c + 1, size=t_shape)
        if c == 1:  # C = 1: 0/1 labels, 1 = positive (the class dimension left out)
            form = "squeezed"
        labels = _place_ignored(rng, labels, ignore_index, tdt)
        targets = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(tdt)
    else:
        t_shape = shape if form != "squeezed" else shape[:1] + shape[2:]
        if form == "soft":
            vals = rng.random(t_shape)
            vals = np.where(rng.random(t_shape) < 0.2, np.round(vals), vals)
        else:
            vals = (rng.random(t_shape) < float(rng.uniform(0.05, 0.6))).astype(np.float64)
        if form == "mask" or (form == "squeezed" and rng.random() < 0.5):
            tdt = _pick(rng, [torch.int64, torch.int32, torch.uint8, torch.int8, torch.bool], [3, 1, 2, 1, 2])
        else:
            tdt = _pick(rng, [dtype, torch.float32, torch.float64], [4, 1, 1])
        vals = _place_ignored(rng, vals, ignore_index, tdt)
        targets = torch.from_numpy(np.asarray(vals, dtype=np.float64)).to(tdt)
    if form != "soft" and kind != "empty" and rng.random() < 0.08:
        x, scale_tag = _confident(rng, shape, targets, form, dtype), "confident"

    alpha: Any
    r = rng.random()
    if r < 0.2:
        alpha = None
    elif r < 0.6 or nd < 2:
        alpha = float(_pick(rng, [0.25, 0.0, 1.0, float(rng.uniform(0, 1))], [3, 1, 1, 5]))
    elif r < 0.9:
        alpha = _float_tensor(rng, rng.uniform(0, 1, size=c), [dtype, torch.float32, torch.float64])
        if rng.random() < 0.2:
            alpha = [float(a) for a in alpha.double()]
    else:
        alpha = _float_tensor(rng, rng.uniform(0, 1, size=()), [dtype, torch.float32, torch.float64])
    reduction = _pick(rng, ["none", "mean", "sum"])
    return dict(
        shape_kind=kind, scale_tag=scale_tag, x=x, targets=targets, form=form,
        loss_shape=shape, out_shape=shape,
        kwargs=dict(alpha=alpha, gamma=draw_gamma(rng), reduction=reduction, ignore_index=ignore_index),
    )


def softmax_case(rng: np.random.Generator, dtype: torch.dtype) -> dict[str, Any]:
    """The random parts of a softmax-family case (see :class:`Case`), without api or layout."""
    shape, kind = draw_shape(rng, min_dim=2, min_classes=2)  # a softmax over one class is refused
    x, scale_tag = draw_logits(rng, shape, dtype)
    c = shape[1]
    pos_shape = shape[:1] + shape[2:]
    form = "index" if kind == "wide" or rng.random() < 0.75 else "prob"
    ignore_index = -100
    if form == "index":
        r = rng.random()
        if r < 0.3:
            ignore_index = int(_pick(rng, [255, -1, c, int(rng.integers(0, c))]))
        tdt = _index_dtype(rng, c - 1)
        labels = rng.integers(0, c, size=pos_shape)
        if kind == "wide" and labels.size and rng.random() < 0.5:
            labels.reshape(-1)[0] = min(156, c - 1)  # the value of -100 wrapped to uint8
        labels = _place_ignored(rng, labels, ignore_index, tdt)
        targets = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(tdt)
    else:
        kind_p = _pick(rng, ["dirichlet", "onehot", "uniform"])
        if kind_p == "dirichlet":
            p = rng.dirichlet(np.ones(c), size=pos_shape) if _numel(pos_shape) else np.zeros(pos_shape + (c,))
        elif kind_p == "onehot":
            p = np.eye(c)[rng.integers(0, c, size=pos_shape)]
        else:
            p = rng.random(pos_shape + (c,))
        p = np.moveaxis(np.asarray(p, dtype=np.float64).reshape(pos_shape + (c,)), -1, 1)
        targets = _float_tensor(rng, p, [dtype, torch.float32, torch.float64])
    r = rng.random()
    alpha: Any = None
    if r >= 0.4:
        a = rng.uniform(0.0, 2.0, size=c)
        a = np.where(rng.random(c) < 0.1, 0.0, a)
        alpha = _float_tensor(rng, a, [dtype, torch.float32, torch.float64])
        if rng.random() < 0.3:
            alpha = [float(v) for v in alpha.double()]
    return dict(
        shape_kind=kind, scale_tag=scale_tag, x=x, targets=targets, form=form,
        loss_shape=pos_shape, out_shape=pos_shape,
        kwargs=dict(alpha=alpha, gamma=draw_gamma(rng), reduction=_pick(rng, ["none", "mean", "sum"]),
                    ignore_index=ignore_index),
    )


def draw_case(
    spec: Any, seed: int, index: int, *, dtypes: tuple[torch.dtype, ...] = FLOAT_DTYPES,
) -> Case:
    """The case ``index`` of the campaign ``seed`` for the loss described by ``spec`` (a LossSpec)."""
    rng = np.random.default_rng([seed, index, sum(spec.name.encode())])
    dtype = _pick(rng, list(dtypes))
    base: Callable[..., dict[str, Any]] = sigmoid_case if spec.family == "sigmoid" else softmax_case
    d = base(rng, dtype)
    kwargs: dict[str, Any] = d["kwargs"]
    reduction = kwargs["reduction"]
    kwargs["weight"] = draw_weight(rng, d["loss_shape"], dtype)
    kwargs["normalizer"] = draw_normalizer(rng, reduction, dtype)
    kwargs["label_smoothing"] = float(_pick(rng, [0.0, float(rng.uniform(0, 1)), 1.0], [14, 5, 1]))
    kwargs["validate_args"] = bool(rng.random() < 0.85)
    kwargs.update(spec.extra(rng) if spec.extra is not None else {})
    for k in getattr(spec, "drop", ()):  # base arguments this loss does not take (alpha, label_smoothing)
        kwargs.pop(k, None)

    form = d["form"]
    targets = d["targets"]
    modes = spec.focal_modes(form, tuple(d["x"].shape)) if spec.focal_modes is not None else ()
    loose = form == "squeezed" and (targets.is_floating_point() or targets.dtype == torch.bool)
    if loose and "binary" not in modes:
        targets = targets.to(torch.int64)  # float/bool labels without the class dimension: FocalLoss only
    targets, t_layout, t_axis = draw_layout(rng, targets)
    live = counted(spec.family, tuple(d["x"].shape), targets, kwargs["ignore_index"])
    x, nonfinite = _nonfinite(rng, d["x"], live, spec.family)
    if nonfinite is not None:  # nothing that could legitimately hide it: no zero weights
        kwargs["weight"] = None
        if isinstance(kwargs.get("alpha"), float):
            kwargs["alpha"] = min(max(kwargs["alpha"], 0.05), 0.95)
        elif kwargs.get("alpha") is not None:
            kwargs["alpha"] = None
        layout, axis = _pick(rng, ["contiguous", "strided"] if x.dim() else ["contiguous"]), -1
    else:
        x, layout, axis = draw_layout(rng, x)

    apis = ["function", "module"] + [f"focal:{m}" for m in modes]
    api = _pick(rng, apis, [6, 3] + [2] * len(modes))
    if loose and "binary" in modes:
        api = "focal:binary"  # float/bool labels without the class dimension
    at_call = api != "function" and bool(rng.random() < 0.5)
    ref_kwargs: dict[str, Any] = {}
    if api != "function" and isinstance(kwargs.get("alpha"), list):
        # a module keeps a list alpha as a buffer in the default dtype
        ref_kwargs["alpha"] = torch.tensor(kwargs["alpha"], dtype=torch.get_default_dtype())
    ref_targets = targets.unsqueeze(1) if form == "squeezed" else None
    return Case(
        loss=spec.name, seed=seed, index=index, api=api, dtype=dtype, logits=x, layout=layout, axis=axis,
        targets=targets, target_form=form, target_layout=t_layout, target_axis=t_axis, kwargs=kwargs,
        at_call=at_call, grad_output=draw_grad_output(rng, d["out_shape"], dtype, reduction),
        nonfinite=nonfinite, ref_kwargs=ref_kwargs, ref_targets=ref_targets,
        tags={"shape": d["shape_kind"], "logits": d["scale_tag"], "layout": layout},
    )
