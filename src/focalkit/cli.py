"""The ``focalkit`` command line (``python -m focalkit`` too).

Each tool lives in its own module and registers its commands here. The CLI needs the optional
``cli`` extra (typer and rich): ``pip install 'focalkit[cli]'``.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="focalkit",
    help="Focal loss: see what alpha and gamma do, compare it with cross-entropy, tune it.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# --- command registration (one line per tool module) ---
__import__("focalkit.explain_cli", fromlist=["register"]).register(app)  # focalkit explain + no-args demo (issue 4)
__import__("focalkit.tune_cli", fromlist=["register"]).register(app)  # focalkit tune (issue 6)
__import__("focalkit.bench_cli", fromlist=["register"]).register(app)  # focalkit bench (issue 3)
from focalkit.experiments.compare_cli import compare as _compare  # noqa: E402

app.command("compare")(_compare)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
