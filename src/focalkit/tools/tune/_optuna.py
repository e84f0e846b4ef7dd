"""The one place where focalkit touches Optuna's private or experimental internals.

``focalkit tune`` runs its own trial loop (``study.ask``/``study.tell``) instead of
``study.optimize`` so that it can reserve budget slots across processes, recover trials of killed
processes at once and give an interrupted trial back; that needs a few things Optuna's public API
does not offer. Each function below says which internal it uses and why the public API does not
suffice. ``tests/tools/tune/test_optuna_adapter.py`` exercises every function against the installed
Optuna, so an Optuna upgrade that changes an internal breaks there, in one place.

Optuna is imported inside the functions (it is an optional dependency).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

__all__ = [
    "ask_quietly",
    "enqueued_params",
    "fail_running_trial",
    "fail_stale_trials",
    "heartbeat_enabled",
    "make_rdb_storage",
    "read_trial",
    "record_heartbeat",
    "set_trial_user_attr",
    "storage_url",
    "trial_id",
]


def trial_id(trial: Any) -> int:
    """The storage id of a trial (``Trial`` or ``FrozenTrial``): ``trial._trial_id``.

    Why: the public ``trial.number`` is per study, but the storage methods used below (reading,
    failing or heart-beating one trial) take the storage-wide id, which Optuna keeps private.
    """
    return int(trial._trial_id)


def read_trial(study: Any, tid: int) -> Any:
    """A fresh ``FrozenTrial`` of one trial by storage id: ``study._storage.get_trial(tid)``.

    Why: the public ``study.get_trials()`` reads every trial of the study (one per call, after each
    trial of every worker) and ``study.trials[number]`` does the same; there is no public read of
    a single trial, and the study's storage object is private (``Study._storage``).
    """
    return study._storage.get_trial(tid)


def fail_running_trial(study: Any, tid: int) -> bool:
    """Marks a RUNNING trial (of any process) FAIL; True if this call made the transition.

    Uses ``study._storage.set_trial_state_values``. Why not ``study.tell(number, state=FAIL)``:
    ``tell`` runs this process's sampler hooks on another process's trial, and with
    ``skip_if_finished=True`` it hides whether this process or another one finished the trial.
    Exactly one process must win, because the winner re-queues the trial's parameters; the storage
    call is atomic (RDB: a row lock) and reports the winner.
    """
    import optuna

    try:
        return bool(study._storage.set_trial_state_values(tid, state=optuna.trial.TrialState.FAIL))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def heartbeat_enabled(storage: Any) -> bool:
    """Whether ``storage`` records heartbeats: ``optuna.storages._heartbeat.is_heartbeat_enabled``.

    Why: the heartbeat interface (``BaseHeartbeat``) and this test live in a private module; focalkit
    records heartbeats itself because it does not use ``study.optimize`` (which would).
    """
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return bool(is_heartbeat_enabled(storage))


def record_heartbeat(storage: Any, tid: int) -> None:
    """Records one heartbeat of trial ``tid`` in an RDB storage (``storage.record_heartbeat``).

    Why: Optuna records heartbeats only inside ``study.optimize`` (private ``_optimize``'s heartbeat
    thread); the storage method is public but takes the private trial id.
    """
    storage.record_heartbeat(tid)


def enqueued_params(frozen: Any) -> dict[str, Any]:
    """The parameters a trial was enqueued with (``study.enqueue_trial``), merged with the ones it
    suggested: ``frozen.system_attrs["fixed_params"]``.

    Why: ``enqueue_trial`` keeps the fixed parameters in a private system attribute; a trial
    interrupted before it suggested them has empty public ``params``, and re-queueing it must not
    lose them.
    """
    return {**frozen.system_attrs.get("fixed_params", {}), **frozen.params}


def ask_quietly(study: Any) -> Any:
    """``study.ask()`` without Optuna's "Heartbeat of storage is supposed to be used with
    Study.optimize." warning (matched on its text).

    Why: with a heartbeat storage Optuna warns on every ``ask`` outside ``optimize``; focalkit
    records the heartbeat itself (:func:`record_heartbeat`), and there is no public switch.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage", category=UserWarning)
        return study.ask()


def storage_url(study: Any) -> str | None:
    """The database URL of a study's RDB storage with the password hidden, or None (in memory).

    Uses ``study._storage`` and, when Optuna wrapped the RDB storage in its private cache,
    ``._backend``. Why: a ``Study`` does not expose its storage publicly.
    """
    storage = getattr(study._storage, "_backend", study._storage)
    engine = getattr(storage, "engine", None)
    return None if engine is None else engine.url.render_as_string(hide_password=True)


def set_trial_user_attr(study: Any, tid: int, key: str, value: Any) -> None:
    """Sets a user attribute of a trial this process does not hold a ``Trial`` object for:
    ``study._storage.set_trial_user_attr``.

    Why: the public ``Trial.set_user_attr`` needs the live ``Trial`` of the process that runs it
    (used by the tests to make a killed trial look as if it ran on another machine).
    """
    study._storage.set_trial_user_attr(tid, key, value)


def make_rdb_storage(
    url: str, engine_kwargs: dict[str, Any], heartbeat_interval: int, grace_period: int | None,
    stale_trial_callback: Callable[[Any, Any], None],
) -> Any:
    """``optuna.storages.RDBStorage`` with heartbeats (an experimental argument since Optuna 2.9:
    its ``ExperimentalWarning`` is silenced here)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=stale_trial_callback,
        )


def fail_stale_trials(study: Any) -> None:
    """``optuna.storages.fail_stale_trials`` (experimental: its warning is silenced here)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
