"""``python -m focalkit`` runs the command line (see :mod:`focalkit.cli`)."""

from focalkit.cli import main

main()
