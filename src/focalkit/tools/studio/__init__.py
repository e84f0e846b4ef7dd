"""``focalkit studio``: a local, no-code playground for imbalanced data in the browser.

One command starts a web app on 127.0.0.1 that puts ``focalkit compare``, ``focalkit tune`` and
the ``focalkit explain`` playground behind a page: pick or upload data, choose the losses, alpha
and gamma (beside the live loss and gradient curves), train in a worker process with live
progress, compare runs side by side, download the JSON, the HTML report and the weights. A JSON
API (OpenAPI at ``/openapi.json``) serves the page and scripts alike.

* :mod:`~focalkit.tools.studio.app`: the FastAPI application (:func:`create_app`);
* :mod:`~focalkit.tools.studio.runs`: requests, checks and the equivalent command lines;
* :mod:`~focalkit.tools.studio.jobs`: the queue and the worker processes;
* :mod:`~focalkit.tools.studio.worker`: the compare worker (a process of its own);
* :mod:`~focalkit.tools.studio.store`: the SQLite history;
* :mod:`~focalkit.tools.studio.datasets`: built-in sets, uploads and previews;
* :mod:`~focalkit.tools.studio.guard`: host, token, origin and upload-size checks.

Needs the ``studio`` extra (FastAPI, uvicorn, python-multipart and the ``tune`` extra):
``pip install 'focalkit[studio]'``. See ``docs/studio.md``.
"""

__all__: list[str] = []
