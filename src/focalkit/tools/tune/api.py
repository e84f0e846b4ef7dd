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

The package's modules: :mod:`~focalkit.tools.tune.space` (search space),
:mod:`~focalkit.tools.tune.checks` (argument checks), :mod:`~focalkit.tools.tune.storage` (storage,
recovery, heartbeats), :mod:`~focalkit.tools.tune.worker` (the trial loop of one process),
:mod:`~focalkit.tools.tune.results` and :mod:`~focalkit.tools.tune.report` (what was found, plot,
HTML, text), :mod:`~focalkit.tools.tune.objective` (the built-in data objective),
:mod:`~focalkit.tools.tune.schema` (attribute names) and :mod:`~focalkit.tools.tune._optuna` (the
one adapter of Optuna internals). This module is the API: :func:`tune`, :func:`tune_data`,
:func:`load_study`, and the names users import from it.

Needs the ``tune`` extra (optuna, matplotlib): ``pip install 'focalkit[tune]'``.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Sequence
from typing import Any

from focalkit.tools import cancel
from focalkit.tools.experiments.metrics import HIGHER_IS_BETTER, TUNABLE_METRICS
from focalkit.tools.tune.checks import RunOptions, check_arguments, check_int
from focalkit.tools.tune.objective import DataObjective, data_counts
from focalkit.tools.tune.results import TrialSummary, TuneResult, collect, load_result
from focalkit.tools.tune.schema import REFERENCES
from focalkit.tools.tune.space import SearchSpace, class_power_alpha
from focalkit.tools.tune.storage import enqueue_references, make_storage, open_study
from focalkit.tools.tune.worker import TrialObjective, accepts, child_main, run_worker

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
_STOP_MESSAGE = ("\n{signal}: stopping at the next report() or fold; the running trial is given "
                 "back (again to interrupt at once)\n")
STOP_GRACE_S = 30.0  # seconds the workers get to give their trials back before they are killed
METRICS = TUNABLE_METRICS  # the metrics tune_data can optimise (focalkit.tools.experiments.metrics)


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
    references: Sequence[str] = REFERENCES,
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

    Ctrl-C / SIGTERM while it runs (main thread; :mod:`focalkit.tools.cancel`): the signal only
    records a stop request; the search stops at the next safe point (a ``report`` call, the next
    fold or trial; the built-in objective also between batches), gives the running trial back
    (FAIL, parameters queued again), stops the worker processes the same way and raises
    :class:`focalkit.tools.cancel.Cancelled` (a ``KeyboardInterrupt``). A second signal interrupts
    at once. ``focalkit.tools.cancel.check()`` in your own loop stops it sooner.

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
        seed: TPE sampler seed: each trial's draws are seeded from (seed, trial number), so
            workers, resumed runs and machines started at once never draw the same parameters,
            and one process replays exactly; None for random.
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
    space, opts, n_trials, workers, seed = check_arguments(
        n_trials=n_trials, folds=folds, workers=workers, storage=storage, study=study, seed=seed,
        gamma_range=gamma_range, alpha_range=alpha_range, class_counts=class_counts,
        alpha_mode=alpha_mode, alpha_power_range=alpha_power_range, balanced_alpha=balanced_alpha,
        direction=direction, metric=metric, timeout=timeout, prune=prune,
        pruner_warmup_steps=pruner_warmup_steps, n_startup_trials=n_startup_trials,
        heartbeat_interval=heartbeat_interval, grace_period=grace_period, references=references,
        objective_id=objective_id,
    )
    objective = TrialObjective(train_and_score, space, accepts(train_and_score, "report"),
                               accepts(train_and_score, "reference"), opts.prune)
    if workers > 1:
        try:
            pickle.dumps(objective)
        except Exception as e:
            raise TypeError(
                "train_and_score must be picklable (a module-level function or a picklable "
                f"object) to run with workers > 1: {e}"
            ) from None

    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # focalkit reports trials itself
    try:
        with cancel.signals_cancel(force="raise", message=_STOP_MESSAGE):
            return _tune(objective, storage, study, space, n_trials, workers, seed, opts,
                         references, callbacks)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _tune(
    objective: TrialObjective, storage: str | None, study: str, space: SearchSpace, n_trials: int,
    workers: int, seed: int | None, opts: RunOptions, references: Sequence[str],
    callbacks: Sequence[Callable[[Any, Any], None]],
) -> TuneResult:
    rdb = make_storage(storage, opts.heartbeat_interval, opts.grace_period)
    st = open_study(rdb, study, space, seed, opts.n_startup_trials, opts.prune,
                    opts.pruner_warmup_steps, create=True)
    enqueue_references(st, references)

    children: list[Any] = []
    stop = None
    try:
        if workers > 1:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            watch, stop = ctx.Pipe(duplex=False)  # closing `stop` tells the workers to stop
            for i in range(1, workers):
                payload = pickle.dumps((objective, storage, None, study, n_trials, seed, opts, ()))
                p = ctx.Process(target=child_main, args=(payload, os.getpid(), watch),
                                name=f"focalkit-tune-{i}")
                p.start()
                children.append(p)
            watch.close()
        run_worker(objective, storage, rdb, study, n_trials, seed, opts, callbacks)
        for p in children:
            while p.is_alive():  # they finish their last trials; a stop request still counts
                p.join(0.2)
                cancel.check()
    except BaseException:
        _stop_workers(children, stop)
        raise
    finally:
        if stop is not None:
            stop.close()
    bad = [p for p in children if p.exitcode != 0]
    if bad:
        raise RuntimeError(
            "tuning worker(s) " + ", ".join(f"{p.name} (exit code {p.exitcode})" for p in bad)
            + " failed; see their error above. Re-run the same call to resume."
        )
    return collect(st)


def _stop_workers(children: list[Any], stop: Any) -> None:
    """Asks the worker processes to stop (each gives its running trial back, re-queued), waits up
    to :data:`STOP_GRACE_S` for them, then terminates and finally kills what is left."""
    if stop is not None:
        stop.close()  # the workers see end of file at their next check
    deadline = time.monotonic() + STOP_GRACE_S
    for p in children:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in children:
        if p.is_alive():
            p.terminate()  # SIGTERM: stops it at its next check if it had not seen the pipe
            p.join(5)
        if p.is_alive():
            p.kill()
            p.join()


def load_study(storage: str, study: str) -> TuneResult:
    """The :class:`TuneResult` of a study that :func:`tune` wrote to ``storage`` (runs nothing)."""
    import optuna

    if not isinstance(study, str) or not study:
        raise ValueError(f"study must be a non-empty name, got {study!r}")
    rdb = make_storage(storage, 10, None)
    names = optuna.get_all_study_names(storage=rdb)
    if study not in names:
        raise ValueError(f"storage {storage!r} has no study {study!r} (it has: {', '.join(names) or 'none'})")
    return collect(optuna.load_study(study_name=study, storage=rdb))


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
    model: str = "net",
    rounds: int | None = None,
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
        model: ``"net"`` (the task's neural net) or gradient boosting, ``"lightgbm"``,
            ``"xgboost"``, ``"catboost"`` (``rounds`` rounds, default 200; tabular data only).
        workers, **kwargs: passed to :func:`tune` (``n_trials``, ``storage``, ``study``,
            ``gamma_range``...). The pruner reports the validation ``metric`` after every epoch;
            ``pruner_warmup_steps`` defaults to half the epochs of one fold.

    Example:
        >>> r = tune_data("digits", n_trials=3, folds=2, epochs=1, storage=None)  # doctest: +SKIP
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    folds = check_int("folds", folds, 2)
    workers = check_int("workers", workers, 1)
    if epochs is not None:
        epochs = check_int("epochs", epochs, 1)
    from focalkit.tools.experiments.boosting import N_CHECKPOINTS, check_model

    check_model(model)
    if model == "net" and rounds is not None:
        raise ValueError("rounds sets boosting rounds; it needs model='lightgbm', 'xgboost' or 'catboost'")
    if model != "net":
        if epochs is not None:
            raise ValueError(f"epochs sets the net's training; boosting takes rounds (model={model!r})")
        if rounds is not None:
            rounds = check_int("rounds", rounds, 1)
    for bad in ("class_counts", "balanced_alpha", "direction", "metric", "alpha_range",
                "alpha_power_range", "alpha_mode"):
        if bad in kwargs:
            raise TypeError(f"tune_data sets {bad} from the data and the metric; do not pass it")
    # One torch thread per worker: these models are small, and OpenMP threads waiting for each
    # other on a busy machine slow training down several-fold; scale with workers instead.
    objective = DataObjective(source=os.fspath(source), target=target, data_seed=data_seed,
                              folds=folds, metric=metric, epochs=epochs, seed=seed, threads=1, model=model,
                              rounds=rounds)
    with cancel.interruptible():  # nothing to give back yet: a signal need not wait for the data
        ds, _ = objective.data()  # load errors (and too few examples for k folds) surface here
    check_model(model, ds)
    counts, balanced = data_counts(ds)
    lo, hi = alpha_bounds
    if ds.task == "multiclass":
        kwargs["alpha_power_range"] = (0.0 if lo is None else lo, 1.0 if hi is None else hi)
    else:
        kwargs["alpha_range"] = (0.05 if lo is None else lo, 0.95 if hi is None else hi)
    if "pruner_warmup_steps" not in kwargs:
        # Early epochs are noisy (AP near the positive rate): no pruning in the first half of the
        # first fold.
        from focalkit.tools.experiments.train import default_config

        steps = (epochs or default_config(ds).epochs) if model == "net" else N_CHECKPOINTS
        kwargs["pruner_warmup_steps"] = steps // 2
    ident = {"source": objective.source, "target": target, "data_seed": data_seed,
             "epochs": epochs, "seed": seed, "task": ds.task, "n": len(ds)}
    if model != "net":  # studies of the net keep their identity (and stay resumable)
        ident |= {"model": model, "rounds": rounds}
    return tune(objective, class_counts=counts, balanced_alpha=balanced, folds=folds,
                direction="maximize" if HIGHER_IS_BETTER[metric] else "minimize", metric=metric,
                workers=workers, seed=seed, objective_id=ident, **kwargs)
