"""``python -m focalkit`` runs the command line (see :mod:`focalkit.tools.cli`)."""

from focalkit.tools.cli import main

main()
