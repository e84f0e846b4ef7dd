"""``focalkit compare``: cross-entropy against focal loss, same model, same seeds, honest verdicts.

For each seed s the data are split with seed s (stratified for classification), the model is
initialized with ``torch.manual_seed(s)`` and the batches come in the same order, and each loss in
the list trains from there. Metrics on the held-out part (see
:mod:`focalkit.tools.experiments.metrics`) are summarized as mean and standard deviation over seeds;
a loss wins a metric only if its mean +- sd interval does not overlap the runner-up's, otherwise
the verdict is "no clear difference".
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

import focalkit as fk
from focalkit import _validation as V
from focalkit.tools._format import format_metric
from focalkit.tools._paths import check_output_dir
from focalkit.tools.experiments.data import Dataset, load_data, train_test_split
from focalkit.tools.experiments import variants
from focalkit.tools.experiments.metrics import HIGHER_IS_BETTER, METRICS
from focalkit.tools.experiments.train import (
    LossSpec,
    default_config,
    fit_and_score,
    load_checkpoint,
    resolve_alpha,
)

__all__ = [
    "CompareConfig",
    "build_losses",
    "run_compare",
    "summarize",
    "verdicts",
    "headline",
    "write_json",
    "render_table",
    "METRIC_LABELS",
    "COMPARE_GAMMAS",
    "LOSS_KINDS",
    "ALL_LOSS_KINDS",
    "BALANCED_GRID",
]

METRIC_LABELS = {
    "ap": "AP",
    "f1": "F1",
    "balanced_accuracy": "bal.acc",
    "ece": "ECE",
    "brier": "Brier",
    "train_time": "time (s)",
}
COMPARE_GAMMAS = (0.5, 1.0, 2.0, 5.0)
#: The default losses (and the kinds the studio offers).
LOSS_KINDS = ("ce", "balanced_ce", "focal")
#: Every kind ``--losses`` accepts: the defaults and the focal family (:mod:`.variants`).
ALL_LOSS_KINDS = LOSS_KINDS + variants.VARIANT_KINDS
#: The balanced-CE alphas tried beside the automatic one with ``balanced_grid``: sigmoid tasks
#: (binary, dense) get the positive weights 0.25 and 0.75 (0.5 is CE up to a factor, which Adam
#: undoes), multi-class tasks the other two class-weight methods of :func:`focalkit.class_weights`.
BALANCED_GRID: dict[str, tuple[Any, ...]] = {"sigmoid": (0.25, 0.75),
                                             "multiclass": ("inverse", "inverse_sqrt", "effective_number")}


@dataclass
class CompareConfig:
    """Everything that defines a comparison (stored in the JSON).

    Attributes:
        data: ``"dense"``, ``"digits"`` or a ``.csv``/``.npz`` path.
        target: CSV label column.
        data_seed: seed of the built-in data generation / subsampling.
        seeds: training seeds (split, initialization, batch order).
        losses: loss kinds in order, from ``"ce"``, ``"balanced_ce"``, ``"focal"``.
        gammas: focal gammas (one focal loss each).
        alpha: focal alpha: None = automatic (0.25 on sigmoid tasks, class weights on
            multiclass), a float (sigmoid) or a list (per class), ``"off"``.
        balanced_alpha: balanced-CE alpha: None = class-balanced weights from the training counts.
        alpha_method: :func:`focalkit.class_weights` method for automatic weights.
        prior: classifier-bias prior: ``"auto"``, a float in (0, 1), or None (no prior init).
        epochs: overrides the task's default number of epochs.
        test_fraction: held-out fraction.
        init_from: a model saved by ``--save`` to start every run from.
        save: directory to save each trained model to.
        device: torch device.
        model: ``"net"`` (the task's small neural net) or a gradient-boosting engine,
            ``"lightgbm"``, ``"xgboost"``, ``"catboost"`` (:mod:`~focalkit.tools.experiments.boosting`).
        rounds: boosting rounds (default 200); boosting only.
        balanced_grid: with the automatic ``balanced_alpha``, give the cross-entropy family as many
            tries as focal loss: balanced CE also with each alpha of :data:`BALANCED_GRID` (the
            command line's default; off here so that a config means what it says).
        epsilon, poly_gamma: Poly-1's epsilon (>= -1) and gamma (``poly1``; gamma 0 = Poly-1 CE).
        asl_gamma_pos, asl_gamma_neg, asl_clip: the asymmetric loss's parameters (``asl``).
    """

    data: str = "dense"
    target: str | None = None
    data_seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    losses: list[str] = field(default_factory=lambda: list(LOSS_KINDS))
    gammas: list[float] = field(default_factory=lambda: list(COMPARE_GAMMAS))
    alpha: float | list[float] | str | None = None
    balanced_alpha: float | list[float] | None = None
    alpha_method: str = "inverse"
    prior: float | str | None = "auto"
    epochs: int | None = None
    test_fraction: float = 0.3
    init_from: str | None = None
    save: str | None = None
    device: str = "cpu"
    model: str = "net"
    rounds: int | None = None
    balanced_grid: bool = False
    epsilon: float = variants.POLY1_DEFAULTS["epsilon"]
    poly_gamma: float = variants.POLY1_DEFAULTS["gamma"]
    asl_gamma_pos: float = variants.ASL_DEFAULTS["gamma_pos"]
    asl_gamma_neg: float = variants.ASL_DEFAULTS["gamma_neg"]
    asl_clip: float = variants.ASL_DEFAULTS["clip"]

    def validate(self) -> None:
        from focalkit.tools.experiments.boosting import MODELS

        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.model != "net":
            if self.init_from is not None or self.save is not None:
                raise ValueError(f"--save/--init-from need --model net (got {self.model})")
            if self.epochs is not None:
                raise ValueError(f"--epochs sets the net's training; boosting takes --rounds (--model {self.model})")
        elif self.rounds is not None:
            raise ValueError("--rounds sets boosting rounds; it needs --model lightgbm, xgboost or catboost")
        if self.rounds is not None and (isinstance(self.rounds, bool) or not isinstance(self.rounds, int)
                                        or self.rounds < 1):
            raise ValueError(f"rounds must be a positive int, got {self.rounds!r}")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        bad = [k for k in self.losses if k not in ALL_LOSS_KINDS]
        if bad or not self.losses:
            raise ValueError(f"losses must be a non-empty list of {ALL_LOSS_KINDS}, got {self.losses}")
        if self.model != "net" and set(self.losses) & set(variants.VARIANT_KINDS):
            raise ValueError(f"losses {', '.join(variants.VARIANT_KINDS)} need --model net (got {self.model})")
        self.epsilon = variants.check_epsilon(self.epsilon, "epsilon")
        for name in ("poly_gamma", "asl_gamma_pos", "asl_gamma_neg"):
            setattr(self, name, V.check_float_gamma(getattr(self, name), name))
        self.asl_clip = variants.check_clip(self.asl_clip, "asl_clip")
        if len(set(self.losses)) != len(self.losses):
            raise ValueError(f"losses must not repeat, got {self.losses}")
        if "focal" in self.losses and not self.gammas:
            raise ValueError("gammas must not be empty when 'focal' is compared")
        for g in self.gammas:
            if not math.isfinite(g) or g < 0:
                raise ValueError(f"gammas must be finite and >= 0, got {g}")
        if self.prior not in ("auto", None):
            if not isinstance(self.prior, (int, float)) or not 0 < float(self.prior) < 1:
                raise ValueError(f"prior must be 'auto', 'off' or a probability in (0, 1), got {self.prior!r}")
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise ValueError(f"epochs must be a positive int, got {self.epochs!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.save is not None:
            check_output_dir("save", self.save)


def _balanced_specs(cfg: CompareConfig, task: str | None) -> list[LossSpec]:
    one = LossSpec("balanced_ce", alpha=cfg.balanced_alpha, alpha_method=cfg.alpha_method)
    if not cfg.balanced_grid or cfg.balanced_alpha is not None:
        return [one]
    if task is None:
        raise ValueError("balanced_grid needs the task (build_losses(cfg, task=...))")
    if task == "multiclass":
        return [one] + [LossSpec("balanced_ce", alpha_method=m, name=f"balanced CE {m}")
                        for m in BALANCED_GRID["multiclass"] if m != cfg.alpha_method]
    return [one] + [LossSpec("balanced_ce", alpha=a) for a in BALANCED_GRID["sigmoid"]]


def build_losses(cfg: CompareConfig, task: str | None = None) -> list[LossSpec]:
    """The :class:`LossSpec` list of a comparison, in ``cfg.losses`` order (one focal per gamma).

    ``task`` (``"binary"``, ``"multiclass"``, ``"dense"``) is needed for ``cfg.balanced_grid``
    (the grid depends on it).

    Example:
        >>> [s.name for s in build_losses(CompareConfig(gammas=[1.0, 2.0]))]
        ['CE', 'balanced CE', 'focal γ=1', 'focal γ=2']
        >>> [s.name for s in build_losses(CompareConfig(losses=["ce", "balanced_ce"], balanced_grid=True), "dense")]
        ['CE', 'balanced CE', 'balanced CE α=0.25', 'balanced CE α=0.75']
    """
    specs: list[LossSpec] = []
    for kind in cfg.losses:
        if kind == "ce":
            specs.append(LossSpec("ce"))
        elif kind == "balanced_ce":
            specs.extend(_balanced_specs(cfg, task))
        elif kind == "focal":
            for g in cfg.gammas:
                specs.append(LossSpec("focal", gamma=float(g), alpha=cfg.alpha, alpha_method=cfg.alpha_method))
        elif kind == "poly1":
            alpha = cfg.alpha if cfg.poly_gamma > 0 else None  # Poly-1 CE: no alpha, as CE
            specs.append(LossSpec("poly1", gamma=cfg.poly_gamma, epsilon=cfg.epsilon, alpha=alpha,
                                  alpha_method=cfg.alpha_method))
        elif kind == "flsd53":
            specs.append(LossSpec("flsd53", alpha=cfg.alpha, alpha_method=cfg.alpha_method))
        else:
            specs.append(LossSpec("asl", gamma=cfg.asl_gamma_pos, gamma_neg=cfg.asl_gamma_neg, clip=cfg.asl_clip))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"the losses repeat: {names}")
    return specs


def _slug(name: str) -> str:
    s = name.replace("γ", "gamma").replace("α", "alpha")
    return re.sub(r"[^A-Za-z0-9.]+", "-", s).strip("-").lower()


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy -> Python, dict keys -> str."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    return x


def summarize(runs: list[dict], names: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per loss and metric: ``{"mean", "std", "values"}`` over seeds (sample sd, 0 for one seed)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in names:
        mine = [r for r in runs if r["loss"] == name]
        out[name] = {}
        for m in METRICS:
            vals = np.array([r[m] if r[m] is not None else np.nan for r in mine], np.float64)
            ok = vals[np.isfinite(vals)]
            out[name][m] = {
                "mean": float(ok.mean()) if ok.size else float("nan"),
                "std": float(ok.std(ddof=1)) if ok.size > 1 else 0.0,
                "values": vals.tolist(),
            }
    return out


def verdicts(summary: dict[str, dict[str, dict[str, Any]]], n_seeds: int) -> dict[str, dict[str, Any]]:
    """Per metric: the best loss by mean, and whether it is clearly best.

    "Clearly best" needs at least two seeds and a mean +- sd interval that does not overlap the
    runner-up's; otherwise the verdict is "no clear difference" (with the losses whose intervals
    overlap the best one's).

    Example:
        >>> s = {n: {m: {"mean": mu, "std": 0.01} for m in METRICS} for n, mu in [("CE", 0.5), ("focal", 0.6)]}
        >>> verdicts(s, n_seeds=3)["ap"]["text"]
        'focal wins: 0.600 ± 0.010 vs CE 0.500 ± 0.010 (intervals do not overlap)'
    """
    out: dict[str, dict[str, Any]] = {}
    names = list(summary)
    for m in METRICS:
        higher = HIGHER_IS_BETTER[m]
        scored = [(n, summary[n][m]["mean"], summary[n][m]["std"]) for n in names
                  if math.isfinite(summary[n][m]["mean"])]
        if not scored:
            out[m] = {"best": None, "clear": False, "text": "no result"}
            continue
        scored.sort(key=lambda t: -t[1] if higher else t[1])
        best, bm, bs = scored[0]
        lo, hi = bm - bs, bm + bs
        ties = [n for n, mu, sd in scored[1:] if mu + sd >= lo and mu - sd <= hi]
        clear = n_seeds >= 2 and not ties and len(scored) > 1
        fmt = _fmt_value(m)
        if len(scored) == 1:
            text = f"{best} ({fmt(bm)} ± {fmt(bs)}), the only loss"
        elif n_seeds < 2:
            text = f"{best} has the best value ({fmt(bm)}), but one seed gives no spread: no clear difference can be claimed"
        elif clear:
            ru, rm, rs = scored[1]
            text = f"{best} wins: {fmt(bm)} ± {fmt(bs)} vs {ru} {fmt(rm)} ± {fmt(rs)} (intervals do not overlap)"
        else:
            text = (f"no clear difference: best mean {best} {fmt(bm)} ± {fmt(bs)}, overlapping "
                    + ", ".join(f"{n} {fmt(summary[n][m]['mean'])} ± {fmt(summary[n][m]['std'])}" for n in ties[:4])
                    + (f" and {len(ties) - 4} more" if len(ties) > 4 else ""))
        out[m] = {"best": best, "clear": bool(clear), "ties": ties, "text": text}
    return out


def headline(summary: dict[str, dict[str, dict[str, Any]]], losses: Sequence[LossSpec], n_seeds: int,
             metric: str = "ap") -> str:
    """The answer to "does focal loss help here?" on ``metric`` (AP by default).

    Compares the focal loss with the best mean against the best of the cross-entropies (CE and
    every balanced CE) with the same interval rule as :func:`verdicts`. The family's other members
    (Poly-1, FLSD-53, ASL) are in the table and the per-metric verdicts, not in this answer.
    """
    focal = [s.name for s in losses if s.kind == "focal"]
    ces = [s.name for s in losses if s.kind in ("ce", "balanced_ce")]
    if not focal or not ces:
        return ""
    higher = HIGHER_IS_BETTER[metric]
    key = (lambda n: summary[n][metric]["mean"]) if higher else (lambda n: -summary[n][metric]["mean"])
    f = max(focal, key=key)
    c = max(ces, key=key)
    fm, fs = summary[f][metric]["mean"], summary[f][metric]["std"]
    cm, cs = summary[c][metric]["mean"], summary[c][metric]["std"]
    fmt = _fmt_value(metric)
    label = METRIC_LABELS[metric]
    pair = f"best focal ({f}) {label} {fmt(fm)} ± {fmt(fs)} vs best cross-entropy ({c}) {fmt(cm)} ± {fmt(cs)}"
    if n_seeds < 2:
        return f"{pair}: one seed, no spread, so no clear difference can be claimed"
    if fm - fs > cm + cs if higher else fm + fs < cm - cs:
        return f"{pair}: focal loss helps here (the intervals do not overlap)"
    if cm - cs > fm + fs if higher else cm + cs < fm - fs:
        return f"{pair}: cross-entropy is better here (the intervals do not overlap)"
    return f"{pair}: no clear difference"


def _fmt_value(metric: str) -> Callable[[float], str]:
    return lambda v: format_metric(metric, v)


def render_table(result: dict[str, Any]):
    """A rich Table of mean ± sd per loss and metric, the best mean per column in bold with ``*``."""
    from rich.table import Table

    summary, verd = result["summary"], result["verdicts"]
    n_seeds = len(result["seeds"])
    t = Table(title=f"{result['dataset']['name']}: held-out metrics, mean ± sd over {n_seeds} seed(s)")
    t.add_column("loss", no_wrap=True)
    for m in METRICS:
        arrow = "↑" if HIGHER_IS_BETTER[m] else "↓"
        t.add_column(f"{METRIC_LABELS[m]} {arrow}", justify="right", no_wrap=True, min_width=11)
    for name in summary:
        cells = [name]
        for m in METRICS:
            s = summary[name][m]
            fmt = _fmt_value(m)
            cell = f"{fmt(s['mean'])}±{fmt(s['std'])}" if math.isfinite(s["mean"]) else "n/a"
            if verd[m]["best"] == name:
                cell = f"[bold green]{cell} *[/]" if verd[m]["clear"] else f"[bold]{cell} *[/]"
            cells.append(cell)
        t.add_row(*cells)
    t.caption = (
        "AP, F1 (best threshold), ECE, Brier: rare classes, one-vs-rest, macro. * best mean "
        "(green: clearly best, its mean±sd interval overlaps no other). ↑/↓: higher/lower is better"
    )
    return t


def _split_for(ds: Dataset, cfg: CompareConfig, seed: int, ck_meta: dict | None) -> tuple[np.ndarray, np.ndarray]:
    if ck_meta is not None and ck_meta.get("split_seed") is not None and ck_meta.get("data") == cfg.data:
        return train_test_split(ds, test_fraction=float(ck_meta.get("test_fraction", cfg.test_fraction)),
                                seed=int(ck_meta["split_seed"]))
    return train_test_split(ds, test_fraction=cfg.test_fraction, seed=seed)


def prepare(cfg: CompareConfig) -> tuple[Dataset, list[LossSpec], dict | None, list[str]]:
    """Load and check everything before training: data, losses, alphas, checkpoint.

    Returns ``(dataset, losses, checkpoint meta or None, notes)``. Raises ValueError (including
    :class:`~focalkit.tools.experiments.data.DataError`) with a one-line message on bad input.
    """
    cfg.validate()
    ds = load_data(cfg.data, target=cfg.target, seed=cfg.data_seed)
    if cfg.model != "net":
        from focalkit.tools.experiments.boosting import check_model

        check_model(cfg.model, ds)
    notes: list[str] = []
    skipped = [(k, variants.not_applicable(k, ds.task)) for k in cfg.losses]
    skipped = [(k, why) for k, why in skipped if why is not None]
    if skipped:
        if len(skipped) == len(cfg.losses):
            raise ValueError("; ".join(why for _, why in skipped).replace("; left out", "")
                             + f" ({ds.name} is a {ds.task} task)")
        notes += [why for _, why in skipped]
        cfg.losses = [k for k in cfg.losses if k not in dict(skipped)]
    specs = build_losses(cfg, ds.task)
    ck_meta = None
    if cfg.init_from is not None:
        ck_meta = load_checkpoint(cfg.init_from, ds).get("meta", {})
        if ck_meta.get("data") == cfg.data and ck_meta.get("split_seed") is not None:
            notes.append(
                f"--init-from: every seed uses the saved model's split (seed {ck_meta['split_seed']}) so the "
                "held-out data were not seen by the saved model; seeds vary the batch order only"
            )
        else:
            notes.append(
                "--init-from: the saved model was trained on other data or an unknown split; the held-out "
                "metrics may include examples it has seen"
            )
    tr, _ = _split_for(ds, cfg, cfg.seeds[0], ck_meta)
    for s in specs:  # fail early on an alpha that does not fit the data
        resolve_alpha(s, ds, tr)
    return ds, specs, ck_meta, notes


def run_compare(
    cfg: CompareConfig,
    *,
    on_run_start: Callable[[int, int, LossSpec, int], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    prepared: tuple | None = None,
    on_train_loss: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train every loss for every seed and summarize (see the module docstring).

    Args:
        cfg: the comparison.
        on_run_start: called as ``(run_index, n_runs, loss, seed)`` before each training run.
        on_progress: forwarded to :func:`~focalkit.tools.experiments.train.fit_and_score` (epochs).
        prepared: the result of :func:`prepare`, if already called.
        on_train_loss: forwarded to :func:`~focalkit.tools.experiments.train.fit_and_score`:
            ``(epoch, mean training loss)`` after each epoch of the current run.

    Returns:
        A JSON-ready dict: ``config``, ``dataset``, ``train_config``, ``seeds``, ``losses``,
        ``runs`` (every metric, curve, alpha of each loss and seed), ``summary``, ``verdicts``,
        ``environment``, ``elapsed``.
    """
    t0 = time.perf_counter()
    ds, specs, ck_meta, notes = prepared if prepared is not None else prepare(cfg)
    if cfg.model != "net":
        return _run_boosting(cfg, ds, specs, notes, t0, on_run_start, on_progress)
    tcfg = default_config(ds)
    if cfg.epochs is not None:
        tcfg.epochs = cfg.epochs
    world = int(torch.distributed.get_world_size()) if torch.distributed.is_available() and torch.distributed.is_initialized() else 1
    runs: list[dict] = []
    n_runs = len(specs) * len(cfg.seeds)
    i = 0
    for seed in cfg.seeds:
        tr, te = _split_for(ds, cfg, seed, ck_meta)
        for spec in specs:
            if on_run_start is not None:
                on_run_start(i, n_runs, spec, seed)
            save = None
            if cfg.save is not None:
                save = os.path.join(cfg.save, f"{ds.name.replace(os.sep, '_')}-{_slug(spec.name)}-seed{seed}.pt")
            r = fit_and_score(
                ds, tr, te, spec, seed=seed, epochs=tcfg.epochs, device=cfg.device,
                init_from=cfg.init_from, prior=cfg.prior, on_progress=on_progress, save=save,
                on_train_loss=on_train_loss,
                meta={"data": cfg.data, "data_seed": cfg.data_seed, "split_seed": seed,
                      "test_fraction": cfg.test_fraction},
            )
            r["n_train"], r["n_test"] = int(len(tr)), int(len(te))
            if save is not None:
                r["saved"] = save
            runs.append(r)
            i += 1
    environment = {
        "focalkit": fk.__version__, "torch": torch.__version__, "python": platform.python_version(),
        "platform": platform.platform(), "threads": torch.get_num_threads(), "world_size": world,
        "backend": fk.get_backend(), "available_backends": fk.available_backends(), "device": cfg.device,
    }
    train_config = tcfg.to_dict() | {"optimizer": "Adam", "prior": cfg.prior}
    return _result(cfg, ds, specs, runs, notes, train_config, environment, t0)


def _result(cfg: CompareConfig, ds: Dataset, specs: list[LossSpec], runs: list[dict], notes: list[str],
            train_config: dict[str, Any], environment: dict[str, Any], t0: float) -> dict[str, Any]:
    names = [s.name for s in specs]
    summary = summarize(runs, names)
    result = {
        "tool": "focalkit compare",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "config": asdict(cfg),
        "dataset": {
            "name": ds.name, "task": ds.task, "description": ds.description, "n": len(ds),
            "num_classes": ds.num_classes, "rare_classes": ds.rare_classes,
            "class_names": ds.class_names,
        },
        "train_config": train_config,
        "seeds": list(cfg.seeds),
        "losses": [s.to_dict() for s in specs],
        "runs": runs,
        "summary": summary,
        "verdicts": verdicts(summary, len(cfg.seeds)),
        "headline": headline(summary, specs, len(cfg.seeds)),
        "tries": variants.budget(specs),
        "notes": notes,
        "environment": environment,
    }
    result["elapsed"] = time.perf_counter() - t0
    return _clean(result)


def _run_boosting(cfg: CompareConfig, ds: Dataset, specs: list[LossSpec], notes: list[str], t0: float,
                  on_run_start: Callable | None, on_progress: Callable | None) -> dict[str, Any]:
    """:func:`run_compare` with a gradient-boosting engine in place of the net."""
    from focalkit.gbdt import DEFAULT_HESSIAN
    from focalkit.tools.experiments.boosting import BoostConfig, fit_and_score_boosting

    bcfg = BoostConfig() if cfg.rounds is None else BoostConfig(rounds=cfg.rounds)
    runs: list[dict] = []
    i = 0
    for seed in cfg.seeds:
        tr, te = train_test_split(ds, test_fraction=cfg.test_fraction, seed=seed)
        for spec in specs:
            if on_run_start is not None:
                on_run_start(i, len(specs) * len(cfg.seeds), spec, seed)
            r = fit_and_score_boosting(ds, tr, te, spec, engine=cfg.model, seed=seed, config=bcfg, prior=cfg.prior,
                                       on_progress=on_progress)
            r["n_train"], r["n_test"] = int(len(tr)), int(len(te))
            runs.append(r)
            i += 1
    train_config = bcfg.to_dict() | {
        "model": cfg.model, "prior": cfg.prior, "init": "class prior of the training split (margin)",
        "ce": f"{cfg.model}'s own logloss/softmax objective", "balanced_ce": "the same with alpha_t example weights",
        "focal": f"focalkit.gbdt focal objective, hessian={DEFAULT_HESSIAN!r}", "curve_unit": "round",
    }
    environment = {"focalkit": fk.__version__, cfg.model: __import__(cfg.model).__version__,
                   "python": platform.python_version(), "platform": platform.platform(), "device": "cpu",
                   "threads": bcfg.threads}
    return _result(cfg, ds, specs, runs, notes, train_config, environment, t0)


def write_json(result: dict[str, Any], path: str) -> None:
    """Write the result (already JSON-safe) to ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
