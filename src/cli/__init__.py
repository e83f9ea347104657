"""Command line: ``python -m src.cli {predict,evaluate,train,ensemble,export,adapt,error-model,collect,stats,runs,serve,watch}``.

An entry point: may import every layer (the API too, for ``serve``), but not ``src.app``.

The contract other tools rely on:

* ``predict`` writes one row per detected face (CSV or JSON lines) with columns
  ``file,face,x,y,w,h,emotion,confidence,<labels>,status,error,uncertain,doubt`` (``uncertain``:
  the label is unreliable; ``doubt``: why, codes of ``src.engine.doubt`` joined by "; "), then ``sentiment``, the
  custom groups' columns, ``time`` and ``track_id`` (a video's faces: one row per face per
  sampled frame, ``--every`` seconds apart) and, for a stored run, ``campaign`` and
  ``location``. With ``--output`` (or ``--people FILE``) it also writes one row per person:
  each photo face, each person followed through a video. A file that
  cannot be used (missing, not an image, truncated) gets one ``status=error`` row, the
  other files are still read and written, and the run exits 1 so that a script notices.
* In ``predict`` output, boxes are in the photo's original pixels (however large: it
  is decoded at most ``FER_DECODE_MAX_SIDE`` on its long side, and the boxes are
  scaled back); CSV text cells that a spreadsheet would
  run as a formula get a leading ``'`` (JSON lines stay exact); file-name bytes that
  are not UTF-8 are written as ``\\xNN``. Folder entries left out (not images, hidden)
  are listed on stderr, one ``skipped NAME: REASON`` line each, before the summary.
* ``evaluate`` prints a summary whose last line is ``accuracy=0.xxxx macro_f1=0.xxxx``.
* ``serve`` runs the REST API (src/api/app.py) with uvicorn; without ``FER_API_KEY`` it
  refuses any host but a loopback address (exit 2).
* ``predict --engine ray`` gives the same rows, in the same order, from Ray Data workers
  on this machine or the cluster at ``--address`` (src/cli/ray_engine.py, docs/ray.md);
  without the ``ray`` extra it exits 2.
* ``predict --store`` also saves the run in the results database (src/analytics/store/), rows as
  they are produced; ``runs list|export|delete|retention`` list, stream out (CSV, chunk by chunk) and delete what is stored.
* ``watch SOURCE`` reads a video file, camera or network stream until stopped: 0 on
  SIGTERM/SIGINT, 2 for a source that cannot be opened, 74 for a stream lost for good
  after ``--max-retries``.
* Exit codes: 0 done; 1 ``predict`` wrote every row but some inputs could not be read;
  2 user errors (bad data path, missing model, unreachable database, unknown run, a
  runtime that is not installed), one line on stderr; a read or write that fails mid-run (a full disk, an
  unwritable output) prints ``error: REASON`` and exits 74; 130 interrupted (Ctrl-C).

TensorFlow is imported only after the arguments are checked, so user errors are
fast and free of backend log noise.

The modules, one concern each:

* ``main``: ``build_parser()`` and ``main()`` (errors to exit codes);
* ``common``: ``UserError``, the exit codes, model and data paths, the Keras start-up,
  the output-folder options, opening the results store;
* ``predict``: ``predict``, its input listing (``iter_inputs``) and row writing;
* ``models``: ``evaluate``, ``train``, ``ensemble``, ``export`` (the commands needing Keras);
* ``datasets``: ``collect``, ``stats``;
* ``runs``: ``runs list|export|delete|retention``;
* ``serve``: ``serve``;
* ``ray_engine``: ``predict --engine ray``.
"""

from src.cli.main import main

__all__ = ["main"]
