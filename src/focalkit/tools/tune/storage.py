"""The study's storage: opening it, recovering the trials of dead processes, heartbeats.

Any Optuna RDB URL works (``sqlite:///tune.db``, ``postgresql://...``). Each trial records a
heartbeat (:class:`Heartbeat`); a trial left RUNNING by a process that was killed is marked FAIL
once its heartbeat is older than the grace period (at once when the dead process ran on this host)
and its parameters are queued again (:func:`requeue`), so a kill loses at most the running trial's
work.
"""

from __future__ import annotations

import datetime
import os
import socket
import threading
import time
from collections.abc import Collection, Sequence
from typing import Any

from focalkit.tools.tune import _optuna
from focalkit.tools.tune.schema import REFERENCE, RETRY_OF, SPACE, WORKER, jsonable
from focalkit.tools.tune.space import SearchSpace

__all__ = [
    "Heartbeat",
    "enqueue_references",
    "fail_dead_trials",
    "make_storage",
    "open_study",
    "pid_alive",
    "requeue",
]


def requeue(study: Any, trial: Any) -> None:
    """Queues a failed (killed) trial's parameters again, so it is not lost."""
    attrs = {k: v for k, v in trial.user_attrs.items() if k == REFERENCE}
    params = _optuna.enqueued_params(trial)
    if not params and not attrs:
        return  # died before choosing its parameters: nothing to re-run
    attrs[RETRY_OF] = trial.user_attrs.get(RETRY_OF, trial.number)
    study.enqueue_trial(params, user_attrs=attrs)


def make_storage(storage: str | None, heartbeat_interval: int, grace_period: int | None) -> Any:
    """An Optuna storage for a URL (None: in memory), with a one-line ValueError when the URL is
    not one, its folder is missing, its driver is not installed or the server cannot be reached."""
    import optuna

    if storage is None:
        return optuna.storages.InMemoryStorage()
    if not isinstance(storage, str):
        raise TypeError(f"storage must be a database URL string or None, got {type(storage).__name__}")
    try:
        import sqlalchemy.engine
        import sqlalchemy.exc

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
        for attempt in range(5):
            try:
                return _optuna.make_rdb_storage(_with_installed_driver(url), engine_kwargs,
                                                heartbeat_interval, grace_period, requeue)
            except Exception as e:
                # Processes (machines) that start at once on an empty database race to create
                # Optuna's tables and its schema version row: the loser sees "already exists" or
                # a unique-constraint error; the schema is there now, so opening again works.
                racing = isinstance(e, sqlalchemy.exc.IntegrityError) or "already exists" in str(e)
                if not racing or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover
    except ImportError as e:
        name = getattr(e.__cause__, "name", None) or e.name or "its driver"
        raise ValueError(
            f"storage {storage!r} needs the database driver {name!r}: pip install it "
            "(for PostgreSQL: pip install 'focalkit[tune]', which includes psycopg)"
        ) from None
    except Exception as e:  # sqlalchemy / optuna errors: unreachable server, bad scheme, ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"storage {storage!r} cannot be opened: {msg}") from None


def _with_installed_driver(url: Any) -> str:
    """The URL as a string; ``postgresql://`` without a driver gets one that is installed.

    SQLAlchemy's default PostgreSQL driver is psycopg2 before 2.1 and psycopg (3) since; the
    ``tune`` extra installs psycopg. A URL that names its driver (``postgresql+psycopg2://``) is
    kept as it is.
    """
    if url.get_backend_name() == "postgresql" and "+" not in url.drivername:
        import importlib.util

        for driver in ("psycopg", "psycopg2"):
            if importlib.util.find_spec(driver) is not None:
                url = url.set(drivername=f"postgresql+{driver}")
                break
    return url.render_as_string(hide_password=False)


def open_study(
    storage: Any, study_name: str, space: SearchSpace, seed: int | None, n_startup_trials: int,
    prune: bool, pruner_warmup_steps: int, *, create: bool,
) -> Any:
    """Creates or loads the study (TPE sampler, median or no pruner) and checks that a resumed
    study was made with the same search (``space``)."""
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
    stored = study.user_attrs.get(SPACE)
    if stored is None:
        if not create:
            raise ValueError(f"study {study_name!r} was not created by focalkit.tools.tune.api")
        if study.trials:
            raise ValueError(
                f"study {study_name!r} already has trials that focalkit did not create; "
                "choose another study name"
            )
        study.set_user_attr(SPACE, space.as_attr())
    elif stored != jsonable(space.as_attr()):
        diff = {k: (stored.get(k), v) for k, v in jsonable(space.as_attr()).items() if stored.get(k) != v}
        raise ValueError(
            f"study {study_name!r} in this storage was created with a different search: "
            + ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in diff.items())
            + "; pass the same settings to resume it, or choose a new study name"
        )
    if study.direction.name.lower() != space.direction:
        raise ValueError(f"study {study_name!r} has direction {study.direction.name.lower()}")
    return study


def enqueue_references(study: Any, references: Sequence[str]) -> None:
    """Queues the reference trials the study does not have yet."""
    have = {t.user_attrs.get(REFERENCE) for t in study.get_trials(deepcopy=False)}
    for ref in references:
        if ref not in have:
            study.enqueue_trial({}, user_attrs={REFERENCE: ref})


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie, killed but not reaped, is dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def fail_dead_trials(
    study: Any, active: Collection[int], heartbeat_interval: int | None, grace_period: int | None,
) -> None:
    """Fails (and re-queues) RUNNING trials whose process is gone.

    Trials of processes on this host are checked by process id at once; the others through the
    heartbeat (``optuna.storages.fail_stale_trials``) once it is older than the grace period
    (default 2 x ``heartbeat_interval``; None: the storage keeps no heartbeat). ``active`` holds
    the storage ids of the trials this process is running.
    """
    _optuna.fail_stale_trials(study)
    host, me = socket.gethostname(), os.getpid()
    grace = grace_period or 2 * (heartbeat_interval or 0)
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tid = _optuna.trial_id(t)
        owner = t.user_attrs.get(WORKER)
        if not owner:
            # Killed between creating the trial and recording its owner and first heartbeat:
            # give it (generously, clocks of machines differ) 5 grace periods.
            started = t.datetime_start
            if not heartbeat_interval or started is None or tid in active:
                continue
            if (datetime.datetime.now() - started).total_seconds() < 5 * grace:
                continue
        elif owner.get("host") != host:
            continue  # another machine's trial: the heartbeat decides (above)
        else:
            pid = int(owner.get("pid", -1))
            if (tid in active) if pid == me else pid_alive(pid):
                continue
        if _optuna.fail_running_trial(study, tid):
            requeue(study, _optuna.read_trial(study, tid))


class Heartbeat:
    """Records a trial's heartbeat every ``interval`` seconds in a daemon thread (a no-op for a
    storage without heartbeats)."""

    def __init__(self, storage: Any, tid: int, interval: float) -> None:
        self._storage, self._tid, self._interval = storage, tid, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if _optuna.heartbeat_enabled(self._storage):
            _optuna.record_heartbeat(self._storage, self._tid)
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                _optuna.record_heartbeat(self._storage, self._tid)
            except Exception:  # pragma: no cover - a transient database error: try again
                pass

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
