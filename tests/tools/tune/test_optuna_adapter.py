"""Every function of focalkit.tools.tune._optuna (the one adapter of Optuna internals) against the
installed Optuna: an upgrade that moves or changes one of these internals fails here, in one place.

Each test checks the adapter's result through Optuna's public API where there is one (the trial's
state, attributes and number read back with ``study.get_trials``), not through the adapter itself.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from focalkit.tools.tune import _optuna  # noqa: E402

S = optuna.trial.TrialState


def _rdb(tmp_path: Path, name: str = "a.db", **kw):
    return _optuna.make_rdb_storage(f"sqlite:///{tmp_path / name}", {}, kw.pop("interval", 1),
                                    kw.pop("grace", None), kw.pop("callback", lambda s, t: None))


def _public(study, number):
    return study.get_trials(deepcopy=False)[number]


def test_make_rdb_storage_silences_the_experimental_warning_and_records_settings(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ExperimentalWarning would fail here
        storage = _rdb(tmp_path, interval=3, grace=7)
    assert isinstance(storage, optuna.storages.RDBStorage)
    assert storage.get_heartbeat_interval() == 3


def test_trial_id_is_the_storage_wide_id_of_live_and_frozen_trials(tmp_path):
    storage = _rdb(tmp_path)
    a = optuna.create_study(storage=storage, study_name="a")
    b = optuna.create_study(storage=storage, study_name="b")
    ta, tb = _optuna.ask_quietly(a), _optuna.ask_quietly(b)
    assert ta.number == tb.number == 0  # numbers are per study ...
    assert _optuna.trial_id(ta) != _optuna.trial_id(tb)  # ... ids are per storage
    assert _optuna.trial_id(_public(a, 0)) == _optuna.trial_id(ta)
    assert isinstance(_optuna.trial_id(ta), int)


def test_read_trial_returns_a_fresh_frozen_trial(tmp_path):
    study = optuna.create_study(storage=_rdb(tmp_path))
    trial = _optuna.ask_quietly(study)
    trial.set_user_attr("k", [1, 2])
    frozen = _optuna.read_trial(study, _optuna.trial_id(trial))
    assert isinstance(frozen, optuna.trial.FrozenTrial)
    assert (frozen.number, frozen.state, frozen.user_attrs) == (0, S.RUNNING, {"k": [1, 2]})
    study.tell(trial, 0.5)
    again = _optuna.read_trial(study, _optuna.trial_id(trial))
    assert (again.state, again.value) == (S.COMPLETE, 0.5)


def test_fail_running_trial_reports_which_call_made_the_transition(tmp_path):
    study = optuna.create_study(storage=_rdb(tmp_path))
    running, done = _optuna.ask_quietly(study), _optuna.ask_quietly(study)
    study.tell(done, 1.0)
    other = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{tmp_path / 'a.db'}")
    assert _optuna.fail_running_trial(other, _optuna.trial_id(running)) is True
    assert _public(study, running.number).state == S.FAIL
    assert _optuna.fail_running_trial(study, _optuna.trial_id(running)) is False  # already failed
    assert _optuna.fail_running_trial(study, _optuna.trial_id(done)) is False
    assert _public(study, done.number).state == S.COMPLETE


def test_heartbeat_enabled(tmp_path):
    assert _optuna.heartbeat_enabled(_rdb(tmp_path)) is True
    assert _optuna.heartbeat_enabled(optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'b.db'}")) is False
    assert _optuna.heartbeat_enabled(optuna.storages.InMemoryStorage()) is False


def test_record_heartbeat_makes_a_trial_go_stale_and_fail_stale_trials_fails_it(tmp_path):
    """Only a trial with a recorded heartbeat can go stale: after the grace period
    fail_stale_trials fails it and calls the storage's stale-trial callback; a trial without a
    heartbeat is left alone."""
    seen = []
    storage = _rdb(tmp_path, interval=1, grace=1, callback=lambda s, t: seen.append(t.number))
    study = optuna.create_study(storage=storage)
    beating, silent = _optuna.ask_quietly(study), _optuna.ask_quietly(study)
    _optuna.record_heartbeat(storage, _optuna.trial_id(beating))
    time.sleep(2.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _optuna.fail_stale_trials(study)
    assert _public(study, beating.number).state == S.FAIL
    assert _public(study, silent.number).state == S.RUNNING
    assert seen == [beating.number]


def test_enqueued_params_survive_a_trial_that_did_not_suggest_them(tmp_path):
    study = optuna.create_study(storage=_rdb(tmp_path))
    study.enqueue_trial({"gamma": 1.5, "alpha": 0.3}, user_attrs={"r": 1})
    trial = _optuna.ask_quietly(study)
    frozen = _public(study, trial.number)
    assert frozen.params == {}  # the public params are empty before suggest_* ...
    assert _optuna.enqueued_params(frozen) == {"gamma": 1.5, "alpha": 0.3}  # ... these are not
    assert trial.suggest_float("gamma", 0.0, 5.0) == 1.5
    assert _optuna.enqueued_params(_public(study, trial.number)) == {"gamma": 1.5, "alpha": 0.3}
    plain = _optuna.ask_quietly(study)
    x = plain.suggest_float("gamma", 0.0, 5.0)
    assert _optuna.enqueued_params(_public(study, plain.number)) == {"gamma": x}


def test_ask_quietly_hides_exactly_the_heartbeat_warning(tmp_path):
    study = optuna.create_study(storage=_rdb(tmp_path))
    with pytest.warns(UserWarning, match="Heartbeat of storage"):  # the warning still exists ...
        study.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ... and ask_quietly raises none
        trial = _optuna.ask_quietly(study)
    assert trial.number == 1 and _public(study, 1).state == S.RUNNING


def test_storage_url_unwraps_optunas_cache_and_hides_the_password(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    assert _optuna.storage_url(optuna.create_study(storage=_rdb(tmp_path))) == url
    assert _optuna.storage_url(optuna.create_study(storage=url, study_name="by-url")) == url
    assert _optuna.storage_url(optuna.create_study()) is None


def test_set_trial_user_attr_of_a_trial_held_by_another_process(tmp_path):
    study = optuna.create_study(storage=_rdb(tmp_path))
    trial = _optuna.ask_quietly(study)
    other = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{tmp_path / 'a.db'}")
    _optuna.set_trial_user_attr(other, _optuna.trial_id(_public(other, 0)), "worker", {"pid": 1})
    assert _public(study, trial.number).user_attrs == {"worker": {"pid": 1}}
