"""``focalkit tune``: choose gamma and alpha by cross-validation (Optuna), resumable and parallel.

Registered in :mod:`focalkit.tools.cli`; optuna, matplotlib and the experiments are imported only when
the command runs. See ``docs/tune.md``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from focalkit.tools.tune.api import DEFAULT_STORAGE

__all__ = ["tune_command"]

_STOP_MESSAGE = "\n{signal}: stopping; the running trial is given back (again to exit at once)\n"


def _study_name(data: str, metric: str) -> str:
    base = data if data in ("dense", "digits") else Path(data).stem
    return f"{base}-{metric}"


def _trial_line(metric: str, n_trials: int) -> Any:
    from rich.console import Console

    from focalkit.tools.tune.report import trial_line
    from focalkit.tools.tune.schema import n_counted

    console = Console(stderr=True, highlight=False)

    def callback(study: Any, trial: Any) -> None:
        done = n_counted(study.get_trials(deepcopy=False))
        console.print(trial_line(trial, metric, done, n_trials))

    return callback


def _table(result: Any, k: int) -> Any:
    from rich import box
    from rich.table import Table

    from focalkit.tools.tune.report import TABLE_COLUMNS, table_rows

    table = Table(title=f"top {k} trials ({result.metric}, mean +- std over folds)",
                  box=box.SIMPLE_HEAD)
    for col in TABLE_COLUMNS:
        table.add_column(col.format(metric=result.metric),
                         justify="left" if col in ("loss", "alpha", "per fold") else "right",
                         no_wrap=col != "per fold")
    for row in table_rows(result, k):
        table.add_row(*row)
    return table


def _metric_help() -> str:
    """``ap | f1 | balanced_accuracy (maximized) | ece (minimized)``, from the metrics module."""
    from focalkit.tools.experiments.metrics import HIGHER_IS_BETTER, TUNABLE_METRICS

    up = [m for m in TUNABLE_METRICS if HIGHER_IS_BETTER[m]]
    down = [m for m in TUNABLE_METRICS if not HIGHER_IS_BETTER[m]]
    return f"{' | '.join(up)} (maximized) | {' | '.join(down)} (minimized); mean over folds."


def _check_data(data: str, target: str | None, folds: int, data_seed: int) -> None:
    """Load a data file and split it into folds once, so that a bad file fails before anything is
    printed or stored (the built-in sources need no check)."""
    from focalkit.tools.experiments.data import BUILTIN, kfold, load_data

    if data in BUILTIN:
        return
    ds = load_data(data, target=target, seed=data_seed)
    if folds >= 2:
        kfold(ds, folds, seed=data_seed)


def tune_command(
    data: str = typer.Argument("dense", help="'dense', 'digits', or a .csv/.npz file (as focalkit compare)."),
    target: Optional[str] = typer.Option(None, help="CSV label column."),
    metric: str = typer.Option("ap", help=_metric_help()),
    folds: int = typer.Option(5, "--folds", "-k", help="Stratified folds."),
    n_trials: int = typer.Option(30, "--n-trials", "-n", help="Finished trials wanted in the study, earlier runs included (2 are the CE references)."),
    storage: str = typer.Option(DEFAULT_STORAGE, help="Optuna RDB URL: sqlite:///FILE or postgresql://user:pw@host/db."),
    study: Optional[str] = typer.Option(None, help="Study name (default: DATA-METRIC)."),
    workers: int = typer.Option(1, "--workers", "-j", help="Processes on this machine against the same storage."),
    epochs: Optional[int] = typer.Option(None, help="Epochs per fold (default: the task's, as compare)."),
    seed: int = typer.Option(0, help="Model init, batch order and sampler seed."),
    data_seed: int = typer.Option(0, help="Seed of the built-in data and of the folds."),
    gamma_min: float = typer.Option(0.0, help="Lower bound of gamma."),
    gamma_max: float = typer.Option(5.0, help="Upper bound of gamma."),
    alpha_min: Optional[float] = typer.Option(None, help="Lower bound of alpha (binary/dense; default 0.05) or of the class-weight power s (multi-class; default 0)."),
    alpha_max: Optional[float] = typer.Option(None, help="Upper bound of alpha (binary/dense; default 0.95) or of the class-weight power s (multi-class; default 1)."),
    prune: bool = typer.Option(True, "--prune/--no-prune", help="Median pruner on per-epoch validation scores."),
    timeout: Optional[float] = typer.Option(None, help="Start no new trial after this many seconds."),
    out: Path = typer.Option(Path("."), help="Folder for STUDY.json, STUDY.png and STUDY.html."),
    top: int = typer.Option(10, help="Rows of the top-trials table."),
    report_only: bool = typer.Option(False, "--report-only", help="Run no trial: report the study as it is."),
    model: str = typer.Option("net", "--model", "-m", help="net, or gradient boosting: lightgbm, xgboost, catboost (as focalkit compare; needs the gbdt extra)."),
    rounds: Optional[int] = typer.Option(None, "--rounds", min=1, help="Boosting rounds per fold (default 200); with --model lightgbm/xgboost/catboost."),
) -> None:
    """Tune focal loss's gamma and alpha by k-fold cross-validation (Optuna TPE + median pruner).

    Ctrl-C or a kill loses at most the running trial: run the same command again to resume.
    More machines: run the same command with a shared PostgreSQL --storage.
    """
    from focalkit.tools import cancel

    model = model.strip().lower()
    name = study or _study_name(data, metric) + ("" if model == "net" else f"-{model}")
    try:  # from the start: a signal only asks to stop; the work stops at the next safe point
        with cancel.signals_cancel(message=_STOP_MESSAGE):
            _run(data, name, target=target, metric=metric, folds=folds, n_trials=n_trials,
                 storage=storage, workers=workers, epochs=epochs, seed=seed, data_seed=data_seed,
                 gamma_range=(gamma_min, gamma_max), alpha_bounds=(alpha_min, alpha_max),
                 prune=prune, timeout=timeout, out=out, top=top, report_only=report_only,
                 model=model, rounds=rounds)
    except KeyboardInterrupt:
        from rich.console import Console

        Console(stderr=True, highlight=False).print(
            "\n[yellow]interrupted[/yellow]: finished trials are saved in "
            f"{storage} (study {name!r}); run the same command again to resume.")
        raise typer.Exit(130) from None


def _run(data: str, name: str, *, target: Optional[str], metric: str, folds: int, n_trials: int,
         storage: str, workers: int, epochs: Optional[int], seed: int, data_seed: int,
         gamma_range: tuple[float, float], alpha_bounds: tuple[Optional[float], Optional[float]],
         prune: bool, timeout: Optional[float], out: Path, top: int, report_only: bool,
         model: str = "net", rounds: Optional[int] = None) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line

    def fail(msg: str, code: int = 2) -> None:
        from rich.markup import escape

        err.print(f"[red]error:[/red] {escape(msg)}")
        raise typer.Exit(code)

    from focalkit.tools import cancel

    try:
        with cancel.interruptible():  # imports: nothing to give back if a signal comes now
            import optuna  # noqa: F401
            import matplotlib  # noqa: F401

            from focalkit.tools.tune import api as tuning
    except ImportError as e:
        fail(f"focalkit tune needs the 'tune' extra ({e.name} is missing): pip install 'focalkit[tune]'")
    from focalkit.tools._paths import check_output_dir

    try:  # before any trial: a bad --out must not cost the run
        check_output_dir("--out", out)
        if report_only:
            result = tuning.load_study(storage, name)
        else:
            _check_data(data, target, folds, data_seed)  # a bad file: one error line, nothing stored
            err.print(f"tuning {data!r}: study {name!r} in {storage}, {n_trials} trials, "
                      f"{folds} folds, {workers} worker(s)")
            result = tuning.tune_data(
                data, target=target, metric=metric, folds=folds, epochs=epochs, data_seed=data_seed,
                seed=seed, workers=workers, alpha_bounds=alpha_bounds, model=model, rounds=rounds,
                callbacks=[_trial_line(metric, n_trials)], n_trials=n_trials, storage=storage,
                study=name, gamma_range=gamma_range, timeout=timeout, prune=prune,
            )
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as e:
        fail(str(e), 2 if not isinstance(e, RuntimeError) else 1)

    console.print(result.summary())
    if result.best is not None:
        console.print(_table(result, top))
        stem = out / name.replace(os.sep, "_")
        try:
            out.mkdir(parents=True, exist_ok=True)
            result.to_json(f"{stem}.json")
            result.plot(f"{stem}.png")
            result.to_html(f"{stem}.html")
        except OSError as e:
            fail(f"cannot write to {str(out)!r}: {e.strerror or e}", 1)
        console.print(f"wrote {stem}.json, {stem}.png, {stem}.html")


if __name__ == "__main__":  # pragma: no cover
    _app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    _app.command("tune")(tune_command)
    _app(sys.argv[1:])
