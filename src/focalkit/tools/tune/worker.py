"""The trial loop of one process: reserve a slot, run a trial over the folds, record it.

Only finished trials (COMPLETE, PRUNED, or FAIL because the score was not finite) count toward
``n_trials``. Every worker reserves a slot before training: trials are numbered in creation order,
and a trial takes a slot only if fewer than ``n_trials`` lower-numbered trials are finished, running
or queued; otherwise it is given back (FAIL, ``focalkit_fail = "surplus"``). So N workers on one
storage finish exactly ``n_trials``, none twice. An interrupted trial is marked FAIL and its
parameters are queued again.

Cancellation is cooperative (:mod:`focalkit.tools.cancel`): the loop checks for a stop request
before it asks for a trial, while it waits for a slot, before the first fold, between folds and
when a score is reported (and the built-in objective between batches), never inside a storage call.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import os
import pickle
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from focalkit.tools import cancel
from focalkit.tools.tune import _optuna
from focalkit.tools.tune.checks import RunOptions
from focalkit.tools.tune.schema import (
    ALPHA,
    ALPHA_PARAM,
    COUNTED_FAIL,
    DUPLICATE_FAIL,
    DURATION_S,
    FAIL,
    FOLD_SCORES,
    GAMMA,
    REFERENCE,
    SURPLUS_FAIL,
    WORKER,
    is_counted,
    n_counted,
)
from focalkit.tools.tune.space import SearchSpace, suggest
from focalkit.tools.tune.storage import Heartbeat, fail_dead_trials, make_storage, open_study, requeue

__all__ = ["TrialObjective", "accepts", "child_main", "run_worker"]

POLL_S = 0.5  # seconds between looks at the study while every slot is taken
ACTIVE_TRIAL_IDS: set[int] = set()  # storage ids of the trials this process is running right now


@dataclasses.dataclass
class TrialObjective:
    """Runs one trial: picks the parameters and averages ``train_and_score`` over the folds."""

    train_and_score: Callable[..., float]
    space: SearchSpace
    accepts_report: bool
    accepts_reference: bool
    prune: bool = True

    def setup(self) -> None:
        """Calls ``train_and_score.setup()`` when it has one (e.g. loading the data), so that a
        worker does not hold a trial while it prepares."""
        setup = getattr(self.train_and_score, "setup", None)
        if callable(setup):
            setup()

    def __call__(self, trial: Any) -> float:
        import optuna

        s = self.space
        ref = trial.user_attrs.get(REFERENCE)
        gamma, alpha, alpha_param = suggest(trial, s, ref)
        trial.set_user_attr(GAMMA, gamma)
        trial.set_user_attr(ALPHA, alpha)
        trial.set_user_attr(ALPHA_PARAM, alpha_param)
        prunable = ref is None
        step = [0]

        def report(value: float) -> None:
            """Reports an intermediate validation score; raises optuna.TrialPruned to stop (and
            focalkit.tools.cancel.Cancelled when a stop was requested)."""
            cancel.check()
            v = float(value)
            if math.isfinite(v):
                trial.report(v, step[0])
            step[0] += 1
            if prunable and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step[0] - 1} ({s.metric} {v:.4g})")

        scores: list[float] = []
        for fold in range(s.folds):
            cancel.check()
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
            trial.set_user_attr(FOLD_SCORES, scores)
            if not math.isfinite(scores[-1]):
                return float("nan")
            if "report" not in kwargs:
                report(float(np.mean(scores)))
        return float(np.mean(scores))


def accepts(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` accepts the keyword argument ``name`` (or any keyword)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _slot_rank(study: Any, trial: Any) -> int:
    """How many lower-numbered trials are finished (counted), running or queued: the trial takes a
    slot if that is below ``n_trials`` (a queued one is popped by some worker before any new trial
    is made)."""
    from optuna.trial import TrialState

    return sum(
        t.number < trial.number
        and (t.state in (TrialState.RUNNING, TrialState.WAITING) or is_counted(t))
        for t in study.get_trials(deepcopy=False)
    )


def _duplicate_reference(study: Any, trial: Any) -> bool:
    """Whether ``trial`` is a reference that another live trial already stands for.

    Processes that open a new study at the same moment may each queue the references. The one
    with the lowest number that did not fail runs; a later copy is given back unused (an
    interrupted reference is FAIL, so its re-queued copy runs). Only the process that popped a
    trial decides about it, so no two processes race on one trial.
    """
    ref = trial.user_attrs.get(REFERENCE)
    if ref is None:
        return False
    return any(
        t.number < trial.number and t.user_attrs.get(REFERENCE) == ref
        and (t.state.name != "FAIL" or is_counted(t))
        for t in study.get_trials(deepcopy=False)
    )


def run_worker(
    objective: TrialObjective, storage_url: str | None, storage: Any, study_name: str,
    n_trials: int, seed: int | None, opts: RunOptions,
    callbacks: Sequence[Callable[[Any, Any], None]] = (),
) -> int:
    """Runs trials until ``n_trials`` are finished in the study; returns how many it ran."""
    import optuna
    from optuna.trial import TrialState

    if storage is None:
        storage = make_storage(storage_url, opts.heartbeat_interval, opts.grace_period)
    study = open_study(
        storage, study_name, objective.space, None, opts.n_startup_trials, opts.prune,
        opts.pruner_warmup_steps, create=False,
    )
    with cancel.interruptible():  # loading data and imports: nothing to give back yet
        objective.setup()
    interval = opts.heartbeat_interval if _optuna.heartbeat_enabled(storage) else None
    deadline = None if opts.timeout is None else time.monotonic() + opts.timeout
    ident = {"host": socket.gethostname(), "pid": os.getpid()}
    ran = 0
    while deadline is None or time.monotonic() < deadline:
        cancel.check()
        fail_dead_trials(study, ACTIVE_TRIAL_IDS, interval, opts.grace_period)
        trials = study.get_trials(deepcopy=False)
        done = n_counted(trials)
        if done >= n_trials:
            break
        if done + sum(t.state == TrialState.RUNNING for t in trials) >= n_trials:
            cancel.sleep(POLL_S)  # every slot is taken: wait in case a running trial dies
            continue
        cancel.check()
        trial = tid = None
        try:
            trial = _optuna.ask_quietly(study)  # we run the heartbeat ourselves (Heartbeat)
            tid = _optuna.trial_id(trial)
            if seed is not None:
                study.sampler = trial_sampler(seed, trial.number, opts.n_startup_trials)
            ACTIVE_TRIAL_IDS.add(tid)
            trial.set_user_attr(WORKER, ident)
            with Heartbeat(storage, tid, opts.heartbeat_interval):
                if _duplicate_reference(study, trial):
                    trial.set_user_attr(FAIL, DUPLICATE_FAIL)
                    study.tell(trial, state=TrialState.FAIL)
                    continue
                if _slot_rank(study, trial) >= n_trials:
                    trial.set_user_attr(FAIL, SURPLUS_FAIL)
                    study.tell(trial, state=TrialState.FAIL)
                    requeue(study, _optuna.read_trial(study, tid))
                    continue
                cancel.check()
                t0 = time.perf_counter()
                try:
                    value = objective(trial)
                except optuna.TrialPruned:
                    trial.set_user_attr(DURATION_S, time.perf_counter() - t0)
                    study.tell(trial, state=TrialState.PRUNED)
                else:
                    trial.set_user_attr(DURATION_S, time.perf_counter() - t0)
                    if not math.isfinite(value):
                        trial.set_user_attr(FAIL, COUNTED_FAIL)
                        study.tell(trial, state=TrialState.FAIL)
                    else:
                        study.tell(trial, value)
                ran += 1
                for cb in callbacks:
                    cb(study, _optuna.read_trial(study, tid))
        except BaseException as e:
            # A stop request (Ctrl-C, SIGTERM), an error in train_and_score: give the trial back.
            if trial is None:
                raise
            frozen = _optuna.read_trial(study, tid)
            if frozen.state == TrialState.RUNNING:
                if isinstance(e, Exception):
                    trial.set_user_attr(FAIL, f"error: {type(e).__name__}: {e}"[:500])
                study.tell(trial, state=TrialState.FAIL)
                if not isinstance(e, Exception):  # interrupted, not broken: run it again later
                    requeue(study, _optuna.read_trial(study, tid))
            raise
        finally:
            if tid is not None:
                ACTIVE_TRIAL_IDS.discard(tid)
    return ran


def trial_sampler(seed: int, number: int, n_startup_trials: int) -> Any:
    """The TPE sampler that draws trial ``number``'s parameters, seeded from (seed, number).

    Trial numbers are handed out once by the storage, so no two trials draw the same random
    parameters: not two workers, not a resumed run, not two machines that started the same
    command (same ``--seed``) at the same moment (seeding per process from (seed, worker, trials so
    far) gave such machines the same draws: a trial counted twice). One process with one seed
    still replays exactly. TPE reads the study's history itself; only its random draws need this.

    Example:
        >>> import optuna
        >>> isinstance(trial_sampler(0, 3, n_startup_trials=10), optuna.samplers.TPESampler)
        True
    """
    import optuna

    sub = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=sub, n_startup_trials=n_startup_trials)


def child_main(payload: bytes, parent_pid: int, stop: Any) -> None:  # pragma: no cover - spawned
    """Entry point of a spawned worker process: ``run_worker(*pickle.loads(payload))``.

    SIGINT/SIGTERM stop it cooperatively (a second one at once), and so do its parent's death
    (parent-death signal, parent process id) and the parent closing or writing to ``stop``: it
    never runs a trial for a parent that is gone. Exit code 130 when stopped.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cancel.watch_parent(parent_pid, stop)
    try:
        with cancel.signals_cancel(force="exit"):
            run_worker(*pickle.loads(payload))
    except KeyboardInterrupt:  # stopped, the trial given back: no slow teardown before the exit
        cancel.exit_now(130)
