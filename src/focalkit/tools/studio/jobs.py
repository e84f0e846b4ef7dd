"""Runs in worker processes, one at a time by default, the others queued; live progress.

:class:`Jobs` owns the queue. A dispatcher thread starts a queued run when a slot is free; each
running run has a thread of its own in the server that starts the worker process, reads its
messages, folds them into the run's ``progress`` (saved to the store at most once a second and at
every new training run) and hands every event to the page's live streams. Compare runs execute
:func:`focalkit.tools.studio.worker.compare_main` (spawned, with a pipe); tune runs execute the
``focalkit tune`` command itself, whose Optuna study the thread reads for the live trial table.

Cancel: a queued run is dropped at once; a running compare worker is asked to stop (checked at
every epoch) and terminated if it has not stopped ``grace`` seconds later; ``focalkit tune`` gets
SIGTERM (it gives its running trial back and exits), then SIGKILL after ``grace``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from focalkit.tools.studio.store import ACTIVE, Store, now
from focalkit.tools.studio.worker import REPORT, RESULT, summarize_result

__all__ = ["Jobs", "apply_event", "run_dir", "read_result", "tune_outputs"]


def run_dir(data_dir: Path, run_id: str) -> Path:
    """The folder of a run's outputs."""
    return data_dir / "runs" / run_id


def tune_outputs(folder: Path) -> tuple[Path, Path] | None:
    """``(json, html)`` written by ``focalkit tune --out folder``, if any."""
    js = sorted(p for p in folder.glob("*.json") if p.name != RESULT)
    if not js:
        return None
    return js[0], js[0].with_suffix(".html")


def read_result(data_dir: Path, run: dict[str, Any]) -> dict[str, Any] | None:
    """The run's result JSON (compare's or tune's), None when it has none."""
    folder = run_dir(data_dir, run["id"])
    if run["kind"] == "compare":
        path = folder / RESULT
    else:
        out = tune_outputs(folder)
        path = out[0] if out else folder / "missing"
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


# torch._dynamo: torch.optim imports it on the first optimizer (seconds); a missing module is skipped.
_PRELOAD = ["torch", "torch.optim", "torch._dynamo", "sklearn.metrics", "sklearn.model_selection",
            "matplotlib.pyplot", "focalkit.tools.experiments.compare", "focalkit.tools.experiments.report",
            "focalkit.tools.studio.worker"]


def worker_context() -> Any:
    """The multiprocessing context of compare workers: a fork server that imported torch,
    scikit-learn and matplotlib once (a run starts in a fraction of a second; the server
    process itself is never forked), or spawn where there is no fork server."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():  # pragma: no cover - not POSIX
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    # The fork server inherits this environment when it starts: reports are drawn off screen.
    os.environ.setdefault("MPLBACKEND", "Agg")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


_WARM = threading.Event()


def warm_up() -> None:
    """Start the fork server in the background (once per process), so that runs start quickly;
    the page calls it when it opens."""
    if _WARM.is_set():
        return
    _WARM.set()

    def start() -> None:
        try:
            from multiprocessing import forkserver

            worker_context()
            forkserver.ensure_running()
        except Exception:  # pragma: no cover - the first run starts it instead
            pass

    threading.Thread(target=start, name="focalkit-studio-warm-up", daemon=True).start()


def apply_event(progress: dict[str, Any], ev: dict[str, Any]) -> None:
    """Fold one worker event into a run's progress (the page applies the same rule)."""
    t = ev["type"]
    if t == "phase":
        progress["phase"] = ev["phase"]
    elif t == "start":
        progress.update({k: ev.get(k) for k in ("losses", "seeds", "epochs", "runs_total", "description",
                                                 "task", "device", "notes", "model")})
        progress.update(phase="training", runs_done=0, curves=[])
    elif t == "run_start":
        progress["runs_done"] = ev["index"]
        progress["current"] = {"index": ev["index"], "loss": ev["loss"], "seed": ev["seed"], "epoch": 0}
        progress.setdefault("curves", []).append({"loss": ev["loss"], "seed": ev["seed"], "values": []})
    elif t == "epoch":
        progress["current"]["epoch"] = ev["epoch"]
        progress["curves"][ev["index"]]["values"].append(ev["value"])
        if ev["epoch"] == ev["epochs"]:
            progress["runs_done"] = ev["index"] + 1
    elif t == "progress":  # boosting: rounds of the current model
        progress["current"]["epoch"] = ev["done"]
        if ev["done"] >= ev["total"]:
            progress["runs_done"] = ev["index"] + 1
    elif t == "trial":
        trials = progress.setdefault("trials", [])
        for i, tr in enumerate(trials):
            if tr["number"] == ev["trial"]["number"]:
                trials[i] = ev["trial"]
                break
        else:
            trials.append(ev["trial"])
            trials.sort(key=lambda tr: tr["number"])
        progress["trials_done"] = sum(bool(tr.get("counted")) for tr in trials)


class _Live:
    """A run known to the server: its state and the streams that listen to it."""

    def __init__(self, status: str, progress: dict[str, Any]) -> None:
        self.status = status
        self.progress = progress
        self.error: str | None = None
        self.listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        self.cancel = threading.Event()
        self.saved = 0.0


class Jobs:
    """The queue and the workers (see the module docstring)."""

    def __init__(self, store: Store, data_dir: Path, *, concurrency: int = 1, grace: float = 10.0) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.store = store
        self.data_dir = Path(data_dir)
        self.concurrency = concurrency
        self.grace = grace
        self._lock = threading.Condition()
        self._queue: deque[str] = deque()
        self._live: dict[str, _Live] = {}
        self._specs: dict[str, dict[str, Any]] = {}
        self._running: set[str] = set()
        self._threads: dict[str, threading.Thread] = {}
        self._stopping = False
        self._dispatcher = threading.Thread(target=self._dispatch, name="focalkit-studio-dispatch", daemon=True)
        self._dispatcher.start()

    # ------------------------------------------------------------------ public
    def submit(self, run_id: str, spec: dict[str, Any]) -> None:
        """Queue a run that the store already holds as ``queued``."""
        with self._lock:
            self._live[run_id] = _Live("queued", {"phase": "queued"})
            self._specs[run_id] = spec
            self._queue.append(run_id)
            self._lock.notify_all()

    def cancel(self, run_id: str) -> str:
        """Cancel a queued or running run; returns its status after the request."""
        with self._lock:
            live = self._live.get(run_id)
            if live is None or live.status not in ACTIVE:
                raise LookupError(run_id)
            if live.status == "queued":
                self._queue.remove(run_id)
                self._finish(run_id, "cancelled", None)
                return "cancelled"
            live.cancel.set()
            return "running"

    def is_active(self, run_id: str) -> bool:
        with self._lock:
            live = self._live.get(run_id)
            return live is not None and live.status in ACTIVE

    def state(self, run_id: str) -> dict[str, Any] | None:
        """``{"status", "progress", "error"}`` of a queued or running run, else None (the store's
        row is then up to date)."""
        with self._lock:
            live = self._live.get(run_id)
            if live is None:
                return None
            return {"status": live.status, "progress": json.loads(json.dumps(live.progress)),
                    "error": live.error}

    def subscribe(self, run_id: str, loop: asyncio.AbstractEventLoop) -> tuple[dict[str, Any], asyncio.Queue] | None:
        """A snapshot of an active run and a queue of its next events (None when not active)."""
        with self._lock:
            live = self._live.get(run_id)
            if live is None or live.status not in ACTIVE:
                return None
            q: asyncio.Queue = asyncio.Queue()
            live.listeners.append((loop, q))
            snap = {"status": live.status, "progress": json.loads(json.dumps(live.progress)),
                    "error": live.error}
            return snap, q

    def unsubscribe(self, run_id: str, q: asyncio.Queue) -> None:
        with self._lock:
            live = self._live.get(run_id)
            if live is not None:
                live.listeners = [(lp, qq) for lp, qq in live.listeners if qq is not q]

    def shutdown(self) -> None:
        """Stop everything: queued and running runs become ``interrupted``."""
        with self._lock:
            self._stopping = True
            for rid in list(self._queue):
                self._finish(rid, "interrupted", "the studio server stopped while this run was waiting in the queue; run it again")
            self._queue.clear()
            for rid in self._running:
                self._live[rid].cancel.set()
            threads = list(self._threads.values())
            self._lock.notify_all()
        for t in threads:
            t.join(timeout=self.grace + 5)

    # ------------------------------------------------------------------ internals
    def _publish(self, run_id: str, ev: dict[str, Any]) -> None:
        """Send one event to the run's streams (call with the lock held)."""
        for loop, q in self._live[run_id].listeners:
            try:
                loop.call_soon_threadsafe(q.put_nowait, ev)
            except RuntimeError:  # the stream's loop is closed
                pass

    def _event(self, run_id: str, ev: dict[str, Any]) -> None:
        with self._lock:
            live = self._live[run_id]
            apply_event(live.progress, ev)
            self._publish(run_id, ev)
            t = time.monotonic()
            if ev["type"] != "epoch" or t - live.saved > 1.0:
                live.saved = t
                self.store.update_run(run_id, progress=live.progress)

    def _finish(self, run_id: str, status: str, error: str | None, summary: dict[str, Any] | None = None) -> None:
        """Record the end of a run (call with the lock held)."""
        live = self._live[run_id]
        live.status, live.error = status, error
        live.progress["phase"] = status
        fields: dict[str, Any] = dict(status=status, error=error, finished=now(), progress=live.progress)
        if summary is not None:
            fields["summary"] = summary
        self.store.update_run(run_id, **fields)
        self._publish(run_id, {"type": "end", "status": status, "error": error})
        self._specs.pop(run_id, None)
        del self._live[run_id]  # the store has it all from now on

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and (not self._queue or len(self._running) >= self.concurrency):
                    self._lock.wait()
                if self._stopping:
                    return
                rid = self._queue.popleft()
                self._running.add(rid)
                live = self._live[rid]
                live.status = "running"
                live.progress["phase"] = "starting"
                self.store.update_run(rid, status="running", started=now(), progress=live.progress)
                self._publish(rid, {"type": "status", "status": "running"})
                spec = self._specs[rid]
                t = threading.Thread(target=self._run, args=(rid, spec), name=f"focalkit-studio-{rid}", daemon=True)
                self._threads[rid] = t
            t.start()

    def _run(self, run_id: str, spec: dict[str, Any]) -> None:
        try:
            if spec["kind"] == "compare":
                status, error, summary = self._run_compare(run_id, spec)
            else:
                status, error, summary = self._run_tune(run_id, spec)
        except Exception as e:  # pragma: no cover - a bug in the server's side of a run
            status, error, summary = "failed", f"{type(e).__name__}: {e}", None
        with self._lock:
            if self._stopping and status == "cancelled":
                status, error = "interrupted", "the studio server stopped while this run was running; run it again"
            self._finish(run_id, status, error, summary)
            self._running.discard(run_id)
            self._threads.pop(run_id, None)
            self._lock.notify_all()

    def _run_compare(self, run_id: str, spec: dict[str, Any]) -> tuple[str, str | None, dict | None]:
        from focalkit.tools.studio.worker import compare_main

        live = self._live[run_id]
        ctx = worker_context()
        recv, send = ctx.Pipe(duplex=False)
        stop = ctx.Event()
        p = ctx.Process(target=compare_main, args=(spec, send, stop, os.getpid()),
                        name=f"focalkit-studio-worker-{run_id}", daemon=True)
        p.start()
        send.close()
        end: dict[str, Any] | None = None
        asked = None
        while True:
            if live.cancel.is_set() and asked is None:
                asked = time.monotonic()
                stop.set()
            if asked is not None and p.is_alive() and time.monotonic() - asked > self.grace:
                _stop_process(p)
            try:
                if recv.poll(0.2):
                    msg = recv.recv()
                    if msg["type"] in ("done", "failed", "cancelled"):
                        end = msg
                    else:
                        self._event(run_id, msg)
                    continue
            except (EOFError, OSError):  # the worker closed its end: it is exiting
                p.join(self.grace)
                _stop_process(p)
                break
            if not p.is_alive():
                break
        p.join()
        recv.close()
        if end is not None and end["type"] == "done":
            return "done", None, end["summary"]
        if end is not None and end["type"] == "failed":
            return "failed", end["error"], None
        if asked is not None:
            return "cancelled", None, None
        return "failed", f"the worker process stopped unexpectedly (exit code {p.exitcode})", None

    def _run_tune(self, run_id: str, spec: dict[str, Any]) -> tuple[str, str | None, dict | None]:
        live = self._live[run_id]
        folder = Path(spec["run_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / "tune.log"
        self._event(run_id, {"type": "phase", "phase": "training"})
        with open(log_path, "ab") as log:
            # A small trampoline sets the parent-death signal, then execs the command line: if the
            # server is killed, focalkit tune is killed with it (no trial runs for a dead server).
            proc = subprocess.Popen([sys.executable, "-c", _TRAMPOLINE, str(os.getpid())] + spec["argv"],
                                    stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        reader = _TrialReader(folder / "tune.db", spec["study"])
        asked = None
        last = 0.0
        while True:
            if live.cancel.is_set() and asked is None:
                asked = time.monotonic()
                _signal_group(proc, signal.SIGTERM)
            if asked is not None and time.monotonic() - asked > self.grace:
                _signal_group(proc, signal.SIGKILL)
            try:
                code = proc.wait(0.2)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None or time.monotonic() - last > 1.0:
                last = time.monotonic()
                for tr in reader.changed():
                    self._event(run_id, {"type": "trial", "trial": tr})
            if code is not None:
                break
        reader.close()
        if asked is not None:
            return "cancelled", None, None
        if code != 0:
            return "failed", _last_error(log_path) or f"focalkit tune exited with code {code}", None
        out = tune_outputs(folder)
        if out is None:
            return "failed", "focalkit tune finished without a complete trial (no report written)", None
        with open(out[0], encoding="utf-8") as fh:
            result = json.load(fh)
        return "done", None, tune_summary(result)


def tune_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The few fields of a tune result that the history list shows."""
    best = result.get("best") or {}
    return {"metric": result.get("metric"), "n_trials": result.get("n_trials"),
            "best": {k: best.get(k) for k in ("number", "gamma", "alpha", "alpha_param", "value", "reference")},
            "improvement": result.get("improvement")}


_TRAMPOLINE = (
    "import os, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    import ctypes; ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _stop_process(p: Any) -> None:
    """Terminate a worker process, then kill it if it is still there 3 s later."""
    if p.is_alive():
        p.terminate()
        p.join(3)
        if p.is_alive():
            p.kill()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _last_error(log_path: Path) -> str | None:
    """The command line's own error line (``error: ...``) from its log, if any."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.strip().startswith("error:"):
            return line.strip()[len("error:"):].strip()
    return None


class _TrialReader:
    """Reads the trials of a ``focalkit tune`` study while the command writes them."""

    def __init__(self, db: Path, study: str) -> None:
        self.db, self.study = db, study
        self._storage = None
        self._seen: dict[int, str] = {}

    def changed(self) -> list[dict[str, Any]]:
        if self._storage is None and not self._ready():
            return []
        try:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            if self._storage is None:
                self._storage = optuna.storages.RDBStorage(
                    f"sqlite:///{self.db}", skip_compatibility_check=True, skip_table_creation=True)
            st = optuna.load_study(study_name=self.study, storage=self._storage)
            trials = st.get_trials(deepcopy=False)
        except Exception:  # not created yet, or locked by the writer: next time
            return []
        out = []
        for t in trials:
            row = trial_row(t)
            key = json.dumps(row, sort_keys=True)
            if self._seen.get(row["number"]) != key:
                self._seen[row["number"]] = key
                out.append(row)
        return out

    def _ready(self) -> bool:
        """Whether the command has created its study (read-only look, so as never to race it)."""
        import sqlite3

        if not self.db.exists():
            return False
        try:
            con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=0.5)
            try:
                return con.execute("SELECT 1 FROM studies WHERE study_name = ?", (self.study,)).fetchone() is not None
            finally:
                con.close()
        except sqlite3.Error:
            return False

    def close(self) -> None:
        if self._storage is not None:
            try:
                self._storage.engine.dispose()
            except Exception:  # pragma: no cover
                pass


def trial_row(t: Any) -> dict[str, Any]:
    """One row of the live trial table from an Optuna trial written by ``focalkit tune`` (the
    attribute names are :mod:`focalkit.tools.tune.schema`'s)."""
    from focalkit.tools.tune import schema

    ua = t.user_attrs
    value = t.value
    if value is None and t.intermediate_values:
        value = t.intermediate_values[max(t.intermediate_values)]
    alpha = ua.get(schema.ALPHA)
    return schema.jsonable({
        "number": t.number,
        "state": t.state.name,
        "counted": schema.is_counted(t),
        "reference": ua.get(schema.REFERENCE),
        "gamma": ua.get(schema.GAMMA),
        "alpha": alpha,
        "alpha_param": ua.get(schema.ALPHA_PARAM),
        "per_class": isinstance(alpha, list),
        "value": value,
        "fold_scores": ua.get(schema.FOLD_SCORES, []),
        "duration_s": ua.get(schema.DURATION_S),
    })


def remove_run_files(data_dir: Path, run_id: str) -> None:
    shutil.rmtree(run_dir(data_dir, run_id), ignore_errors=True)


def recover_summary(data_dir: Path):
    """For :meth:`Store.recover`: the summary of a run whose worker finished before a kill."""
    def finished(run: dict[str, Any]) -> dict[str, Any] | None:
        result = read_result(data_dir, run)
        if result is None:
            return None
        if run["kind"] == "compare":
            if not (run_dir(data_dir, run["id"]) / REPORT).exists():
                return None
            return summarize_result(result)
        return tune_summary(result)
    return finished
