r"""Choose focal loss's gamma and alpha by k-fold cross-validation with Optuna.

The search (Lin et al. 2017 found gamma = 2, alpha = 0.25 best for RetinaNet, with the best alpha
falling as gamma grows; the best values depend on the model and the data):

* gamma in ``gamma_range`` (default [0, 5]) and either a scalar alpha in ``alpha_range`` (default
  [0.05, 0.95], the weight of positives) or, for C > 2 classes, an exponent
  :math:`s \in` ``alpha_power_range`` (default [0, 1]) on inverse class frequencies,

  .. math:: \alpha_c = C \, n_c^{-s} / \sum_{c'} n_{c'}^{-s},

  i.e. a per-class scaling of ``fk.class_weights(counts)`` (s = 0: uniform, s = 0.5:
  ``"inverse_sqrt"``, s = 1: ``"inverse"``);
* two fixed reference trials that are queued first: cross-entropy (gamma = 0, alpha off) and
  alpha-balanced cross-entropy (gamma = 0, alpha from the class counts);
* Optuna's TPE sampler and a median pruner fed with the intermediate validation scores (per epoch
  when ``train_and_score`` accepts a ``report`` keyword, otherwise the running mean over folds);
* the objective of a trial is the mean of ``train_and_score(gamma, alpha, fold)`` over the folds.

Storage and resumption: any Optuna RDB URL (``sqlite:///tune.db``, ``postgresql://...``). Each
trial records a heartbeat (``RDBStorage(heartbeat_interval=...)``); a trial left RUNNING by a
process that was killed is marked FAIL once its heartbeat is older than ``grace_period`` (at once
when the dead process ran on this host) and its parameters are queued again, so a kill loses at
most the running trial's work and re-running the same call resumes. Only finished trials
(COMPLETE, PRUNED, or FAIL because the score was not finite) count toward ``n_trials``; every
worker reserves a slot before training, so N workers on one storage finish exactly ``n_trials``.

Example:
    >>> from focalkit.tools.tune.api import tune
    >>> def train_and_score(gamma, alpha, fold):
    ...     return 1.0 - (gamma - 2.0) ** 2 / 25 - ((alpha or 0.5) - 0.25) ** 2
    >>> result = tune(train_and_score, n_trials=12, folds=2, storage=None, seed=0)
    >>> result.best.reference is None and 0.0 <= result.best.gamma <= 5.0
    True

Needs the ``tune`` extra (optuna, matplotlib): ``pip install 'focalkit[tune]'``.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import inspect
import io
import json
import math
import numbers
import os
import pickle
import socket
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from focalkit.tools._format import format_number, format_pm
from focalkit.tools.experiments.metrics import TUNABLE_METRICS
from focalkit.weights import inverse_power_weights

__all__ = [
    "DEFAULT_STORAGE",
    "TrialSummary",
    "TuneResult",
    "class_power_alpha",
    "collect",
    "load_result",
    "load_study",
    "tune",
    "tune_data",
    "DataObjective",
    "METRICS",
]

DEFAULT_STORAGE = "sqlite:///tune.db"
_ATTR = "focalkit_"  # prefix of the user attributes focalkit writes on studies and trials
_COUNTED_FAIL = "nonfinite"  # FAIL reason that still counts toward the budget
_POLL_S = 0.5
_ACTIVE_TRIAL_IDS: set[int] = set()  # trials this process is running right now


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrialSummary:
    """One finished trial: its parameters, its cross-validated score and the per-fold scores."""

    number: int
    state: str  # "COMPLETE" | "PRUNED" | "FAIL"
    gamma: float
    alpha: float | list[float] | None  # what train_and_score received
    alpha_param: float | None  # the searched coordinate: alpha (scalar) or the exponent s
    reference: str | None  # "ce" | "balanced_ce" | None
    value: float | None  # mean over folds (last intermediate value when pruned)
    fold_scores: list[float]
    std: float | None  # fold-to-fold standard deviation (ddof=1), None with < 2 folds
    duration_s: float | None

    @property
    def label(self) -> str:
        """A short human-readable name of the trial's loss."""
        if self.reference == "ce":
            return "cross-entropy"
        if self.reference == "balanced_ce":
            return "alpha-balanced CE"
        return f"focal gamma={self.gamma:.3g}, {_alpha_text(self)}"


def _alpha_text(t: TrialSummary) -> str:
    if t.alpha is None:
        return "alpha=off"
    if isinstance(t.alpha, list):
        return f"alpha power s={t.alpha_param:.3g}"
    return f"alpha={t.alpha:.3g}"


@dataclasses.dataclass
class TuneResult:
    """What :func:`tune` found.

    ``best`` is the best COMPLETE trial (a reference included); ``best_reference`` the better of
    the two cross-entropy references. ``improvement`` is how much better ``best`` is than
    ``best_reference`` (positive is better for either direction), ``spread`` the fold-to-fold
    standard deviation of ``best``'s scores and ``paired_std`` that of the per-fold differences
    best - reference (both computed on the same folds); ``exceeds_spread`` says whether
    ``improvement > spread``. Note that the best of many trials is optimistically biased: confirm
    it on held-out data before reporting it.
    """

    study: str
    storage: str | None
    metric: str
    direction: str
    n_trials: int  # counted (finished) trials
    n_pruned: int
    best: TrialSummary | None
    best_reference: TrialSummary | None
    references: dict[str, TrialSummary]
    improvement: float | None
    spread: float | None
    paired_std: float | None
    exceeds_spread: bool | None
    trials: list[TrialSummary]
    config: dict[str, Any]

    def top(self, k: int = 10) -> list[TrialSummary]:
        """The ``k`` best COMPLETE trials, best first."""
        done = [t for t in self.trials if t.state == "COMPLETE" and t.value is not None]
        return sorted(done, key=lambda t: t.value, reverse=self.direction == "maximize")[:k]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dictionary (what :meth:`to_json` writes)."""
        return _jsonable(dataclasses.asdict(self))

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`to_dict` as JSON to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2, allow_nan=False)
            f.write("\n")

    def summary(self) -> str:
        """A few lines: the best trial, its spread, and the comparison with cross-entropy."""
        lines = [
            f"study {self.study!r}: {self.n_trials} trials finished ({self.n_pruned} pruned), "
            f"objective: {self.direction} mean {self.metric} over {self.config.get('folds')} folds"
        ]
        if self.best is None:
            lines.append("no trial completed yet")
            return "\n".join(lines)
        b = self.best
        lines.append(f"best: {b.label} (trial {b.number}): {self.metric} = {format_pm(b.value, b.std)}")
        if self.best_reference is not None and self.improvement is not None:
            r = self.best_reference
            lines.append(f"best cross-entropy reference: {r.label}: {format_pm(r.value, r.std)}")
            if b.number == r.number:
                lines.append("no focal loss setting beat the cross-entropy references")
            else:
                verdict = "larger" if self.exceeds_spread else "NOT larger"
                lines.append(
                    f"improvement over it: {self.improvement:+.4g} ({verdict} than the fold-to-fold "
                    f"spread {format_number(self.spread)}; paired per-fold std {format_number(self.paired_std)})"
                )
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike[str] | None = None, *, ax: Any = None) -> Any:
        """Objective over the (gamma, alpha) plane: trials coloured by score, interpolated
        contours, pruned trials as crosses, the best as a star, references in the legend.

        Saves to ``path`` (the format follows the suffix: .png, .svg, .pdf) when given, and
        returns the matplotlib Figure. Needs matplotlib.
        """
        return _plot(self, path, ax=ax)

    def to_html(self, path: str | os.PathLike[str]) -> None:
        """A self-contained HTML report: summary, the plot (inline SVG) and the top trials."""
        _write_html(self, path)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj


def load_result(path: str | os.PathLike[str]) -> TuneResult:
    """Reads a :class:`TuneResult` back from the JSON written by :meth:`TuneResult.to_json`."""
    with open(path, encoding="utf-8") as f:
        d = json.load(f)

    def ts(x: dict[str, Any] | None) -> TrialSummary | None:
        return None if x is None else TrialSummary(**x)

    d["best"] = ts(d["best"])
    d["best_reference"] = ts(d["best_reference"])
    d["references"] = {k: ts(v) for k, v in d["references"].items()}
    d["trials"] = [ts(t) for t in d["trials"]]
    return TuneResult(**d)


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _check_range(name: str, value: Any, low: float, high: float) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and low <= lo < hi <= high):
        raise ValueError(f"{name} must satisfy {low} <= low < high <= {high}, got ({lo}, {hi})")
    return lo, hi


def _check_counts(class_counts: Any) -> list[int] | None:
    if class_counts is None:
        return None
    try:
        counts = np.asarray(class_counts, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("class_counts must be a sequence of per-class counts") from None
    if counts.ndim != 1 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("class_counts must be a 1-D sequence of non-negative counts")
    if np.count_nonzero(counts) < 2:
        raise ValueError(
            f"class_counts {counts.astype(int).tolist()}: the data has a single class; focal loss "
            "needs at least two classes with examples to tune"
        )
    if np.any(counts == 0):
        raise ValueError(
            f"class_counts has no examples of class(es) {np.flatnonzero(counts == 0).tolist()}"
        )
    return [int(c) for c in counts]


def class_power_alpha(class_counts: Sequence[float], power: float) -> list[float]:
    r"""Per-class alpha :math:`\alpha_c = C\, n_c^{-s} / \sum_{c'} n_{c'}^{-s}` (sums to C).

    ``power = 1`` equals ``fk.class_weights(counts, "inverse")``, ``0.5`` equals
    ``"inverse_sqrt"`` and ``0`` gives uniform weights.

    Example:
        >>> [round(a, 4) for a in class_power_alpha([900, 90, 10], 1.0)]
        [0.0297, 0.297, 2.6733]
    """
    n = np.asarray(class_counts, dtype=np.float64)
    if n.ndim != 1 or n.size < 2 or np.any(n <= 0) or not np.all(np.isfinite(n)):
        raise ValueError("class_counts must hold at least two positive, finite counts")
    if not (isinstance(power, numbers.Real) and math.isfinite(power)):
        raise ValueError(f"power must be a finite number, got {power!r}")
    return inverse_power_weights(n, float(power)).tolist()


@dataclasses.dataclass(frozen=True)
class _Space:
    """The search space and objective definition, stored on the study to detect mismatches."""

    gamma_range: tuple[float, float]
    alpha_mode: str  # "scalar" | "class_power"
    alpha_range: tuple[float, float]
    class_counts: list[int] | None
    balanced_alpha: float | list[float]
    folds: int
    direction: str
    metric: str
    objective: dict[str, Any] | None = None

    def as_attr(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["gamma_range"] = list(self.gamma_range)
        d["alpha_range"] = list(self.alpha_range)
        return d


# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------


def _requeue(study: Any, trial: Any) -> None:
    """Queues a failed (killed) trial's parameters again, so it is not lost."""
    attrs = {k: v for k, v in trial.user_attrs.items() if k in (_ATTR + "reference",)}
    params = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
    if not params and not attrs:
        return  # died before choosing its parameters: nothing to re-run
    attrs[_ATTR + "retry_of"] = trial.user_attrs.get(_ATTR + "retry_of", trial.number)
    study.enqueue_trial(params, user_attrs=attrs)


def _make_storage(
    storage: str | None, heartbeat_interval: int, grace_period: int | None
) -> Any:
    import optuna

    if storage is None:
        return optuna.storages.InMemoryStorage()
    if not isinstance(storage, str):
        raise TypeError(f"storage must be a database URL string or None, got {type(storage).__name__}")
    try:
        import sqlalchemy.engine

        url = sqlalchemy.engine.make_url(storage)
    except Exception:
        raise ValueError(
            f"storage {storage!r} is not a database URL; use e.g. sqlite:///tune.db or "
            "postgresql://user:password@host/db"
        ) from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        parent = os.path.dirname(os.path.abspath(url.database))
        if not os.path.isdir(parent):
            raise ValueError(f"storage {storage!r}: the folder {parent!r} does not exist")
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.get_backend_name() == "sqlite" else {}
    try:
        with warnings.catch_warnings():  # heartbeat_interval is "experimental" since optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                storage,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=_requeue,
            )
    except ModuleNotFoundError as e:
        raise ValueError(
            f"storage {storage!r} needs the database driver {e.name!r}: pip install it "
            "(e.g. psycopg2-binary for PostgreSQL)"
        ) from None
    except Exception as e:  # sqlalchemy / optuna errors: unreachable server, bad scheme, ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"storage {storage!r} cannot be opened: {msg}") from None


def _open_study(
    storage: Any, study_name: str, space: _Space, seed: int | None, n_startup_trials: int,
    prune: bool, pruner_warmup_steps: int, *, create: bool,
) -> Any:
    import optuna

    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=pruner_warmup_steps)
        if prune
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        storage=storage, sampler=sampler, pruner=pruner, study_name=study_name,
        direction=space.direction, load_if_exists=True,
    )
    stored = study.user_attrs.get(_ATTR + "space")
    if stored is None:
        if not create:
            raise ValueError(f"study {study_name!r} was not created by focalkit.tools.tune.api")
        if study.trials:
            raise ValueError(
                f"study {study_name!r} already has trials that focalkit did not create; "
                "choose another study name"
            )
        study.set_user_attr(_ATTR + "space", space.as_attr())
    elif stored != _jsonable(space.as_attr()):
        diff = {
            k: (stored.get(k), v) for k, v in _jsonable(space.as_attr()).items() if stored.get(k) != v
        }
        raise ValueError(
            f"study {study_name!r} in this storage was created with a different search: "
            + ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in diff.items())
            + "; pass the same settings to resume it, or choose a new study name"
        )
    if study.direction.name.lower() != space.direction:
        raise ValueError(f"study {study_name!r} has direction {study.direction.name.lower()}")
    return study


def _enqueue_references(study: Any, references: Sequence[str]) -> None:
    have = {t.user_attrs.get(_ATTR + "reference") for t in study.get_trials(deepcopy=False)}
    for ref in references:
        if ref not in have:
            study.enqueue_trial({}, user_attrs={_ATTR + "reference": ref})


# --------------------------------------------------------------------------------------------
# Worker loop
# --------------------------------------------------------------------------------------------


def _counts(t: Any) -> bool:
    from optuna.trial import TrialState

    if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return t.state == TrialState.FAIL and t.user_attrs.get(_ATTR + "fail") == _COUNTED_FAIL


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that was not reaped yet is a zombie: dead
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _fail_dead_trials(study: Any) -> None:
    """Fails (and re-queues) RUNNING trials whose process is gone.

    Trials of processes on this host are checked by process id at once; the others through the
    heartbeat (``optuna.storages.fail_stale_trials``) once it is older than the grace period.
    """
    import optuna
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    host, me = socket.gethostname(), os.getpid()
    backend = getattr(study._storage, "_backend", study._storage)  # optuna's cache wraps RDB
    interval = getattr(backend, "heartbeat_interval", None)
    grace = getattr(backend, "grace_period", None) or 2 * (interval or 0)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get(_ATTR + "worker")
        if not owner:
            # Killed between creating the trial and recording its owner and first heartbeat:
            # give it (generously, clocks of machines differ) 5 grace periods.
            started = t.datetime_start
            if not interval or started is None or t._trial_id in _ACTIVE_TRIAL_IDS:
                continue
            if (datetime.datetime.now() - started).total_seconds() < 5 * grace:
                continue
        elif owner.get("host") != host:
            continue  # another machine's trial: the heartbeat decides (above)
        else:
            pid = int(owner.get("pid", -1))
            alive = t._trial_id in _ACTIVE_TRIAL_IDS if pid == me else _pid_alive(pid)
            if alive:
                continue
        try:
            ok = study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            ok = False
        if ok:
            _requeue(study, study._storage.get_trial(t._trial_id))


class _Heartbeat:
    """Records the trial's heartbeat every ``interval`` seconds in a daemon thread."""

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self._storage, self._trial_id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        from optuna.storages._heartbeat import is_heartbeat_enabled

        if is_heartbeat_enabled(self._storage):
            self._storage.record_heartbeat(self._trial_id)
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception:  # pragma: no cover - a transient database error: try again
                pass

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclasses.dataclass
class _Objective:
    """Runs one trial: picks the parameters and averages ``train_and_score`` over the folds."""

    train_and_score: Callable[..., float]
    space: _Space
    accepts_report: bool
    accepts_reference: bool
    prune: bool = True

    def __call__(self, trial: Any) -> float:
        import optuna

        s = self.space
        ref = trial.user_attrs.get(_ATTR + "reference")
        if ref == "ce":
            gamma, alpha, alpha_param = 0.0, None, None
        elif ref == "balanced_ce":
            gamma, alpha = 0.0, s.balanced_alpha
            alpha_param = alpha if isinstance(alpha, float) else 1.0
        else:
            gamma = trial.suggest_float("gamma", *s.gamma_range)
            if s.alpha_mode == "scalar":
                alpha = alpha_param = trial.suggest_float("alpha", *s.alpha_range)
            else:
                alpha_param = trial.suggest_float("alpha_power", *s.alpha_range)
                alpha = class_power_alpha(s.class_counts, alpha_param)
        trial.set_user_attr(_ATTR + "gamma", gamma)
        trial.set_user_attr(_ATTR + "alpha", alpha)
        trial.set_user_attr(_ATTR + "alpha_param", alpha_param)
        prunable = ref is None
        step = [0]

        def report(value: float) -> None:
            """Reports an intermediate validation score; raises optuna.TrialPruned to stop."""
            v = float(value)
            if math.isfinite(v):
                trial.report(v, step[0])
            step[0] += 1
            if prunable and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step[0] - 1} ({s.metric} {v:.4g})")

        scores: list[float] = []
        for fold in range(s.folds):
            kwargs: dict[str, Any] = {}
            if self.accepts_report and self.prune:  # per-epoch scores cost an evaluation
                kwargs["report"] = report
            if self.accepts_reference:
                kwargs["reference"] = ref
            raw = self.train_and_score(gamma, alpha, fold, **kwargs)
            if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
                raise TypeError(
                    f"train_and_score must return a number, got {type(raw).__name__} "
                    f"(gamma={gamma}, alpha={alpha}, fold={fold})"
                )
            scores.append(float(raw))
            trial.set_user_attr(_ATTR + "fold_scores", scores)
            if not math.isfinite(scores[-1]):
                return float("nan")
            if "report" not in kwargs:
                report(float(np.mean(scores)))
        return float(np.mean(scores))


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _worker(
    objective: _Objective, storage_url: str | None, storage: Any, study_name: str, n_trials: int,
    seed: int | None, opts: dict[str, Any], callbacks: Sequence[Callable[[Any, Any], None]] = (),
    worker_index: int = 0,
) -> int:
    """Runs trials until ``n_trials`` are finished in the study; returns how many it ran."""
    import optuna
    from optuna.trial import TrialState

    if storage is None:
        storage = _make_storage(storage_url, opts["heartbeat_interval"], opts["grace_period"])
    study = _open_study(
        storage, study_name, objective.space, None, opts["n_startup_trials"], opts["prune"],
        opts["pruner_warmup_steps"], create=False,
    )
    if seed is not None:
        # A resumed run or another worker must not replay the same random draws: derive the
        # sampler seed from (seed, worker, trials already in the study).
        n0 = len(study.get_trials(deepcopy=False))
        sub = int(np.random.SeedSequence([seed, worker_index, n0]).generate_state(1)[0])
        study.sampler = optuna.samplers.TPESampler(seed=sub,
                                                   n_startup_trials=opts["n_startup_trials"])
    deadline = None if opts["timeout"] is None else time.monotonic() + opts["timeout"]
    ident = {"host": socket.gethostname(), "pid": os.getpid()}
    ran = 0
    while deadline is None or time.monotonic() < deadline:
        _fail_dead_trials(study)
        trials = study.get_trials(deepcopy=False)
        done = sum(_counts(t) for t in trials)
        if done >= n_trials:
            break
        if done + sum(t.state == TrialState.RUNNING for t in trials) >= n_trials:
            time.sleep(_POLL_S)  # every slot is taken: wait in case a running trial dies
            continue
        trial = None
        try:
            with warnings.catch_warnings():  # we run the heartbeat ourselves (_Heartbeat)
                warnings.filterwarnings("ignore", message="Heartbeat of storage",
                                        category=UserWarning)
                trial = study.ask()
            _ACTIVE_TRIAL_IDS.add(trial._trial_id)
            trial.set_user_attr(_ATTR + "worker", ident)
            with _Heartbeat(storage, trial._trial_id, opts["heartbeat_interval"]):
                # Reserve a slot: trials are numbered in creation order; a trial takes a slot if
                # fewer than n_trials lower-numbered trials are finished (counted), running or
                # queued (a queued one is popped by some worker before any new trial is made).
                taken = study.get_trials(deepcopy=False)
                rank = sum(
                    t.number < trial.number
                    and (t.state in (TrialState.RUNNING, TrialState.WAITING) or _counts(t))
                    for t in taken
                )
                if rank >= n_trials:
                    trial.set_user_attr(_ATTR + "fail", "surplus")
                    study.tell(trial, state=TrialState.FAIL)
                    _requeue(study, study._storage.get_trial(trial._trial_id))
                    continue
                t0 = time.perf_counter()
                try:
                    value = objective(trial)
                except optuna.TrialPruned:
                    trial.set_user_attr(_ATTR + "duration_s", time.perf_counter() - t0)
                    study.tell(trial, state=TrialState.PRUNED)
                    ran += 1
                    for cb in callbacks:
                        cb(study, study._storage.get_trial(trial._trial_id))
                    continue
                trial.set_user_attr(_ATTR + "duration_s", time.perf_counter() - t0)
                if not math.isfinite(value):
                    trial.set_user_attr(_ATTR + "fail", _COUNTED_FAIL)
                    study.tell(trial, state=TrialState.FAIL)
                else:
                    study.tell(trial, value)
                ran += 1
                for cb in callbacks:
                    cb(study, study._storage.get_trial(trial._trial_id))
        except BaseException as e:
            # Ctrl-C, SIGTERM or an error in train_and_score: give the trial back and stop.
            if trial is None:
                raise
            frozen = study._storage.get_trial(trial._trial_id)
            if frozen.state == TrialState.RUNNING:
                if isinstance(e, Exception):
                    trial.set_user_attr(_ATTR + "fail", f"error: {type(e).__name__}: {e}"[:500])
                study.tell(trial, state=TrialState.FAIL)
                if not isinstance(e, Exception):  # interrupted, not broken: run it again later
                    _requeue(study, study._storage.get_trial(trial._trial_id))
            raise
        finally:
            if trial is not None:
                _ACTIVE_TRIAL_IDS.discard(trial._trial_id)
    return ran


def _child_main(payload: bytes) -> None:  # pragma: no cover - runs in a spawned process
    import signal

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        _worker(*pickle.loads(payload))
    except KeyboardInterrupt:
        raise SystemExit(130) from None


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------


def tune(
    train_and_score: Callable[..., float],
    *,
    n_trials: int = 30,
    storage: str | None = DEFAULT_STORAGE,
    study: str = "focalkit-tune",
    gamma_range: tuple[float, float] = (0.0, 5.0),
    alpha_range: tuple[float, float] = (0.05, 0.95),
    class_counts: Sequence[int] | None = None,
    alpha_mode: str = "auto",
    alpha_power_range: tuple[float, float] = (0.0, 1.0),
    balanced_alpha: float | None = None,
    folds: int = 5,
    direction: str = "maximize",
    metric: str = "score",
    workers: int = 1,
    seed: int | None = 0,
    timeout: float | None = None,
    prune: bool = True,
    pruner_warmup_steps: int = 0,
    n_startup_trials: int = 10,
    heartbeat_interval: int = 10,
    grace_period: int | None = None,
    references: Sequence[str] = ("ce", "balanced_ce"),
    objective_id: dict[str, Any] | None = None,
    callbacks: Sequence[Callable[[Any, Any], None]] = (),
) -> TuneResult:
    r"""Searches gamma and alpha of focal loss by k-fold cross-validation (Optuna TPE).

    Each trial picks gamma in ``gamma_range`` and alpha (see below), calls
    ``train_and_score(gamma, alpha, fold)`` for ``fold = 0 .. folds - 1`` and scores the trial by

    .. math:: J(\gamma, \alpha) = \frac{1}{k} \sum_{f=0}^{k-1} \mathrm{score}_f(\gamma, \alpha),

    maximized or minimized (``direction``). ``train_and_score`` trains your model with
    ``fk.sigmoid_focal_loss(..., gamma=gamma, alpha=alpha)`` (or ``softmax_focal_loss`` with the
    per-class ``alpha``) on every fold but ``fold`` and returns the validation score on ``fold``.
    It may accept keyword arguments ``report`` (call ``report(score)`` after each epoch: the median
    pruner stops hopeless trials by raising ``optuna.TrialPruned`` from it; without it the running
    mean over folds is reported) and ``reference`` (``"ce"``, ``"balanced_ce"`` or None).

    alpha: a float in ``alpha_range`` (weight of positives) for binary tasks; with ``class_counts``
    of C > 2 classes (or ``alpha_mode="class_power"``) a list of C per-class weights
    :math:`\alpha_c = C n_c^{-s} / \sum n^{-s}` with the exponent s searched in
    ``alpha_power_range``. The references receive gamma = 0 with alpha = None (cross-entropy) and
    with the balanced alpha (``balanced_alpha``; by default n_neg / n from ``class_counts``, the
    inverse-frequency weights for C > 2, or 0.75 — the paper's best for CE — without counts).
    They are queued first and count toward ``n_trials``.

    Args:
        train_and_score: ``(gamma: float, alpha: float | list[float] | None, fold: int) -> float``.
            Must be picklable (a module-level function) when ``workers > 1``.
        n_trials: finished trials wanted in the study (COMPLETE + PRUNED + non-finite scores),
            counting those of earlier runs: re-running resumes, a larger value extends.
        storage: Optuna RDB URL (``sqlite:///tune.db``, ``postgresql://user:pw@host/db``), or None
            for an in-memory study (no resume, ``workers=1``).
        study: study name in the storage.
        gamma_range, alpha_range, alpha_power_range: search bounds.
        class_counts: training examples per class (``[n_neg, n_pos]`` for binary).
        alpha_mode: ``"auto"`` (class_power when ``class_counts`` has > 2 classes), ``"scalar"``,
            ``"class_power"``.
        balanced_alpha: alpha of the alpha-balanced CE reference (scalar mode).
        folds: number of folds (k >= 1).
        direction: ``"maximize"`` or ``"minimize"``; ``metric``: its name in reports.
        workers: processes on this machine (spawned, sharing ``storage``); more machines can run
            the same call against the same PostgreSQL storage.
        seed: TPE sampler seed (each worker and each resumed run derives its own from it and
            the number of trials already in the study); None for random.
        timeout: seconds after which no new trial starts.
        prune, pruner_warmup_steps: median pruner on/off and steps before it may prune.
        n_startup_trials: random trials before TPE models the objective.
        heartbeat_interval, grace_period: seconds; a RUNNING trial without a heartbeat for
            ``grace_period`` (default 2 x interval) is failed and re-queued.
        references: which references to run (a subset of ``("ce", "balanced_ce")``).
        objective_id: JSON-serializable description of ``train_and_score`` (data, epochs, ...)
            stored with the study: resuming with a different one is an error.
        callbacks: ``callback(study, frozen_trial)`` called in this process after each of its
            trials finishes (as Optuna's).

    Returns:
        :class:`TuneResult` of the whole study (this run's trials and earlier ones).

    Example:
        >>> def train_and_score(gamma, alpha, fold):
        ...     return 1.0 - (gamma - 2.0) ** 2 / 25 - ((alpha or 0.5) - 0.25) ** 2
        >>> r = tune(train_and_score, n_trials=8, folds=2, storage=None)
        >>> r.n_trials
        8
    """
    if not callable(train_and_score):
        raise TypeError(f"train_and_score must be callable, got {type(train_and_score).__name__}")
    n_trials = _check_int("n_trials", n_trials, 1)
    folds = _check_int("folds", folds, 1)
    workers = _check_int("workers", workers, 1)
    n_startup_trials = _check_int("n_startup_trials", n_startup_trials, 0)
    pruner_warmup_steps = _check_int("pruner_warmup_steps", pruner_warmup_steps, 0)
    heartbeat_interval = _check_int("heartbeat_interval", heartbeat_interval, 1)
    if grace_period is not None:
        grace_period = _check_int("grace_period", grace_period, heartbeat_interval)
    if seed is not None:
        seed = _check_int("seed", seed, 0)
    if timeout is not None and not (isinstance(timeout, numbers.Real) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if not isinstance(study, str) or not study:
        raise ValueError(f"study must be a non-empty name, got {study!r}")
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"metric must be a non-empty name, got {metric!r}")
    unknown = set(references) - {"ce", "balanced_ce"}
    if unknown or isinstance(references, str):
        raise ValueError(f"references must be a subset of ('ce', 'balanced_ce'), got {references!r}")
    gamma_range = _check_range("gamma_range", gamma_range, 0.0, math.inf)
    counts = _check_counts(class_counts)
    if alpha_mode == "auto":
        alpha_mode = "class_power" if counts is not None and len(counts) > 2 else "scalar"
    if alpha_mode == "scalar":
        arange = _check_range("alpha_range", alpha_range, 0.0, 1.0)
        if balanced_alpha is None:
            balanced = 0.75 if counts is None or len(counts) != 2 else counts[0] / sum(counts)
        else:
            if isinstance(balanced_alpha, bool) or not isinstance(balanced_alpha, numbers.Real):
                raise TypeError("balanced_alpha must be a float in [0, 1]")
            if not 0.0 <= balanced_alpha <= 1.0:
                raise ValueError(f"balanced_alpha must be in [0, 1], got {balanced_alpha}")
            balanced = float(balanced_alpha)
    elif alpha_mode == "class_power":
        if counts is None:
            raise ValueError("alpha_mode='class_power' needs class_counts")
        arange = _check_range("alpha_power_range", alpha_power_range, -math.inf, math.inf)
        if balanced_alpha is not None:
            raise ValueError("balanced_alpha is for alpha_mode='scalar'; with class_power the "
                             "balanced reference uses the inverse-frequency weights")
        balanced = class_power_alpha(counts, 1.0)
    else:
        raise ValueError(f"alpha_mode must be 'auto', 'scalar' or 'class_power', got {alpha_mode!r}")
    if workers > 1 and storage is None:
        raise ValueError("workers > 1 needs a storage URL that all processes share (storage=None "
                         "is an in-memory study)")

    if objective_id is not None:
        try:
            objective_id = json.loads(json.dumps(objective_id, allow_nan=False))
        except (TypeError, ValueError):
            raise TypeError("objective_id must be JSON-serializable") from None
    space = _Space(gamma_range, alpha_mode, arange, counts, balanced, folds, direction, metric,
                   objective_id)
    objective = _Objective(train_and_score, space, _accepts(train_and_score, "report"),
                           _accepts(train_and_score, "reference"), bool(prune))
    if workers > 1:
        try:
            pickle.dumps(objective)
        except Exception as e:
            raise TypeError(
                "train_and_score must be picklable (a module-level function or a picklable "
                f"object) to run with workers > 1: {e}"
            ) from None
    opts = dict(heartbeat_interval=heartbeat_interval, grace_period=grace_period, timeout=timeout,
                prune=prune, pruner_warmup_steps=pruner_warmup_steps,
                n_startup_trials=n_startup_trials)

    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # focalkit reports trials itself
    try:
        return _tune(objective, storage, study, space, n_trials, workers, seed, opts,
                     references, callbacks, heartbeat_interval, grace_period)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _tune(
    objective: _Objective, storage: str | None, study: str, space: _Space, n_trials: int,
    workers: int, seed: int | None, opts: dict[str, Any], references: Sequence[str],
    callbacks: Sequence[Callable[[Any, Any], None]], heartbeat_interval: int,
    grace_period: int | None,
) -> TuneResult:
    n_startup_trials, prune = opts["n_startup_trials"], opts["prune"]
    pruner_warmup_steps = opts["pruner_warmup_steps"]
    rdb = _make_storage(storage, heartbeat_interval, grace_period)
    st = _open_study(rdb, study, space, seed, n_startup_trials, prune, pruner_warmup_steps,
                     create=True)
    _enqueue_references(st, references)

    children = []
    if workers > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        for i in range(1, workers):
            payload = pickle.dumps((objective, storage, None, study, n_trials, seed, opts, (), i))
            p = ctx.Process(target=_child_main, args=(payload,), name=f"focalkit-tune-{i}")
            p.start()
            children.append(p)
    try:
        _worker(objective, storage, rdb, study, n_trials, seed, opts, callbacks)
    except BaseException:
        # Stop the other workers too (SIGTERM: each gives its running trial back, re-queued).
        for p in children:
            if p.is_alive():
                p.terminate()
        for p in children:
            p.join(timeout=60)
        raise
    for p in children:
        p.join()
    bad = [p for p in children if p.exitcode != 0]
    if bad:
        raise RuntimeError(
            "tuning worker(s) " + ", ".join(f"{p.name} (exit code {p.exitcode})" for p in bad)
            + " failed; see their error above. Re-run the same call to resume."
        )
    return collect(st)


def collect(study: Any) -> TuneResult:
    """Builds the :class:`TuneResult` of an Optuna study created by :func:`tune`."""
    from optuna.trial import TrialState

    space = study.user_attrs.get(_ATTR + "space")
    if space is None:
        raise ValueError(f"study {study.study_name!r} was not created by focalkit.tools.tune.api")
    direction = space["direction"]
    sign = 1.0 if direction == "maximize" else -1.0
    summaries = []
    for t in study.get_trials(deepcopy=False):
        if not _counts(t):
            continue
        ua = t.user_attrs
        scores = [float(x) for x in ua.get(_ATTR + "fold_scores", [])]
        if t.state == TrialState.COMPLETE:
            value = t.value
        elif t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        else:
            value = None
        dur = ua.get(_ATTR + "duration_s")
        summaries.append(TrialSummary(
            number=t.number, state=t.state.name, gamma=float(ua.get(_ATTR + "gamma", 0.0)),
            alpha=ua.get(_ATTR + "alpha"), alpha_param=ua.get(_ATTR + "alpha_param"),
            reference=ua.get(_ATTR + "reference"), value=value, fold_scores=scores,
            std=float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
            duration_s=None if dur is None else float(dur),
        ))
    complete = [t for t in summaries if t.state == "COMPLETE" and t.value is not None]
    best = max(complete, key=lambda t: sign * t.value, default=None)
    refs: dict[str, TrialSummary] = {}
    for t in complete:
        if t.reference and (t.reference not in refs or sign * t.value > sign * refs[t.reference].value):
            refs[t.reference] = t
    best_ref = max(refs.values(), key=lambda t: sign * t.value, default=None)
    improvement = spread = paired_std = exceeds = None
    if best is not None and best_ref is not None:
        improvement = sign * (best.value - best_ref.value)
        spread = best.std
        if len(best.fold_scores) == len(best_ref.fold_scores) > 1:
            diff = sign * (np.asarray(best.fold_scores) - np.asarray(best_ref.fold_scores))
            paired_std = float(np.std(diff, ddof=1))
        exceeds = None if spread is None else bool(improvement > spread)
    return TuneResult(
        study=study.study_name,
        storage=_storage_url(study),
        metric=space["metric"],
        direction=direction,
        n_trials=len(summaries),
        n_pruned=sum(t.state == "PRUNED" for t in summaries),
        best=best,
        best_reference=best_ref,
        references=refs,
        improvement=improvement,
        spread=spread,
        paired_std=paired_std,
        exceeds_spread=exceeds,
        trials=summaries,
        config=space,
    )


def load_study(storage: str, study: str) -> TuneResult:
    """The :class:`TuneResult` of a study that :func:`tune` wrote to ``storage`` (runs nothing)."""
    import optuna

    if not isinstance(study, str) or not study:
        raise ValueError(f"study must be a non-empty name, got {study!r}")
    rdb = _make_storage(storage, 10, None)
    names = optuna.get_all_study_names(storage=rdb)
    if study not in names:
        raise ValueError(f"storage {storage!r} has no study {study!r} (it has: {', '.join(names) or 'none'})")
    return collect(optuna.load_study(study_name=study, storage=rdb))


def _storage_url(study: Any) -> str | None:
    engine = getattr(study._storage, "engine", None)
    return None if engine is None else engine.url.render_as_string(hide_password=True)


# --------------------------------------------------------------------------------------------
# Plot and HTML report
# --------------------------------------------------------------------------------------------


def _plot(result: TuneResult, path: Any, ax: Any = None) -> Any:
    import matplotlib.tri as mtri
    from matplotlib.figure import Figure

    if ax is None:  # no pyplot: works with any (or no) interactive backend
        fig = Figure(figsize=(7.0, 5.6), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    space = result.config
    scalar = space.get("alpha_mode", "scalar") == "scalar"
    ylabel = "alpha (weight of positives)" if scalar else "alpha power s  (alpha_c ~ n_c^-s)"
    cmap = "viridis" if result.direction == "maximize" else "viridis_r"
    search = [t for t in result.trials if t.reference is None and t.alpha_param is not None]
    done = [t for t in search if t.state == "COMPLETE"]
    pruned = [t for t in search if t.state != "COMPLETE"]
    if done:
        x = np.array([t.gamma for t in done])
        y = np.array([t.alpha_param for t in done])
        z = np.array([t.value for t in done])
        if len(done) >= 4:
            try:
                tri = mtri.Triangulation(x, y)
                cs = ax.tricontourf(tri, z, levels=12, cmap=cmap, alpha=0.55)
            except Exception:  # collinear points: no interpolation, the markers remain
                cs = None
        else:
            cs = None
        sc = ax.scatter(x, y, c=z, cmap=cmap, edgecolors="black", linewidths=0.5, s=36, zorder=3,
                        label="trials")
        fig.colorbar(sc if cs is None else cs, ax=ax, label=f"mean {result.metric} over folds")
    if pruned:
        ax.scatter([t.gamma for t in pruned], [t.alpha_param for t in pruned], marker="x",
                   color="grey", s=30, zorder=3, label="pruned")
    b = result.best
    if b is not None and b.reference is None:
        ax.scatter([b.gamma], [b.alpha_param], marker="*", s=260, color="red", edgecolors="black",
                   zorder=4, label=f"best: {format_pm(b.value, b.std)}", clip_on=False)
    for name, t in result.references.items():
        label = f"{t.label}: {format_pm(t.value, t.std)}"
        if name == "balanced_ce" and t.alpha_param is not None:
            ax.scatter([0.0], [t.alpha_param], marker="D", s=60, color="orange",
                       edgecolors="black", zorder=4, label=label, clip_on=False)
        else:
            ax.plot([], [], " ", label=label)
    ax.set_xlim(*space["gamma_range"])
    ax.set_ylim(*space["alpha_range"])
    ax.set_xlabel("gamma")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{result.study}: {result.metric} ({result.direction}), {result.n_trials} trials")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8,
              frameon=False)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _write_html(result: TuneResult, path: Any) -> None:
    fig = _plot(result, None)
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    svg = svg[svg.find("<svg"):]
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            i + 1, t.number, t.label, format_number(t.gamma), _alpha_cell(t), format_pm(t.value, t.std),
            " ".join(f"{s:.4g}" for s in t.fold_scores),
        )) + "</tr>"
        for i, t in enumerate(result.top(20))
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>focalkit tune: {html.escape(result.study)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}
pre{{background:#f6f6f6;padding:1em}}</style></head><body>
<h1>focalkit tune: {html.escape(result.study)}</h1>
<pre>{html.escape(result.summary())}</pre>
{svg}
<h2>Top trials</h2>
<table><tr><th>rank</th><th>trial</th><th>loss</th><th>gamma</th><th>alpha</th>
<th>{html.escape(result.metric)} (mean +- std)</th><th>per fold</th></tr>
{rows}
</table></body></html>
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)


def _alpha_cell(t: TrialSummary) -> str:
    if t.alpha is None:
        return "off"
    if isinstance(t.alpha, list):
        return "s=" + format_number(t.alpha_param) + " [" + ", ".join(f"{a:.3g}" for a in t.alpha) + "]"
    return format_number(t.alpha)


# --------------------------------------------------------------------------------------------
# The built-in objective: focalkit compare's data and models
# --------------------------------------------------------------------------------------------

METRICS = TUNABLE_METRICS


@dataclasses.dataclass
class DataObjective:
    """``train_and_score`` on ``focalkit compare``'s data and models.

    Fold ``f`` trains the task's model (:func:`focalkit.tools.experiments.train.fit_and_score`) with
    focal loss (gamma, alpha), cross-entropy or alpha-balanced cross-entropy on the other folds of
    a stratified k-fold split and returns ``metric`` on fold ``f``; after every epoch it reports
    the validation ``metric`` to the pruner. Picklable: each worker process loads the data once.
    """

    source: str
    target: str | None = None
    data_seed: int = 0
    folds: int = 5
    metric: str = "ap"
    epochs: int | None = None
    seed: int = 0
    threads: int | None = None
    _cache: Any = dataclasses.field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = None
        return state

    def data(self) -> tuple[Any, list[tuple[np.ndarray, np.ndarray]]]:
        """The dataset and its folds (loaded once per process)."""
        if self._cache is None:
            from focalkit.tools.experiments.data import kfold, load_data

            ds = load_data(self.source, target=self.target, seed=self.data_seed)
            self._cache = (ds, kfold(ds, self.folds, seed=self.data_seed))
        return self._cache

    def __call__(
        self, gamma: float, alpha: float | list[float] | None, fold: int, *,
        report: Callable[[float], None] | None = None, reference: str | None = None,
    ) -> float:
        import torch

        from focalkit.tools.experiments.train import LossSpec, fit_and_score

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        ds, splits = self.data()
        train_idx, val_idx = splits[fold]
        if reference == "ce":
            spec = LossSpec("ce")
        elif reference == "balanced_ce":
            spec = LossSpec("balanced_ce", alpha=alpha)
        else:
            spec = LossSpec("focal", gamma=gamma, alpha=alpha)
        on_epoch = None if report is None else (lambda _epoch, m: report(m[self.metric]))
        try:
            r = fit_and_score(ds, train_idx, val_idx, spec, seed=self.seed, epochs=self.epochs,
                              on_epoch=on_epoch, curves=False)
        except FloatingPointError:  # training diverged: a non-finite score (counted, never best)
            return float("nan")
        return float(r[self.metric])


def _data_counts(ds: Any) -> tuple[list[int] | None, float | None]:
    """(class_counts for class_power alpha, balanced scalar alpha) of a dataset."""
    from focalkit.tools.experiments.data import class_counts

    counts = class_counts(ds).astype(np.int64)
    if ds.task == "multiclass":
        return _check_counts(counts), None
    if ds.task == "binary":
        counts = _check_counts(counts)
        return None, counts[0] / sum(counts)
    total = float(ds.y.size) * ds.num_classes  # dense: anchors x classes
    pos = float(counts.sum())
    if pos == 0:
        raise ValueError(f"{ds.name}: the data have no positive (foreground) example: a single class")
    return None, (total - pos) / total


def tune_data(
    source: str = "dense",
    *,
    target: str | None = None,
    metric: str = "ap",
    folds: int = 5,
    epochs: int | None = None,
    data_seed: int = 0,
    seed: int = 0,
    workers: int = 1,
    alpha_bounds: tuple[float | None, float | None] = (None, None),
    **kwargs: Any,
) -> TuneResult:
    """:func:`tune` on ``focalkit compare``'s data sources and models.

    Args:
        source: ``"dense"``, ``"digits"``, or a ``.csv``/``.npz`` path
            (:func:`focalkit.tools.experiments.data.load_data`).
        target: the CSV label column.
        metric: ``"ap"`` (average precision of the rare class(es), default), ``"f1"``,
            ``"balanced_accuracy"`` (maximized) or ``"ece"`` (expected calibration error,
            minimized), averaged over the ``folds`` stratified folds.
        epochs: training epochs per fold (default: the task's, as in ``focalkit compare``).
        data_seed: seed of the built-in data and of the fold split; ``seed``: model init, batch
            order and sampler seed.
        alpha_bounds: (low, high) of alpha on binary/dense data (default 0.05, 0.95) or of the
            class-weight exponent s on multi-class data (default 0, 1); None keeps a default.
        workers, **kwargs: passed to :func:`tune` (``n_trials``, ``storage``, ``study``,
            ``gamma_range``...). The pruner reports the validation ``metric`` after every epoch;
            ``pruner_warmup_steps`` defaults to half the epochs of one fold.

    Example:
        >>> r = tune_data("digits", n_trials=3, folds=2, epochs=1, storage=None)  # doctest: +SKIP
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    folds = _check_int("folds", folds, 2)
    workers = _check_int("workers", workers, 1)
    if epochs is not None:
        epochs = _check_int("epochs", epochs, 1)
    for bad in ("class_counts", "balanced_alpha", "direction", "metric", "alpha_range",
                "alpha_power_range", "alpha_mode"):
        if bad in kwargs:
            raise TypeError(f"tune_data sets {bad} from the data and the metric; do not pass it")
    # One torch thread per worker: these models are small, and OpenMP threads waiting for each
    # other on a busy machine slow training down several-fold; scale with workers instead.
    objective = DataObjective(source=os.fspath(source), target=target, data_seed=data_seed,
                              folds=folds, metric=metric, epochs=epochs, seed=seed, threads=1)
    ds, _ = objective.data()  # load errors (and too few examples for k folds) surface here
    counts, balanced = _data_counts(ds)
    from focalkit.tools.experiments.metrics import HIGHER_IS_BETTER

    lo, hi = alpha_bounds
    if ds.task == "multiclass":
        kwargs["alpha_power_range"] = (0.0 if lo is None else lo, 1.0 if hi is None else hi)
    else:
        kwargs["alpha_range"] = (0.05 if lo is None else lo, 0.95 if hi is None else hi)
    if "pruner_warmup_steps" not in kwargs:
        # Early epochs are noisy (AP near the positive rate): no pruning in the first half of the
        # first fold.
        from focalkit.tools.experiments.train import default_config

        kwargs["pruner_warmup_steps"] = (epochs or default_config(ds).epochs) // 2
    ident = {"source": objective.source, "target": target, "data_seed": data_seed,
             "epochs": epochs, "seed": seed, "task": ds.task, "n": len(ds)}
    return tune(objective, class_counts=counts, balanced_alpha=balanced, folds=folds,
                direction="maximize" if HIGHER_IS_BETTER[metric] else "minimize", metric=metric,
                workers=workers, seed=seed, objective_id=ident, **kwargs)
