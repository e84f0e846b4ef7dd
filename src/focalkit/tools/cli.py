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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
