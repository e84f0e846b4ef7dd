"""The ``focalkit compare`` command (typer). Heavy imports happen inside the command."""

from __future__ import annotations

import os
from typing import Optional

import typer

__all__ = ["compare"]

DEFAULT_OUT = "focalkit-compare"
_STOP_MESSAGE = "\n{signal}: stopping after the current batch (again to exit at once)\n"


def _floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise typer.BadParameter(f"{what} must be comma-separated numbers, got {text!r}") from None
    if not vals:
        raise typer.BadParameter(f"{what} must not be empty")
    return vals


def _alpha(text: str, what: str):
    t = text.strip().lower()
    if t == "auto":
        return None
    if t in ("off", "none"):
        return "off"
    vals = _floats(text, what)
    return vals[0] if len(vals) == 1 else vals


def _init_distributed(device: str) -> tuple[int, int, str]:
    """Join the torchrun process group (gloo on CPU, nccl on CUDA); returns (rank, world, device)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if world > 1 and not dist.is_initialized():
        if device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), device
    return 0, 1, device


def compare(
    data: str = typer.Argument("dense", help="'dense' (synthetic detection-like task), 'digits', or a .csv/.npz file."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="CSV label column (default: 'target', else the last column)."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Number of training seeds (split, init, batch order)."),
    first_seed: int = typer.Option(0, "--first-seed", help="Seeds are first_seed, first_seed + 1, ..."),
    losses: str = typer.Option("ce,balanced_ce,focal", "--losses", help="Comma list of ce, balanced_ce, focal, and the focal family: poly1 (Poly-1), flsd53 (focal loss with FLSD-53's gamma), asl (asymmetric loss; binary and dense tasks only)."),
    balanced_grid: bool = typer.Option(True, "--balanced-grid/--no-balanced-grid", help="With --balanced-alpha auto, also train balanced CE with alpha 0.25 and 0.75 (multiclass: the inverse_sqrt and effective_number class weights), so that the cross-entropy family gets as many tries as focal loss's 4 gammas."),
    epsilon: float = typer.Option(1.0, "--epsilon", help="poly1: Poly-1's epsilon (>= -1), the weight of (1 - p_t)^(gamma + 1)."),
    poly_gamma: float = typer.Option(0.0, "--poly-gamma", help="poly1: gamma (0 = Poly-1 cross-entropy, no alpha; > 0 = Poly-1 focal loss with --alpha)."),
    asl_gamma_pos: float = typer.Option(0.0, "--asl-gamma-pos", help="asl: focusing of positives (>= 0)."),
    asl_gamma_neg: float = typer.Option(4.0, "--asl-gamma-neg", help="asl: focusing of negatives (>= 0)."),
    asl_clip: float = typer.Option(0.05, "--asl-clip", help="asl: probability shift of negatives, in [0, 1)."),
    gammas: str = typer.Option("0.5,1,2,5", "--gammas", help="Focal gammas, comma-separated."),
    alpha: str = typer.Option("auto", "--alpha", help="Focal alpha: auto (0.25 on sigmoid tasks, class weights on multiclass), a float, a comma list per class, or off."),
    balanced_alpha: str = typer.Option("auto", "--balanced-alpha", help="Balanced-CE alpha: auto (class-balanced from training counts), a float, or a comma list."),
    alpha_method: str = typer.Option("inverse", "--alpha-method", help="fk.class_weights method for automatic alpha: inverse, inverse_sqrt, effective_number."),
    prior: str = typer.Option("auto", "--prior", help="Classifier-bias prior for fk.prior_bias: auto (0.01 dense, class frequencies otherwise) or a probability."),
    no_prior_bias: bool = typer.Option(False, "--no-prior-bias", help="Keep PyTorch's default bias init (turns off the paper's prior init)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs (default: dense 15, tables 60)."),
    test_fraction: float = typer.Option(0.3, "--test-fraction", help="Held-out fraction."),
    data_seed: int = typer.Option(0, "--data-seed", help="Seed of the built-in data."),
    out: str = typer.Option(DEFAULT_OUT, "--out", "-o", help="Output directory for the JSON file and the HTML report."),
    save: Optional[str] = typer.Option(None, "--save", help="Directory to save every trained model to (for --init-from)."),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Start every loss from a model saved with --save."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
    html_report: bool = typer.Option(True, "--html/--no-html", help="Write the HTML report."),
    backend: str = typer.Option("auto", "--backend", help="focalkit backend for the losses: auto, reference, eager, fused."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars, table only."),
    model: str = typer.Option("net", "--model", "-m", help="net (the task's small neural net), or gradient boosting: lightgbm, xgboost, catboost (CE = the engine's logloss, balanced CE = class weights, focal = focalkit.gbdt; needs the gbdt extra)."),
    rounds: Optional[int] = typer.Option(None, "--rounds", min=1, help="Boosting rounds (default 200); with --model lightgbm/xgboost/catboost."),
) -> None:
    """Train cross-entropy, alpha-balanced CE (an alpha grid) and focal loss (a gamma grid), and
    on request Poly-1, FLSD-53 and ASL, on the same model and seeds, and report which wins on
    held-out rare-class metrics, calibration (ECE) included (table, JSON, HTML report). It prints
    how many tries each family got.

    Runs under ``torchrun --nproc_per_node N -m focalkit compare ...`` with DDP (rank 0 writes).
    With ``--model lightgbm|xgboost|catboost`` gradient-boosted trees take the net's place.
    """
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from focalkit.tools.experiments.boosting import BoostConfig
    from focalkit.tools.experiments.compare import CompareConfig, prepare, render_table, run_compare, write_json
    from focalkit.tools.experiments.data import DataError
    from focalkit.tools.experiments.train import default_config

    console = Console(stderr=False)
    if not console.is_terminal:  # files and pipes get the whole table
        console = Console(stderr=False, width=max(console.width, 160))
    err = Console(stderr=True, soft_wrap=True)  # an error is one line, however long

    def fail(msg: str, code: int = 2) -> None:
        from rich.markup import escape

        err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False)
        raise typer.Exit(code)

    import focalkit as fk

    try:
        with fk.use_backend(backend):  # checks the name; the run below is wrapped in it again
            pass
    except (TypeError, ValueError) as e:
        fail(f"--backend: {e}")

    from focalkit import _validation as V
    from focalkit.tools.experiments import variants

    for option, check, value in (("--epsilon", variants.check_epsilon, epsilon),
                                 ("--poly-gamma", V.check_float_gamma, poly_gamma),
                                 ("--asl-gamma-pos", V.check_float_gamma, asl_gamma_pos),
                                 ("--asl-gamma-neg", V.check_float_gamma, asl_gamma_neg),
                                 ("--asl-clip", variants.check_clip, asl_clip)):
        try:
            check(value, option)
        except (TypeError, ValueError) as e:
            fail(str(e))
    try:
        loss_list = [s.strip() for s in losses.split(",") if s.strip()]
        prior_value = None if no_prior_bias else ("auto" if prior.strip().lower() == "auto" else _floats(prior, "--prior")[0])
        if isinstance(prior_value, float) and not 0 < prior_value < 1:
            fail(f"--prior must be 'auto' or a probability in (0, 1), got {prior}")
        cfg = CompareConfig(
            data=data, target=target, data_seed=data_seed,
            seeds=list(range(first_seed, first_seed + seeds)), losses=loss_list,
            gammas=_floats(gammas, "--gammas") if "focal" in loss_list else [],
            alpha=_alpha(alpha, "--alpha"), balanced_alpha=_alpha(balanced_alpha, "--balanced-alpha"),
            alpha_method=alpha_method, prior=prior_value, epochs=epochs, test_fraction=test_fraction,
            init_from=init_from, save=save, device=device, model=model.strip().lower(), rounds=rounds,
            balanced_grid=balanced_grid, epsilon=epsilon, poly_gamma=poly_gamma, asl_gamma_pos=asl_gamma_pos,
            asl_gamma_neg=asl_gamma_neg, asl_clip=asl_clip,
        )
    except typer.BadParameter as e:
        fail(str(e))
    if cfg.balanced_alpha == "off":
        fail("--balanced-alpha off is plain cross-entropy; use --losses ce")
    from focalkit.tools._paths import check_output_dir

    for option, path in (("--out", out), ("--save", save)):
        try:  # before any training: a bad output path must not cost the whole run
            if path is not None:
                check_output_dir(option, path)
        except ValueError as e:
            fail(str(e))

    if device.startswith("cuda") and not torch.cuda.is_available():
        fail(f"--device {device}: CUDA is not available here (use --device cpu or auto)")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        fail(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    rank, world, cfg.device = _init_distributed(device)
    torch.set_flush_denormal(True)  # denormal gradients of tiny probabilities are slow on CPU
    main = rank == 0
    try:
        try:
            prepared = prepare(cfg)
        except (DataError, ValueError) as e:
            fail(str(e))
        ds, specs, _, notes = prepared
        if not cfg.device.startswith("cuda"):
            # One intra-op thread per process: the models are too small to gain from more, waiting
            # OpenMP threads slow a shared machine down several-fold, and the numbers stay the same
            # whatever the number of cores (under torchrun: one thread per process).
            torch.set_num_threads(1)
        if main and not quiet:
            console.print(f"[bold]{ds.description}[/]", highlight=False)
            console.print(
                f"{len(specs)} losses x {len(cfg.seeds)} seeds on {cfg.device}"
                + (f", {world} processes (DDP)" if world > 1 else "")
                + f": {', '.join(s.name for s in specs)}",
                highlight=False,
            )
            for n in notes:
                console.print(f"[yellow]note:[/] {n}", highlight=False)
            for line in variants.budget_text(variants.budget(specs)):
                console.print(f"tries: {line}", highlight=False)
        show = main and not quiet and console.is_terminal
        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, disable=not show, transient=False,
        )
        with progress:
            total = progress.add_task("all runs", total=len(specs) * len(cfg.seeds))
            epochs_total = ((cfg.epochs or default_config(ds).epochs) if cfg.model == "net"
                            else (cfg.rounds or BoostConfig().rounds))
            current = {"task": None}

            def on_run_start(i: int, n: int, spec, seed: int) -> None:
                if current["task"] is not None:
                    progress.remove_task(current["task"])
                    progress.advance(total)
                current["task"] = progress.add_task(f"  {spec.name}, seed {seed}", total=epochs_total)

            def on_progress(done: int, total_epochs: int) -> None:
                progress.update(current["task"], completed=done, total=total_epochs)

            from focalkit.tools import cancel

            try:  # Ctrl-C / SIGTERM stop the training between batches; a second one exits at once
                with cancel.signals_cancel(message=_STOP_MESSAGE), fk.use_backend(backend):
                    result = run_compare(cfg, on_run_start=on_run_start, on_progress=on_progress, prepared=prepared)
            except FloatingPointError as e:  # a loss diverged: say which, no traceback
                fail(f"training diverged: {e}; try fewer epochs or another gamma/alpha", code=1)
            except KeyboardInterrupt:
                progress.stop()
                fail("interrupted; nothing written", code=130)
            if current["task"] is not None:
                progress.remove_task(current["task"])
                progress.advance(total)
        if main:
            name = os.path.splitext(os.path.basename(ds.name))[0] or "data"
            json_path = os.path.join(out, f"{name}.json")
            html_path = os.path.join(out, f"{name}.html") if html_report else None
            try:
                write_json(result, json_path)
                if html_path is not None:
                    from focalkit.tools.experiments.report import write_html

                    write_html(result, html_path)
            except OSError as e:
                fail(f"cannot write to {out!r}: {e.strerror or e}", code=1)
            console.print(render_table(result))
            for m, v in result["verdicts"].items():
                console.print(f"[bold]{m}[/]: {v['text']}", highlight=False)
            if result["headline"]:
                console.print(f"[bold]answer[/]: {result['headline']}", highlight=False)
            if quiet:  # printed before training otherwise
                for n in notes:
                    console.print(f"note: {n}", highlight=False)
                for line in variants.budget_text(result["tries"]):
                    console.print(f"tries: {line}", highlight=False)
            console.print(
                f"wrote {json_path}" + (f" and {html_path}" if html_path else "")
                + f" ({result['elapsed']:.0f} s)", highlight=False,
            )
        if world > 1:
            import torch.distributed as dist

            dist.barrier()  # rank 0 has written; no rank tears gloo down under another
    finally:
        import torch.distributed as dist

        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
