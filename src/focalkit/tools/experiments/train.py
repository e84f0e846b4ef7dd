"""Train one model with one loss on a split and score it on the held-out part.

:func:`fit_and_score` is the unit of work of ``focalkit compare`` (and ``focalkit tune``). Every
loss sees the same model initialization, data order and optimizer for a given ``seed``; only the
loss changes. Under ``torch.distributed`` (``torchrun``) the model is wrapped in
DistributedDataParallel and each rank trains on its share of every global batch; for the dense task
the loss is normalized with :func:`focalkit.num_positives`, all-reduced across ranks, so the update
equals a single process's on the global batch.

Training stops cooperatively (:mod:`focalkit.tools.cancel`): between batches (single process) or,
under ``torch.distributed``, at the end of an epoch when any rank was asked to stop (so that every
rank stops at the same point instead of waiting for the others in a collective).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

import focalkit as fk
from focalkit import _validation as V
from focalkit.tools import cancel
from focalkit.tools.experiments import variants
from focalkit.tools.experiments.data import Dataset, class_counts
from focalkit.tools.experiments.metrics import evaluate
from focalkit.tools.experiments.models import build_model, init_prior_bias, model_signature

__all__ = [
    "LossSpec",
    "TrainConfig",
    "default_config",
    "resolve_alpha",
    "compute_loss",
    "fit_and_score",
    "predict_proba",
    "save_checkpoint",
    "load_checkpoint",
]

CHECKPOINT_FORMAT = "focalkit-compare-v1"
PAPER_ALPHA = 0.25  # Lin et al.: best alpha with gamma = 2 for sigmoid heads
PAPER_PRIOR = 0.01  # Lin et al., Sec. 4.1
_KINDS = ("ce", "balanced_ce", "focal", "poly1", "flsd53", "asl")


@dataclass
class LossSpec:
    """One loss of a comparison.

    Attributes:
        kind: ``"ce"`` (cross-entropy, no alpha), ``"balanced_ce"`` (alpha-balanced cross-entropy),
            ``"focal"`` (focal loss with ``gamma``), or a member of the focal family
            (:mod:`~focalkit.tools.experiments.variants`): ``"poly1"`` (``gamma`` and ``epsilon``;
            no alpha by default when gamma is 0), ``"flsd53"`` (gamma ``fk.FLSD53``) or ``"asl"``
            (``gamma`` is gamma_pos, with ``gamma_neg`` and ``clip``; no alpha).
        gamma: focusing parameter (``focal``, ``poly1``; gamma_pos of ``asl``; cross-entropy kinds
            and ``flsd53`` use 0).
        alpha: ``None`` chooses: for ``balanced_ce`` class-balanced weights from the training
            counts (:func:`focalkit.class_weights` with ``alpha_method``); for ``focal`` the same
            per-class weights on multiclass data and the paper's 0.25 on sigmoid (binary, dense)
            tasks. A float is the sigmoid positive weight; a list gives per-class weights (softmax
            alpha, or per-class sigmoid alpha on dense data); ``"off"`` disables alpha.
        name: display name; derived from the rest when empty (``"focal γ=2"`` with automatic
            alpha, ``"focal γ=2 α=0.5"`` with a given one).
        alpha_method: ``"inverse"``, ``"inverse_sqrt"`` or ``"effective_number"``.
        epsilon: Poly-1's epsilon (>= -1; ``poly1`` only).
        gamma_neg, clip: the asymmetric loss's negative focusing and probability shift (``asl`` only).
    """

    kind: Literal["ce", "balanced_ce", "focal", "poly1", "flsd53", "asl"]
    gamma: float = 0.0
    alpha: float | list[float] | Literal["off"] | None = None
    name: str = ""
    alpha_method: str = "inverse"
    epsilon: float = 0.0
    gamma_neg: float = 0.0
    clip: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {self.kind!r}")
        self.gamma = V.check_gamma(self.gamma)
        if self.kind not in ("focal", "poly1", "asl") and self.gamma != 0:
            raise ValueError(f"gamma applies to kind='focal', 'poly1' or 'asl' only, got gamma={self.gamma} for {self.kind!r}")
        if self.kind in ("ce", "asl") and self.alpha not in (None, "off"):
            raise ValueError(f"kind={self.kind!r} takes no alpha" + (" (use 'balanced_ce')" if self.kind == "ce" else ""))
        self.epsilon = variants.check_epsilon(self.epsilon)
        self.gamma_neg = V.check_float_gamma(self.gamma_neg, "gamma_neg")
        self.clip = variants.check_clip(self.clip)
        if self.kind != "poly1" and self.epsilon != 0:
            raise ValueError(f"epsilon applies to kind='poly1' only, got {self.epsilon} for {self.kind!r}")
        if self.kind != "asl" and (self.gamma_neg != 0 or self.clip != 0):
            raise ValueError(f"gamma_neg and clip apply to kind='asl' only (got {self.kind!r})")
        a = self.alpha
        if isinstance(a, str):
            if a != "off":
                raise ValueError(f"alpha must be a number, a list, None or 'off', got {a!r}")
        elif a is not None:
            if isinstance(a, (int, float)) and not isinstance(a, bool):
                self.alpha = V.check_alpha_scalar(a)
            elif isinstance(a, (list, tuple, np.ndarray, Tensor)):
                vals = [float(v) for v in (a.tolist() if hasattr(a, "tolist") else a)]
                if not vals or any(not math.isfinite(v) or v < 0 for v in vals):
                    raise ValueError("alpha list must hold finite non-negative weights")
                self.alpha = vals
            else:
                raise TypeError(f"alpha must be a float, a list of floats, None or 'off', got {type(a).__name__}")
        if self.alpha_method not in ("inverse", "inverse_sqrt", "effective_number"):
            raise ValueError(f"alpha_method must be 'inverse', 'inverse_sqrt' or 'effective_number', got {self.alpha_method!r}")
        if not self.name:
            self.name = self.default_name()

    def default_name(self) -> str:
        if self.kind == "ce":
            return "CE"
        base = {"balanced_ce": "balanced CE", "focal": f"focal γ={self.gamma:g}", "flsd53": "FLSD-53",
                "poly1": ("Poly-1" + (f" γ={self.gamma:g}" if self.gamma else "") + f" ε={self.epsilon:g}"),
                "asl": (f"ASL γ+={self.gamma:g} γ-={self.gamma_neg:g} clip={self.clip:g}")}[self.kind]
        a = self.alpha
        if a is None:  # automatic: the JSON and report record the value used
            return base
        if a == "off":
            alpha = "α=off"
        elif isinstance(a, float):
            alpha = f"α={a:g}"
        else:
            alpha = "α=[" + ",".join(f"{v:.3g}" for v in a) + "]"
        return f"{base} {alpha}"

    @property
    def gamma_value(self) -> float | fk.PiecewiseGamma:
        """The ``gamma`` passed to the loss: ``fk.FLSD53`` for ``flsd53``, else ``gamma``."""
        return fk.FLSD53 if self.kind == "flsd53" else self.gamma

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "gamma": self.gamma, "alpha": self.alpha, "name": self.name,
             "alpha_method": self.alpha_method}
        if self.kind == "poly1":
            d["epsilon"] = self.epsilon
        if self.kind == "flsd53":
            d["gamma"] = {"thresholds": list(fk.FLSD53.thresholds), "values": list(fk.FLSD53.values)}
        if self.kind == "asl":
            d.update(gamma_pos=self.gamma, gamma_neg=self.gamma_neg, clip=self.clip)
        return d


@dataclass
class TrainConfig:
    """Optimization settings; the same for every loss (see :func:`default_config`)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    prior: float | Literal["auto"] | None = "auto"  # None: no prior-bias init

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def default_config(ds: Dataset) -> TrainConfig:
    """Per-task defaults, fixed before any comparison was run (Adam, PyTorch defaults otherwise).

    dense: 15 epochs of 32 images, lr 2e-3; tables (digits, files): 60 epochs of 64 rows, lr 1e-3.
    """
    if ds.task == "dense":
        return TrainConfig(epochs=15, batch_size=32, lr=2e-3)
    return TrainConfig(epochs=60, batch_size=64, lr=1e-3)


# ----------------------------------------------------------------------------- loss


def _binary_alpha(n_neg: float, n_pos: float, method: str) -> float:
    w = fk.class_weights([n_neg, n_pos], method).double()
    return float(w[1] / w.sum())


def resolve_alpha(spec: LossSpec, ds: Dataset, train_idx: np.ndarray) -> float | Tensor | None:
    """The ``alpha`` passed to the focalkit loss for ``spec`` on this training split.

    * multiclass: ``None`` or a (C,) float32 tensor (softmax per-class weights);
    * binary: ``None`` or a float (weight of the positive class);
    * dense: ``None``, a float, or a (C,) tensor of per-class positive weights.

    Class-balanced (``alpha=None`` for ``balanced_ce``) weights use the training counts: for
    multiclass :func:`focalkit.class_weights`; for sigmoid tasks, per class, the positive's share
    :math:`w_+ / (w_+ + w_-)` of the two-class weights of (negatives, positives), i.e.
    :math:`n_- / n` with ``"inverse"``.
    """
    a = spec.alpha
    if spec.kind in ("ce", "asl") or a == "off" or (spec.kind == "poly1" and spec.gamma == 0 and a is None):
        return None  # Poly-1 cross-entropy (gamma 0) is, like CE, unweighted unless alpha is given
    if ds.task == "multiclass":
        if isinstance(a, float):
            raise ValueError(
                f"{spec.name}: a single alpha is a sigmoid (binary) weight; multiclass data need "
                f"{ds.num_classes} per-class weights or None"
            )
        if a is None:
            counts = class_counts(ds, train_idx)
            if (counts == 0).any():
                raise ValueError(
                    f"{ds.name}: class(es) {np.flatnonzero(counts == 0).tolist()} are absent from "
                    "the training split; cannot derive class weights"
                )
            return fk.class_weights(counts, spec.alpha_method)
        if len(a) != ds.num_classes:
            raise ValueError(f"{spec.name}: alpha has {len(a)} values, the data have {ds.num_classes} classes")
        return torch.tensor(a, dtype=torch.float32)
    # sigmoid tasks
    if isinstance(a, float):
        return a
    if isinstance(a, list):
        if ds.task == "binary":
            if len(a) == 2:  # per-class weights (negative, positive) -> positive share
                return a[1] / (a[0] + a[1]) if a[0] + a[1] > 0 else 0.5
            raise ValueError(f"{spec.name}: binary alpha must be a float or 2 class weights")
        if len(a) != ds.num_classes or any(v > 1 for v in a):
            raise ValueError(f"{spec.name}: dense alpha must be {ds.num_classes} values in [0, 1]")
        return torch.tensor(a, dtype=torch.float32)
    if spec.kind != "balanced_ce":  # focal, flsd53, Poly-1 focal
        return PAPER_ALPHA
    # balanced_ce with automatic alpha
    if ds.task == "binary":
        counts = class_counts(ds, train_idx)
        if (counts == 0).any():
            raise ValueError(f"{ds.name}: a class is absent from the training split")
        return _binary_alpha(counts[0], counts[1], spec.alpha_method)
    pos = class_counts(ds, train_idx).astype(np.float64)
    total = float(ds.y[train_idx].size)
    if (pos == 0).any():
        raise ValueError(f"{ds.name}: a class has no positive anchor in the training split")
    return torch.tensor([_binary_alpha(total - p, p, spec.alpha_method) for p in pos], dtype=torch.float32)


def compute_loss(
    task: str, logits: Tensor, y: Tensor, *, alpha: float | Tensor | None, gamma: float | fk.PiecewiseGamma,
    num_classes: int, epsilon: float = 0.0, asl: dict[str, float] | None = None,
) -> Tensor:
    """The training loss of one (local) batch.

    * binary: ``sigmoid_focal_loss(logits[:, 0], y, alpha, gamma)``, mean over examples;
    * multiclass: ``softmax_focal_loss(logits, y, alpha, gamma)``, mean over examples;
    * dense: ``sigmoid_focal_loss`` summed over all anchors and classes and divided by the number
      of positive anchors, averaged over ranks by :func:`focalkit.num_positives` (RetinaNet).

    ``epsilon`` (Poly-1) is passed on when not 0; ``asl`` (``gamma_pos``, ``gamma_neg``, ``clip``)
    trains :func:`focalkit.asymmetric_loss` instead
    (:func:`~focalkit.tools.experiments.variants.asl_batch_loss`).
    """
    if asl is not None:
        return variants.asl_batch_loss(task, logits, y, num_classes=num_classes, **asl)
    extra: dict[str, Any] = {"epsilon": epsilon} if epsilon else {}
    if task == "binary":
        return fk.sigmoid_focal_loss(logits[:, 0], y.to(logits.dtype), alpha=alpha, gamma=gamma, **extra)
    if task == "multiclass":
        return fk.softmax_focal_loss(logits, y, alpha=alpha, gamma=gamma, **extra)
    if task == "dense":
        norm = fk.num_positives(y, num_classes)
        return fk.sigmoid_focal_loss(
            logits, y, alpha=alpha, gamma=gamma, reduction="sum", normalizer=norm, **extra
        )
    raise ValueError(f"unknown task {task!r}")


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str, model: nn.Module, ds: Dataset, meta: dict[str, Any]) -> None:
    """Save ``model``'s weights with what :func:`load_checkpoint` checks (plain types only)."""
    module = model.module if hasattr(model, "module") else model
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "signature": model_signature(ds),
            "state_dict": {k: v.detach().cpu().clone() for k, v in module.state_dict().items()},
            "meta": meta,
        },
        path,
    )


def load_checkpoint(path: str, ds: Dataset) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``) for ``ds``.

    Raises:
        ValueError: missing/unreadable file, another format, or a model that does not fit ``ds``.
    """
    if not os.path.isfile(path):
        raise ValueError(f"--init-from: no such file {path!r}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        raise ValueError(f"--init-from: cannot load {path!r} safely (weights_only=True): {e}") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"--init-from: {path!r} is not a model saved by 'focalkit compare --save'")
    want = model_signature(ds)
    if ck.get("signature") != want:
        raise ValueError(
            f"--init-from: {path!r} holds a model for {ck.get('signature')}, the data need {want} "
            f"(saved on {ck.get('meta', {}).get('dataset')!r}, loading for {ds.name!r})"
        )
    return ck


# ----------------------------------------------------------------------------- training


def _standardizer(ds: Dataset, train_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if ds.task == "dense":
        return None
    x = ds.X[train_idx].astype(np.float64)
    mean = x.mean(0)
    std = x.std(0)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _features(ds: Dataset, idx: np.ndarray, stats) -> Tensor:
    x = ds.X[idx]
    if stats is not None:
        x = (x - stats[0]) / stats[1]
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


@torch.no_grad()
def predict_proba(model: nn.Module, ds: Dataset, idx: np.ndarray, *, stats=None, device: str = "cpu",
                  batch_size: int = 256) -> np.ndarray:
    """Probabilities on ``ds[idx]``: binary (n,), multiclass (n, C) softmax, dense (n, C, h, w) sigmoid."""
    module = model.module if hasattr(model, "module") else model
    was_training = module.training
    module.eval()
    out = []
    for s in range(0, len(idx), batch_size):
        logits = module(_features(ds, idx[s : s + batch_size], stats).to(device)).float()
        if ds.task == "multiclass":
            out.append(torch.softmax(logits, 1).cpu())
        else:
            out.append(torch.sigmoid(logits).cpu())
    module.train(was_training)
    p = torch.cat(out).numpy() if out else np.zeros((0,), np.float32)
    return p[:, 0] if ds.task == "binary" else p


def _prior_for(ds: Dataset, train_idx: np.ndarray, prior: float | str | None) -> float | list[float] | None:
    if prior is None:
        return None
    if prior != "auto":
        return float(prior)
    if ds.task == "dense":
        return PAPER_PRIOR
    counts = class_counts(ds, train_idx).astype(np.float64)
    freq = np.clip(counts / counts.sum(), 1e-4, 1 - 1e-4)
    return float(freq[1]) if ds.task == "binary" else freq.tolist()


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def fit_and_score(
    ds: Dataset,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    loss: LossSpec,
    *,
    seed: int = 0,
    epochs: int | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    device: str = "cpu",
    progress: bool = False,
    init_from: str | None = None,
    config: TrainConfig | None = None,
    prior: float | Literal["auto"] | None = "auto",
    on_progress: Callable[[int, int], None] | None = None,
    save: str | None = None,
    meta: dict[str, Any] | None = None,
    curves: bool = True,
    on_train_loss: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train the task's model with ``loss`` on ``train_idx`` and score it on ``val_idx``.

    The seed fixes the initialization (``torch.manual_seed(seed)``), and the batch order, so two
    losses with the same seed start from the same weights and see the same batches. The final
    classifier bias starts at :func:`focalkit.prior_bias` of ``prior`` (``"auto"``: the paper's
    0.01 on dense data, the training class frequencies on tables; ``None``: PyTorch's default
    init), unless ``init_from`` loads a saved model.

    Args:
        ds: the data (:func:`~focalkit.tools.experiments.data.load_data`).
        train_idx, val_idx: example (image) indices.
        loss: the :class:`LossSpec`.
        seed: initialization and batch-order seed.
        epochs: overrides the task's default (:func:`default_config`).
        on_epoch: called as ``on_epoch(epoch, val_metrics)`` after each epoch (1-based) with
            ``ap, f1, balanced_accuracy, ece, brier, loss``; may raise (e.g. ``optuna.TrialPruned``)
            to stop training.
        device: torch device.
        progress: show a rich progress bar (rank 0 only).
        init_from: path of a model saved with ``save`` to start from.
        config: optimization settings (default :func:`default_config`).
        prior: see above.
        on_progress: called as ``on_progress(epochs_done, epochs_total)``.
        save: write the trained model to this path (rank 0).
        meta: extra metadata stored with ``save``.
        curves: include PR curves and reliability bins in the result.
        on_train_loss: called as ``on_train_loss(epoch, mean_training_loss)`` after each epoch
            (1-based), before ``on_progress``; costs nothing (no evaluation) and may raise to stop.

    Returns:
        ``{"ap", "f1", "balanced_accuracy", "ece", "brier", "train_time", "loss_curve",
        "pr_curve", "reliability", "per_class", "alpha", "epochs", "seed", "loss"}``: metrics on
        ``val_idx`` after the last epoch; ``loss_curve`` holds the mean training loss per epoch;
        ``train_time`` the seconds spent training (evaluation excluded).

    Example:
        >>> from focalkit.tools.experiments.data import load_data, train_test_split
        >>> ds = load_data("digits")
        >>> tr, te = train_test_split(ds, seed=0)
        >>> r = fit_and_score(ds, tr, te, LossSpec("focal", gamma=2.0), epochs=2)
        >>> 0.0 <= r["ap"] <= 1.0
        True
    """
    if not isinstance(loss, LossSpec):
        raise TypeError(f"loss must be a LossSpec, got {type(loss).__name__}")
    train_idx = np.asarray(train_idx, dtype=np.int64)
    val_idx = np.asarray(val_idx, dtype=np.int64)
    if train_idx.size == 0 or val_idx.size == 0:
        raise ValueError("train_idx and val_idx must not be empty")
    cfg = config or default_config(ds)
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {epochs!r}")
        cfg = TrainConfig(**{**cfg.to_dict(), "epochs": epochs})
    rank, world = _rank_world()

    alpha = resolve_alpha(loss, ds, train_idx)
    alpha_dev = alpha.to(device) if isinstance(alpha, Tensor) else alpha
    gamma = loss.gamma_value
    asl = dict(gamma_pos=loss.gamma, gamma_neg=loss.gamma_neg, clip=loss.clip) if loss.kind == "asl" else None

    model = build_model(ds, seed=seed).to(device)
    pi = _prior_for(ds, train_idx, prior)
    if init_from is not None:
        ck = load_checkpoint(init_from, ds)
        model.load_state_dict(ck["state_dict"])
    elif pi is not None:
        init_prior_bias(model, pi)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[torch.device(device).index] if torch.device(device).type == "cuda" else None)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    stats = _standardizer(ds, train_idx)
    x_all = _features(ds, train_idx, stats)
    y_all = torch.from_numpy(ds.y[train_idx])
    gen = torch.Generator().manual_seed(seed)

    bar = None
    if progress and rank == 0:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        bar_task = bar.add_task(loss.name, total=cfg.epochs)

    loss_curve: list[float] = []
    train_time = 0.0
    n = len(train_idx)
    try:
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            t0 = time.perf_counter()
            order = torch.randperm(n, generator=gen)
            total, steps = torch.zeros((), dtype=torch.float64), 0
            for s in range(0, n, cfg.batch_size):
                if world == 1:
                    cancel.check()
                batch = order[s : s + cfg.batch_size]
                local = batch[rank::world]  # this rank's share of the global batch
                xb = x_all[local].to(device)
                yb = y_all[local].to(device)
                out = model(xb)
                lval = compute_loss(ds.task, out, yb, alpha=alpha_dev, gamma=gamma, num_classes=ds.num_classes,
                                    epsilon=loss.epsilon, asl=asl)
                opt.zero_grad(set_to_none=True)
                lval.backward()
                opt.step()
                total += lval.detach().double().cpu()
                steps += 1
            if world > 1:  # the mean loss, and whether any rank was asked to stop
                both = torch.stack([total, torch.tensor(float(cancel.requested() is not None),
                                                        dtype=torch.float64)])
                dist.all_reduce(both)
                total = both[0] / world
                if both[1] > 0:
                    cancel.request("another rank was asked to stop")
                    cancel.check()
            train_time += time.perf_counter() - t0
            mean_loss = float(total) / max(steps, 1)
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"{loss.name}: the training loss became {mean_loss} in epoch {epoch}")
            loss_curve.append(mean_loss)
            if on_train_loss is not None:
                on_train_loss(epoch, mean_loss)
            if bar is not None:
                bar.update(bar_task, advance=1)
            if on_progress is not None:
                on_progress(epoch, cfg.epochs)
            if on_epoch is not None:
                p = predict_proba(model, ds, val_idx, stats=stats, device=device)
                m = evaluate(ds.task, p, ds.y[val_idx], num_classes=ds.num_classes,
                             rare_classes=ds.rare_classes, curves=False)
                on_epoch(epoch, {k: m[k] for k in ("ap", "f1", "balanced_accuracy", "ece", "brier")} | {"loss": mean_loss})
    finally:
        if bar is not None:
            bar.stop()

    p = predict_proba(model, ds, val_idx, stats=stats, device=device)
    result = evaluate(ds.task, p, ds.y[val_idx], num_classes=ds.num_classes,
                      rare_classes=ds.rare_classes, curves=curves)
    if world > 1:  # the slowest rank's time
        t = torch.tensor([train_time], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        train_time = float(t)
    if isinstance(alpha, Tensor):
        alpha_out: Any = [round(float(v), 6) for v in alpha]
    else:
        alpha_out = alpha
    result.update(
        train_time=train_time,
        loss_curve=loss_curve,
        alpha=alpha_out,
        prior=pi if init_from is None else None,
        epochs=cfg.epochs,
        seed=seed,
        loss=loss.name,
    )
    if save is not None and rank == 0:
        save_checkpoint(save, model, ds, {"dataset": ds.name, "loss": loss.to_dict(), "seed": seed,
                                          "epochs": cfg.epochs, **(meta or {})})
    return result
