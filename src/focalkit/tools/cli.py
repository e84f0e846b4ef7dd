"""The ``focalkit`` command line (``python -m focalkit`` too).

One typer app; each tool subpackage provides its commands and this module adds them, in one place,
by plain imports. With no command, ``focalkit`` prints the short demo of ``focalkit explain demo``.
The CLI needs the optional ``cli`` extra (typer and rich): ``pip install 'focalkit[cli]'``.
"""

from __future__ import annotations

import typer

from focalkit.tools.bench import bench
from focalkit.tools.experiments.cli import compare
from focalkit.tools.explain.cli import demo, explain_app
from focalkit.tools.studio.cli import studio
from focalkit.tools.tune.cli import tune_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="focalkit",
    help="Focal loss: see what alpha and gamma do, compare it with cross-entropy, tune it.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback(
    invoke_without_command=True,
    help="Focal loss: see what alpha and gamma do, compare it with cross-entropy, tune it.\n\n"
    "Run without a command for a short demo (focalkit explain demo).",
)
def _root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        demo()


app.add_typer(explain_app, name="explain")  # focalkit explain table | shares | curves | playground | demo
app.command("compare")(compare)  # focalkit compare
app.command("tune")(tune_command)  # focalkit tune
app.command("bench")(bench)  # focalkit bench
app.command("studio")(studio)  # focalkit studio


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    A usage error (an unknown option, a bad value, a missing file) is one line on stderr,
    ``error: ... (see 'focalkit CMD --help')``, and exit status 2, instead of a usage panel. An
    interrupted command (exit status 130) ends at once (:func:`focalkit.tools.cancel.exit_now`).
    """
    import sys

    from focalkit.tools import cancel

    try:
        code = app(args=argv, prog_name="focalkit", standalone_mode=False)
    except typer.Abort:
        typer.echo("aborted", err=True)
        cancel.exit_now(130)
    except typer.TyperException as e:  # typer's (vendored click's) usage and parameter errors
        if type(e).__name__ == "NoArgsIsHelpError":  # a group run without its command: its help
            e.show()
        else:
            ctx = getattr(e, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            typer.echo(f"error: {e.format_message()}{where}", err=True)
        sys.exit(getattr(e, "exit_code", 1))
    if code == 130:  # interrupted, its message printed: skip the interpreter's slow teardown
        cancel.exit_now(130)
    sys.exit(code if isinstance(code, int) else 0)

if __name__ == "__main__":  # pragma: no cover
    main()
