"""focalkit's tools: each in its own subpackage, each importing the core and never the reverse.

* :mod:`focalkit.tools.cli`: the ``focalkit`` command (typer), which adds the commands below;
* :mod:`focalkit.tools.explain`: what alpha and gamma do (tables, curves, the playground page);
* :mod:`focalkit.tools.experiments`: ``focalkit compare`` (cross-entropy against focal loss);
* :mod:`focalkit.tools.tune`: ``focalkit tune`` and ``fk.tune`` (gamma and alpha by cross-validation);
* :mod:`focalkit.tools.bench`: ``focalkit bench`` (runs :mod:`focalkit.tools.benchmark`);
* :mod:`focalkit.tools.cancel`: cooperative Ctrl-C/SIGTERM handling of the long-running tools;
* :mod:`focalkit.tools._format`: the one number formatter that every tool prints with;
* :mod:`focalkit.tools._paths`: output-path checks made before a tool starts its work.

Each needs an optional extra (``pip install 'focalkit[cli]'``, ``[experiments]``, ``[tune]``); the
core (``import focalkit``) needs only torch and numpy.
"""
