"""The studio's worker process: one ``focalkit compare`` run, its progress sent through a pipe.

:func:`compare_main` runs in a process of its own (``multiprocessing``, spawn), never in the web
server's. It does what ``focalkit compare`` does with the same settings (one torch thread on the
CPU, flushed denormals, the chosen backend; :func:`~focalkit.tools.experiments.compare.prepare`
then :func:`~focalkit.tools.experiments.compare.run_compare`), so the numbers are those of the
equivalent command line, and writes the same JSON and HTML report, plus the trained weights.

The worker is forked from a fork server that imported torch once (see
:func:`focalkit.tools.studio.jobs.worker_context`). Messages to the server (plain dicts): ``phase``, ``start`` (losses, seeds, epochs), ``run_start``
(loss, seed), ``epoch`` (mean training loss of one epoch of the net), ``progress`` (a boosting
model trained: rounds done and total), then one of ``done`` (a summary for the
history), ``failed`` (one line) or ``cancelled``. Cancellation is cooperative: the server sets an
event that the worker checks at the start of every training run and after every epoch. The worker
dies with the server (Linux ``PR_SET_PDEATHSIG`` on its parent, the fork server, which exits when
the server does; and a check of both at the same points), so a killed server leaves no orphan
training behind.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["Cancelled", "compare_main", "die_with_parent", "summarize_result", "RESULT", "REPORT", "WEIGHTS"]

RESULT = "result.json"  # written last: its presence marks a finished run
REPORT = "report.html"
WEIGHTS = "models"


class Cancelled(Exception):
    """Raised inside the training callbacks when the server asked the run to stop."""


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - no libc: the parent checks below still apply
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True


def summarize_result(result: dict[str, Any]) -> dict[str, Any]:
    """The few fields of a compare result that the history list shows."""
    return {
        "dataset": result["dataset"]["name"],
        "task": result["dataset"]["task"],
        "losses": list(result["summary"]),
        "seeds": result["seeds"],
        "headline": result.get("headline", ""),
        "best": {m: v.get("best") for m, v in result["verdicts"].items()},
        "ap": {n: s["ap"]["mean"] for n, s in result["summary"].items()},
        "elapsed": result.get("elapsed"),
    }


def compare_main(spec: dict[str, Any], conn: Any, cancel: Any, parent_pid: int) -> None:
    """Run one comparison; ``spec`` holds ``config`` (CompareConfig fields), ``backend``,
    ``device``, ``command`` and ``run_dir``."""
    die_with_parent()
    run_dir = Path(spec["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / "worker.log", "a", buffering=1, encoding="utf-8")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)

    def send(kind: str, **fields: Any) -> None:
        try:
            conn.send({"type": kind, **fields})
        except (BrokenPipeError, EOFError, OSError):  # the server is gone: stop at once
            os._exit(1)

    ppid = os.getppid()  # the fork server (or the server itself under spawn)

    def check() -> None:
        if os.getppid() != ppid or not _alive(parent_pid):
            os._exit(1)
        if cancel.is_set():
            raise Cancelled()

    try:
        send("phase", phase="loading")
        result = _compare(spec, send, check)
        send("phase", phase="writing")
        _write(result, run_dir, spec)
        send("done", summary=summarize_result(result))
    except Cancelled:
        _cleanup(run_dir)
        send("cancelled")
    except FloatingPointError as e:  # the command line's wording
        _cleanup(run_dir)
        send("failed", error=f"training diverged: {e}; try fewer epochs or another gamma/alpha")
    except ValueError as e:  # DataError included: bad data or settings, one line
        _cleanup(run_dir)
        send("failed", error=str(e))
    except BaseException as e:  # a bug: the traceback goes to worker.log, one line to the page
        traceback.print_exc()
        _cleanup(run_dir)
        send("failed", error=f"{type(e).__name__}: {e} (traceback in {run_dir / 'worker.log'})")
    finally:
        conn.close()


def _compare(spec: dict[str, Any], send: Any, check: Any) -> dict[str, Any]:
    import torch

    import focalkit as fk
    from focalkit.tools.experiments.compare import CompareConfig, prepare, run_compare
    from focalkit.tools.experiments.train import default_config

    cfg = CompareConfig(**spec["config"])
    device = cfg.device
    if device == "auto":  # as `focalkit compare --device auto`
        device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg.device = device
    torch.set_flush_denormal(True)
    prepared = prepare(cfg)
    ds, specs, _, notes = prepared
    if not device.startswith("cuda"):
        torch.set_num_threads(1)  # as the command line: one intra-op thread, the same numbers
    if cfg.model == "net":
        epochs = cfg.epochs or default_config(ds).epochs
    else:  # boosting: the progress counts rounds, reported when a model is trained
        from focalkit.tools.experiments.boosting import BoostConfig

        epochs = cfg.rounds or BoostConfig().rounds
    names = [s.name for s in specs]
    send("start", losses=names, seeds=list(cfg.seeds), epochs=epochs,
         runs_total=len(names) * len(cfg.seeds), description=ds.description, task=ds.task,
         device=device if cfg.model == "net" else "cpu", notes=notes, model=cfg.model)
    check()
    current: dict[str, Any] = {}

    def on_run_start(i: int, n: int, loss: Any, seed: int) -> None:
        check()
        current.update(index=i, loss=loss.name, seed=seed)
        send("run_start", index=i, loss=loss.name, seed=seed)

    def on_train_loss(epoch: int, value: float) -> None:
        send("epoch", index=current["index"], epoch=epoch, epochs=epochs, value=value)
        check()

    def on_progress(done: int, total: int) -> None:  # boosting: once a model is trained
        send("progress", index=current["index"], done=done, total=total)
        check()

    with fk.use_backend(spec["backend"]):
        result = run_compare(cfg, on_run_start=on_run_start, on_train_loss=on_train_loss,
                             on_progress=None if cfg.model == "net" else on_progress, prepared=prepared)
    result["command"] = spec["command"]
    return result


def _write(result: dict[str, Any], run_dir: Path, spec: dict[str, Any]) -> None:
    from focalkit.tools.experiments.compare import write_json
    from focalkit.tools.experiments.report import write_html

    write_html(result, str(run_dir / REPORT))
    tmp = run_dir / (RESULT + ".tmp")
    write_json(result, str(tmp))
    os.replace(tmp, run_dir / RESULT)


def _cleanup(run_dir: Path) -> None:
    """Remove partial outputs (weights of the seeds that did finish) of a run that did not."""
    import shutil

    shutil.rmtree(run_dir / WEIGHTS, ignore_errors=True)
