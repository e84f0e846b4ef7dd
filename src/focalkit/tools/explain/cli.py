"""``focalkit explain ...`` and the no-argument demo of ``focalkit`` / ``python -m focalkit``.

Added to the ``focalkit`` app by :mod:`focalkit.tools.cli`. The numbers come from
:mod:`focalkit.tools.explain`; rich draws the tables, matplotlib (imported only by ``curves``) the figure.
Every command takes ``--json`` for machine-readable output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, List, Optional

import typer

from focalkit.tools._format import format_number
from focalkit.tools.explain import api as ex

__all__ = ["demo", "explain_app"]

explain_app = typer.Typer(
    name="explain",
    help="See what alpha and gamma do: the four-case table, loss shares, curves, the focal family, a playground page.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_HINT = ("Next: focalkit explain table | shares | curves -o curves.png | family | playground -o playground.html"
         "   (focalkit --help for all commands: compare, tune, ...)")


# --------------------------------------------------------------------------- helpers
def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, allow_nan=False))


def _fmt(v: float | None) -> str:
    """A table cell: :func:`~focalkit.tools._format.format_number`; None is an infinite ratio."""
    return format_number(v, missing="inf")


def _share(s: float) -> str:
    if math.isnan(s):
        return "-"
    return f"1 - {1 - s:.1e}" if 0.9999 <= s < 1 else f"{s:.4g}"


def _alpha(alpha: float, no_alpha: bool) -> float | None:
    return None if no_alpha else alpha


def _gammas(option: Optional[List[str]], extra: Optional[List[str]],
            default: tuple[float, ...]) -> list[float]:
    """``--gamma 0 0.5 1``, ``--gamma 0,0.5,1`` and ``--gamma 0 --gamma 0.5`` all work."""
    raw = [part for item in (option or []) + (extra or []) for part in item.split(",") if part.strip()]
    if not raw:
        return list(default)
    out = []
    for r in raw:
        try:
            out.append(float(r))
        except ValueError:
            raise typer.BadParameter(f"not a number: {r!r}", param_hint="'--gamma'") from None
    return out


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Turns the library's ValueError/TypeError into a clean usage error naming the argument, and
    a file that cannot be written (a directory, a parent that is a file) into one naming --output."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        raise typer.BadParameter(str(e)) from None
    except (FileExistsError, NotADirectoryError) as e:  # a parent folder on the path is a file
        raise typer.BadParameter(f"cannot write it: {e.filename} is a file, not a folder",
                                 param_hint="'--output'") from None
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise typer.BadParameter(f"cannot write it ({where}{e.strerror or e})", param_hint="'--output'") from None


_ALPHA_HELP = "weight of positives alpha in [0, 1] (negatives get 1 - alpha)"
_NO_ALPHA_HELP = "switch alpha off (alpha_t = 1)"
_JSON_HELP = "print machine-readable JSON instead of a table"


# --------------------------------------------------------------------------- table
def table_rows(result: ex.TableResult) -> Any:
    from rich import box
    from rich.table import Table

    a = "off" if result.alpha is None else f"{result.alpha:g}"
    t = Table(title=f"focal loss against cross-entropy, gamma={result.gamma:g}, alpha={a}",
              box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("example", "p", "y", "p_t", "alpha_t", "(1-p_t)^γ", "CE", "FL", "CE/FL"):
        t.add_column(col, justify="left" if col == "example" else "right", no_wrap=col == "example")
    for r in result.rows:
        t.add_row(r.name, f"{r.p:g}", f"{r.y:g}", _fmt(r.p_t), _fmt(r.alpha_t),
                  _fmt(r.modulating), _fmt(r.ce), _fmt(r.focal), _fmt(r.ratio))
    return t


@explain_app.command("table")
def table_command(
    gamma: float = typer.Option(2.0, "--gamma", "-g", help="focusing parameter gamma >= 0"),
    alpha: float = typer.Option(0.25, "--alpha", "-a", help=_ALPHA_HELP),
    no_alpha: bool = typer.Option(False, "--no-alpha", help=_NO_ALPHA_HELP),
    p: Optional[List[float]] = typer.Option(
        None, "--p", help="add a case: predicted probability of the positive class (repeatable)"),
    y: Optional[List[float]] = typer.Option(
        None, "--y", help="its label in [0, 1] (one per --p; default 1)"),
    only: bool = typer.Option(False, "--only", help="show only the --p/--y cases"),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """How much easy and hard examples count: p_t, alpha_t, (1-p_t)^gamma, CE, FL and CE/FL.

    The four cases are the easy positive (p=0.9, y=1), easy negative (p=0.1, y=0), hard positive
    (p=0.1, y=1) and hard negative (p=0.9, y=0); with gamma 2 and alpha 0.25 focal loss counts
    them 400, 133.3, 4.94 and 1.65 times less than cross-entropy.

    Examples:

        focalkit explain table

        focalkit explain table --gamma 1 --alpha 0.5

        focalkit explain table --p 0.7 --y 1 --p 0.3 --y 0 --only --json
    """
    ps, ys = list(p or []), list(y or [])
    if ys and len(ys) != len(ps):
        raise typer.BadParameter(f"give one --y per --p (got {len(ps)} --p and {len(ys)} --y)",
                                 param_hint="'--y'")
    if only and not ps:
        raise typer.BadParameter("--only needs at least one --p", param_hint="'--only'")
    ys = ys or [1.0] * len(ps)
    extra = [(f"p={pp:g}, y={yy:g}", pp, yy) for pp, yy in zip(ps, ys)]
    cases = extra if only else list(ex.DEFAULT_CASES) + extra
    result = _run(ex.explain_table, gamma=gamma, alpha=_alpha(alpha, no_alpha), cases=cases)
    if as_json:
        _print_json(result.to_dict())
        return
    _console().print(table_rows(result))


# --------------------------------------------------------------------------- shares
def shares_rows(result: ex.SharesResult) -> Any:
    from rich import box
    from rich.table import Table

    t = Table(title=(f"{result.negatives:,} negatives at p_t={result.p_negative:g} against "
                     f"{result.positives:,} positives at p_t={result.p_positive:g}"),
              box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("loss", "gamma", "alpha", "negatives' total", "positives' total",
                "positives' share"):
        t.add_column(col, justify="left" if col == "loss" else "right", no_wrap=col == "loss")
    for r in result.rows:
        t.add_row(r.loss, f"{r.gamma:g}", "off" if r.alpha is None else f"{r.alpha:g}",
                  _fmt(r.negatives_total), _fmt(r.positives_total), _share(r.positive_share))
    return t


@explain_app.command("shares", context_settings={"allow_interspersed_args": True})
def shares_command(
    more_gammas: Optional[List[str]] = typer.Argument(None, hidden=True, metavar="GAMMA"),
    negatives: int = typer.Option(1_000_000, "--negatives", help="number of easy negatives"),
    p_negative: float = typer.Option(
        0.99, "--p-negative", help="p_t of each negative: its probability of being negative"),
    positives: int = typer.Option(10, "--positives", help="number of hard positives"),
    p_positive: float = typer.Option(
        0.01, "--p-positive", help="p_t of each positive: its probability of being positive"),
    gamma: Optional[List[str]] = typer.Option(
        None, "--gamma", "-g", metavar="GAMMA...",
        help="focal-loss gammas: --gamma 0.5 1 2 5 or --gamma 0.5,1,2,5 (default 0.5 1 2 5)"),
    alpha: float = typer.Option(0.25, "--alpha", "-a", help=_ALPHA_HELP),
    no_alpha: bool = typer.Option(False, "--no-alpha", help=_NO_ALPHA_HELP),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Which group the loss listens to: total loss of the negatives and positives, and the share.

    Rows: cross-entropy, alpha-balanced cross-entropy and focal loss for each gamma. With the
    defaults (1,000,000 easy negatives at p_t 0.99, 10 hard positives at p_t 0.01) the positives
    get 0.0046 of the cross-entropy but 0.937 of the focal loss (gamma 2, alpha 0.25).

    Examples:

        focalkit explain shares

        focalkit explain shares --negatives 1000000 --p-negative 0.99 --positives 10 --p-positive 0.01

        focalkit explain shares --gamma 1 2 3 --alpha 0.5 --json
    """
    gammas = _gammas(gamma, more_gammas, (0.5, 1.0, 2.0, 5.0))
    result = _run(ex.explain_shares, negatives=negatives, p_negative=p_negative,
                  positives=positives, p_positive=p_positive, gammas=gammas,
                  alpha=_alpha(alpha, no_alpha))
    if as_json:
        _print_json(result.to_dict())
        return
    _console().print(shares_rows(result))


# --------------------------------------------------------------------------- curves
@explain_app.command("curves")
def curves_command(
    more_gammas: Optional[List[str]] = typer.Argument(None, hidden=True, metavar="GAMMA"),
    gamma: Optional[List[str]] = typer.Option(
        None, "--gamma", "-g", metavar="GAMMA...",
        help="gammas: --gamma 0 0.5 1 2 5 or --gamma 0,0.5,1 (default 0 0.5 1 2 5)"),
    alpha: Optional[float] = typer.Option(
        None, "--alpha", "-a", help="weight of positives in [0, 1] (default: off, as in the paper)"),
    output: Path = typer.Option(Path("focalkit-curves.png"), "--output", "-o",
                                help="the figure: .png, .svg or .pdf"),
    points: int = typer.Option(400, "--points", help="number of p_t values"),
    dpi: int = typer.Option(120, "--dpi", help="resolution of a .png"),
    as_json: bool = typer.Option(False, "--json",
                                 help="print the curve data (and the file written) as JSON"),
) -> None:
    """Loss against p_t for each gamma (the paper's Figure 1) and the gradient beside it (log axis).

    The right panel answers the worry that focal loss "flattens": the gradient with respect to the
    logit of a well-classified example (p_t near 1) is orders of magnitude below cross-entropy's.

    Examples:

        focalkit explain curves -o curves.png

        focalkit explain curves --gamma 0 1 2 --alpha 0.25 -o curves.svg

        focalkit explain curves --gamma 0,2,5 -o curves.pdf --json
    """
    gammas = _gammas(gamma, more_gammas, ex.FIGURE_GAMMAS)
    from focalkit.tools.explain.plots import save_curves

    data = _run(ex.explain_curves, gammas=gammas, alpha=alpha, points=points)
    path = _run(save_curves, output, gammas=gammas, alpha=alpha, points=points, dpi=dpi)
    if as_json:
        _print_json({"output": str(path), "bytes": path.stat().st_size, "data": data.to_dict()})
        return
    _console().print(f"wrote {path} ({path.stat().st_size:,} bytes): loss and |d loss / d logit| "
                     f"against p_t for gamma = {', '.join(f'{g:g}' for g in data.gammas)}")


# --------------------------------------------------------------------------- family
def _pct(r: float) -> str:
    """A ratio to cross-entropy as a percentage, 3 significant digits (``2.9 %``, ``190 %``)."""
    if math.isnan(r):
        return "-"
    return "0 %" if r == 0 else f"{float(f'{100 * r:.3g}'):g} %"


def family_rows(result: Any) -> Any:
    from rich import box
    from rich.table import Table

    t = Table(title="|d loss / d logit| and its ratio to cross-entropy's, against p_t",
              box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("loss", justify="left", no_wrap=True)
    for p in result.p_t:
        t.add_column(f"p_t={p:g}", justify="right", no_wrap=True)
    for m in result.members:
        t.add_row(m.name, *(f"{_fmt(g)} ({_pct(r)})" for g, r in zip(m.grad, m.ratio)))
    return t


def family_answer(result: Any, at: float = 0.9) -> str:
    """One sentence: each member's gradient at p_t = ``at`` as a share of cross-entropy's."""
    if at not in result.p_t:
        return ""
    j = result.p_t.index(at)
    parts = [f"{m.name} {_pct(m.ratio[j])}" for m in result.members[1:]]
    return f"at p_t = {at:g} the gradient is, as a share of cross-entropy's: " + ", ".join(parts)


@explain_app.command("family")
def family_command(
    gamma: float = typer.Option(2.0, "--gamma", "-g", help="focal loss's gamma >= 0"),
    epsilon: float = typer.Option(1.0, "--epsilon", help="Poly-1's epsilon >= -1 (on cross-entropy)"),
    gamma_neg: float = typer.Option(4.0, "--asl-gamma-neg", help="ASL's focusing of negatives >= 0"),
    clip: float = typer.Option(0.05, "--asl-clip", help="ASL's probability shift of negatives, in [0, 1)"),
    flsd53: bool = typer.Option(True, "--flsd53/--no-flsd53", help="include FLSD-53 (gamma 5 below p_t 0.2, 3 above)"),
    p_t: Optional[List[float]] = typer.Option(
        None, "--p-t", help="a p_t of the table (repeatable; default 0.5 0.75 0.9 0.99)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="also write the curves: .png, .svg or .pdf"),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """The focal family against cross-entropy: does focal loss flatten above p_t = 0.75?

    For CE, focal loss, Poly-1, FLSD-53 and ASL (alpha off, a negative example), the gradient
    magnitude |d loss / d logit| at each p_t and its ratio to cross-entropy's, computed by autograd
    through fk.sigmoid_focal_loss and fk.asymmetric_loss. With -o, the loss and gradient curves.

    Examples:

        focalkit explain family

        focalkit explain family --epsilon -1 --asl-clip 0 -o family.png

        focalkit explain family --p-t 0.6 --p-t 0.95 --json
    """
    from focalkit.tools.explain.family import FAMILY_P_T, explain_family

    params = dict(gamma=gamma, epsilon=epsilon, gamma_neg=gamma_neg, clip=clip, flsd53=flsd53)
    result = _run(explain_family, p_t=list(p_t) if p_t else list(FAMILY_P_T), **params)
    path = None
    if output is not None:
        from focalkit.tools.explain.plots import save_family

        path = _run(save_family, output, **params)
    if as_json:
        d = result.to_dict()
        if path is not None:
            d["output"] = str(path)
        _print_json(d)
        return
    con = _console()
    if not con.is_terminal:  # files and pipes get the whole table
        from rich.console import Console

        con = Console(highlight=False, width=max(con.width, 120))
    con.print(family_rows(result))
    answer = family_answer(result)
    if answer:
        con.print(answer)
    if path is not None:
        con.print(f"wrote {path} ({path.stat().st_size:,} bytes): loss and |d loss / d logit| against p_t")


# --------------------------------------------------------------------------- playground
@explain_app.command("playground")
def playground_command(
    output: Path = typer.Option(Path("playground.html"), "--output", "-o", help="the page to write"),
    gamma: float = typer.Option(2.0, "--gamma", "-g", help="initial gamma (slider 0 to 5)"),
    alpha: float = typer.Option(0.25, "--alpha", "-a", help="initial alpha (slider 0 to 1)"),
    epsilon: float = typer.Option(1.0, "--epsilon", help="initial Poly-1 epsilon (slider -1 to 5)"),
    flsd53: bool = typer.Option(True, "--flsd53/--no-flsd53", help="show FLSD-53 at first"),
    gamma_neg: float = typer.Option(4.0, "--asl-gamma-neg", help="initial ASL gamma_neg (slider 0 to 8)"),
    clip: float = typer.Option(0.05, "--asl-clip", help="initial ASL clip (slider 0 to 0.2)"),
    open_page: bool = typer.Option(False, "--open", help="open the page in the default browser"),
    as_json: bool = typer.Option(False, "--json", help="print the file written as JSON"),
) -> None:
    """One self-contained HTML page with gamma and alpha sliders: curves, table and shares, live,
    and the focal family (Poly-1's epsilon, FLSD-53, ASL's gamma_neg and clip) against cross-entropy.

    The page works offline (inline JavaScript, no CDN, no server): open it in any browser.

    Examples:

        focalkit explain playground -o playground.html

        focalkit explain playground --gamma 1 --alpha 0.5 -o playground.html --open
    """
    from focalkit.tools.explain.playground import write_playground

    path = _run(write_playground, output, gamma=gamma, alpha=alpha, epsilon=epsilon, flsd53=flsd53,
                gamma_neg=gamma_neg, clip=clip)
    if as_json:
        _print_json({"output": str(path), "bytes": path.stat().st_size,
                     "url": path.resolve().as_uri()})
    else:
        _console().print(f"wrote {path} ({path.stat().st_size:,} bytes); open "
                         f"{path.resolve().as_uri()} in a browser")
    if open_page:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


# --------------------------------------------------------------------------- the demo
DEMO_GAMMAS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 5.0)


def demo_data(alpha: float = 0.25) -> dict[str, Any]:
    """The numbers of the no-argument demo: per gamma, the loss of one easy negative (p_t 0.99)
    and one hard positive (p_t 0.01), and the positives' share for 1,000,000 easy negatives
    against 10 hard positives; cross-entropy (alpha off) first."""
    cases = [("easy negative", 0.01, 0.0), ("hard positive", 0.01, 1.0)]
    shares = ex.explain_shares(gammas=DEMO_GAMMAS, alpha=alpha)
    rows = []
    specs = [("cross-entropy", None, 0.0)] + [
        ("balanced CE" if g == 0 else f"focal γ={g:g}", alpha, g) for g in DEMO_GAMMAS]
    share_by_spec = {(r.alpha, r.gamma): r for r in shares.rows}
    for name, a, g in specs:
        t = ex.explain_table(gamma=g, alpha=a, cases=cases)
        s = share_by_spec[(a, g)]
        rows.append({"loss": name, "gamma": g, "alpha": a, "easy_loss": t.rows[0].focal,
                     "hard_loss": t.rows[1].focal, "hard_over_easy": t.rows[1].focal / t.rows[0].focal,
                     "positive_share": s.positive_share})
    return {"negatives": shares.negatives, "p_negative": shares.p_negative,
            "positives": shares.positives, "p_positive": shares.p_positive, "rows": rows}


def demo(as_json: bool = False) -> None:
    """Print the demo (what ``focalkit`` with no arguments shows)."""
    d = demo_data()
    if as_json:
        _print_json(d)
        return
    from rich import box
    from rich.table import Table

    con = _console()
    con.print("[bold]focalkit[/bold]: focal loss FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t) "
              "(Lin et al. 2017)")
    t = Table(caption=(f"loss of one easy negative (p_t {d['p_negative']:g}) and one hard positive "
                       f"(p_t {d['p_positive']:g}); share of the total loss that {d['positives']} "
                       f"hard positives take against {d['negatives']:,} easy negatives"),
              box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("loss", "alpha", "easy", "hard", "hard/easy", "positives' share"):
        t.add_column(col, justify="left" if col == "loss" else "right", no_wrap=col == "loss")
    for r in d["rows"]:
        t.add_row(r["loss"],
                  "off" if r["alpha"] is None else f"{r['alpha']:g}", _fmt(r["easy_loss"]),
                  _fmt(r["hard_loss"]), _fmt(r["hard_over_easy"]), _share(r["positive_share"]))
    con.print(t)
    con.print("With cross-entropy the million easy negatives drown the 10 hard positives; "
              "focal loss gives the positives most of the loss.")
    con.print(_HINT)


@explain_app.command("demo")
def demo_command(as_json: bool = typer.Option(False, "--json", help=_JSON_HELP)) -> None:
    """The overview that ``focalkit`` prints when run without arguments.

    Examples:

        focalkit explain demo

        focalkit explain demo --json
    """
    demo(as_json=as_json)
