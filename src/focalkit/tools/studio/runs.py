"""What a run is: the request the page (or a script) posts, checked and turned into a command.

A ``compare`` run becomes a :class:`~focalkit.tools.experiments.compare.CompareConfig` built as
``focalkit compare`` builds it from its options, and the equivalent command line is recorded with
the run (the page shows it; running it prints the same numbers). A ``tune`` run is the
``focalkit tune`` command itself, run in a process of its own with its study in the run's folder.
Bad input raises :class:`BadRequest` with one line in the command line's wording.
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BadRequest", "RunRequest", "compare_spec", "tune_spec", "label"]

Number = Union[float, list[float], str]


class BadRequest(ValueError):
    """Input that cannot be run; the message is shown as is (HTTP 400)."""


class RunRequest(BaseModel):
    """``POST /api/runs``: a comparison (``kind="compare"``, the default) or a tuning study."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["compare", "tune"] = Field("compare", description="'compare' (focalkit compare) or 'tune' (focalkit tune).")
    dataset: str = Field(..., description="A dataset id from GET /api/datasets: 'dense', 'digits' or an upload's id.")
    target: Optional[str] = Field(None, description="CSV label column (default: 'target', else the last column).")
    losses: list[str] = Field(["ce", "balanced_ce", "focal"], description="compare: loss kinds in order (ce, balanced_ce, focal).")
    gammas: list[float] = Field([0.5, 1.0, 2.0, 5.0], description="compare: focal gammas, one focal loss each.")
    seeds: int = Field(3, ge=1, le=1000, description="compare: number of training seeds.")
    first_seed: int = Field(0, ge=0, description="compare: seeds are first_seed, first_seed + 1, ...")
    epochs: Optional[int] = Field(None, ge=1, le=100000, description="Epochs of the net (default: the task's: dense 15, tables 60).")
    model: str = Field("net", description="'net' (the task's small neural net) or a gradient-boosting engine: lightgbm, xgboost, catboost.")
    rounds: Optional[int] = Field(None, ge=1, le=100000, description="Boosting rounds (default 200); with a boosting model.")
    alpha: Number = Field("auto", description="compare: focal alpha: 'auto', 'off', a number or per-class numbers.")
    balanced_alpha: Number = Field("auto", description="compare: balanced-CE alpha: 'auto', a number or per-class numbers.")
    alpha_method: str = Field("inverse", description="compare: automatic alpha method: inverse, inverse_sqrt, effective_number.")
    prior: Union[float, str] = Field("auto", description="compare: classifier-bias prior: 'auto', 'off' or a probability.")
    test_fraction: float = Field(0.3, description="compare: held-out fraction.")
    data_seed: int = Field(0, ge=0, description="Seed of the built-in data (and of tune's folds).")
    backend: str = Field("auto", description="compare: focalkit backend: auto, reference, eager, fused.")
    device: str = Field("auto", description="compare: auto, cpu, cuda, cuda:N.")
    n_trials: int = Field(30, ge=1, le=10000, description="tune: trial budget (finished trials, the 2 references included).")
    folds: int = Field(5, ge=2, le=100, description="tune: stratified folds.")
    metric: str = Field("ap", description="tune: ap, f1, balanced_accuracy (maximized) or ece (minimized).")
    seed: int = Field(0, ge=0, description="tune: model init, batch order and sampler seed.")
    gamma_min: float = Field(0.0, description="tune: lower bound of gamma.")
    gamma_max: float = Field(5.0, description="tune: upper bound of gamma.")
    alpha_min: Optional[float] = Field(None, description="tune: lower bound of alpha (or of the class-weight power).")
    alpha_max: Optional[float] = Field(None, description="tune: upper bound of alpha (or of the class-weight power).")
    prune: bool = Field(True, description="tune: median pruner on per-epoch validation scores.")


def _num(v: float) -> str:
    """A float as text that parses back to the same float."""
    return repr(float(v))


def _alpha(value: Number, what: str) -> float | list[float] | str | None:
    """'auto' -> None, 'off' -> 'off', numbers as the command line parses them (one value: a float)."""
    if isinstance(value, str):
        t = value.strip().lower()
        if t == "auto":
            return None
        if t in ("off", "none"):
            return "off"
        try:
            vals = [float(v) for v in t.replace(" ", "").split(",") if v != ""]
        except ValueError:
            raise BadRequest(f"{what} must be 'auto', 'off' or comma-separated numbers, got {value!r}") from None
        if not vals:
            raise BadRequest(f"{what} must not be empty")
    elif isinstance(value, list):
        vals = [float(v) for v in value]
        if not vals:
            raise BadRequest(f"{what} must not be empty")
    else:
        vals = [float(value)]
    if not all(math.isfinite(v) for v in vals):
        raise BadRequest(f"{what} must be finite, got {vals}")
    return vals[0] if len(vals) == 1 else vals


def _alpha_arg(a: float | list[float] | str | None) -> str:
    if a is None:
        return "auto"
    if a == "off":
        return "off"
    return ",".join(_num(v) for v in (a if isinstance(a, list) else [a]))


def _model_args(req: RunRequest) -> list[str]:
    model = req.model.strip().lower()
    out = [] if model == "net" else ["--model", model]
    return out + ([] if req.rounds is None else ["--rounds", str(req.rounds)])


def compare_spec(req: RunRequest, source: str) -> tuple[Any, str, str, list[str]]:
    """``(CompareConfig, backend, device, argv)`` of a compare request on ``source`` (checked as
    ``focalkit compare`` checks its options, in the same words with the API's field names)."""
    import focalkit as fk
    from focalkit.tools.experiments.compare import CompareConfig

    try:
        with fk.use_backend(req.backend):
            pass
    except (TypeError, ValueError) as e:
        raise BadRequest(f"backend: {e}") from None
    losses = [s.strip() for s in req.losses if s.strip()]
    if isinstance(req.prior, str):
        p = req.prior.strip().lower()
        if p not in ("auto", "off"):
            try:
                prior: Any = float(p)
            except ValueError:
                raise BadRequest(f"prior must be 'auto', 'off' or a probability in (0, 1), got {req.prior!r}") from None
        else:
            prior = None if p == "off" else "auto"
    else:
        prior = float(req.prior)
    if isinstance(prior, float) and not 0 < prior < 1:
        raise BadRequest(f"prior must be 'auto' or a probability in (0, 1), got {req.prior}")
    if not req.gammas and "focal" in losses:
        raise BadRequest("gammas must not be empty")
    alpha = _alpha(req.alpha, "alpha")
    balanced = _alpha(req.balanced_alpha, "balanced_alpha")
    if balanced == "off":
        raise BadRequest("balanced_alpha off is plain cross-entropy; use losses ['ce']")
    device = req.device.strip()
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise BadRequest(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise BadRequest(f"device {device}: CUDA is not available here (use device cpu or auto)")
    cfg = CompareConfig(
        data=source, target=req.target, data_seed=req.data_seed,
        seeds=list(range(req.first_seed, req.first_seed + req.seeds)), losses=losses,
        gammas=[float(g) for g in req.gammas] if "focal" in losses else [],
        alpha=alpha, balanced_alpha=balanced, alpha_method=req.alpha_method, prior=prior,
        epochs=req.epochs, test_fraction=req.test_fraction, device=device,
        model=req.model.strip().lower(), rounds=req.rounds,
    )
    try:
        cfg.validate()
    except ValueError as e:
        raise BadRequest(str(e)) from None
    argv = ["focalkit", "compare", source]
    if req.target is not None:
        argv += ["--target", req.target]
    argv += ["--seeds", str(req.seeds), "--first-seed", str(req.first_seed), "--losses", ",".join(losses)]
    if "focal" in losses:
        argv += ["--gammas", ",".join(_num(g) for g in cfg.gammas)]
    argv += ["--alpha", _alpha_arg(alpha), "--balanced-alpha", _alpha_arg(balanced),
             "--alpha-method", req.alpha_method]
    if "balanced_ce" in losses and not cfg.balanced_grid:  # the command line's default is the grid
        argv += ["--no-balanced-grid"]
    argv += ["--no-prior-bias"] if prior is None else ["--prior", prior if prior == "auto" else _num(prior)]
    if req.epochs is not None:
        argv += ["--epochs", str(req.epochs)]
    argv += _model_args(req)
    argv += ["--test-fraction", _num(req.test_fraction), "--data-seed", str(req.data_seed),
             "--backend", req.backend, "--device", device]
    return cfg, req.backend, device, argv


def tune_spec(req: RunRequest, source: str, run_dir: Path, study: str) -> tuple[list[str], list[str]]:
    """``(argv to run, argv to show)`` of ``focalkit tune`` for a tune request.

    The run's study lives in ``run_dir/tune.db`` and its reports in ``run_dir``; the command shown
    uses the command line's default storage and output folder instead.
    """
    from focalkit.tools.experiments.metrics import TUNABLE_METRICS

    if req.metric not in TUNABLE_METRICS:
        raise BadRequest(f"metric must be one of {TUNABLE_METRICS}, got {req.metric!r}")
    lo, hi = req.gamma_min, req.gamma_max
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi):
        raise BadRequest(f"gamma_range must satisfy 0.0 <= low < high <= inf, got ({lo}, {hi})")
    common = [source] + (["--target", req.target] if req.target is not None else [])
    common += ["--metric", req.metric, "--folds", str(req.folds), "--n-trials", str(req.n_trials)]
    if req.epochs is not None:
        common += ["--epochs", str(req.epochs)]
    common += _model_args(req)
    common += ["--seed", str(req.seed), "--data-seed", str(req.data_seed),
               "--gamma-min", _num(lo), "--gamma-max", _num(hi)]
    if req.alpha_min is not None:
        common += ["--alpha-min", _num(req.alpha_min)]
    if req.alpha_max is not None:
        common += ["--alpha-max", _num(req.alpha_max)]
    common += ["--prune" if req.prune else "--no-prune", "--study", study]
    run = [sys.executable, "-m", "focalkit", "tune"] + common + [
        "--storage", f"sqlite:///{(run_dir / 'tune.db').resolve()}", "--out", str(run_dir.resolve())]
    shown = ["focalkit", "tune"] + common
    return run, shown


def label(req: RunRequest, dataset_name: str) -> str:
    """One line for the history list."""
    model = "" if req.model.strip().lower() == "net" else f"; {req.model.strip().lower()}"
    if req.kind == "tune":
        return f"tune {dataset_name}: {req.metric}, {req.n_trials} trials, {req.folds} folds{model}"
    kinds = {"ce": "CE", "balanced_ce": "balanced CE", "focal": "focal"}
    parts = [kinds.get(k, k) + (" γ=" + ",".join(f"{g:g}" for g in req.gammas) if k == "focal" else "")
             for k in req.losses]
    return f"{dataset_name}: {', '.join(parts)}; {req.seeds} seed(s){model}"


def join(argv: list[str]) -> str:
    """A command line as a shell would take it."""
    return shlex.join(argv)
