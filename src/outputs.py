"""Which ``outputs/<vN>/`` folder evaluation results go to and come from: one rule for writers and readers.

A version folder holds one round of reports: ``metrics.json``, ``roc.json``,
``history.csv``, ``model_comparison.csv``, ``baseline.json``, ``dataset_stats.json``,
``mean_faces.png`` and ``benchmark.json``. The rule:

* ``FER_OUTPUT_VERSION`` (``config.OUTPUT_VERSION``), when set, pins the folder for
  readers and writers alike.
* Otherwise readers (the dashboard) show the highest ``vN`` holding a ``metrics.json``:
  a round is published once its evaluation has been written.
* Writers (``cli evaluate``/``stats``, the baseline, the benchmark) add to the highest
  ``vN`` folder that exists, finished or not, so the files of one round land together
  and re-evaluating the deployed model refreshes what the dashboard shows. A writer
  asked for version ``"new"`` (``--output-version new``) starts the next ``vN``, e.g.
  for a retrained model; the dashboard moves to it when its metrics.json is written.
* With no ``vN`` folder at all, both use ``v1``.

Versions compare by number (``v10`` is newer than ``v9``). No Streamlit, no TensorFlow.
"""

from __future__ import annotations

import re
from pathlib import Path

from src import config

FIRST_VERSION = "v1"
NEW = "new"  # asks a writer for the next vN
_VERSION = re.compile(r"v(\d+)")


def output_version(name: str) -> str:
    """``name`` if it is ``vN`` or ``"new"``, else a ValueError (an argparse ``type``: its name is the message)."""
    if name != NEW and not _VERSION.fullmatch(name):
        raise ValueError(f"output version {name!r} is not of the form v1, v2, ... (or {NEW!r})")
    return name


def _versions(require: str | None = None) -> list[tuple[int, Path]]:
    """(number, folder) of every ``vN`` folder, holding ``require`` when given, oldest first."""
    if not config.OUTPUTS_DIR.is_dir():
        return []
    found = []
    for child in config.OUTPUTS_DIR.iterdir():
        match = _VERSION.fullmatch(child.name)
        if match and child.is_dir() and (require is None or (child / require).is_file()):
            found.append((int(match.group(1)), child))
    return sorted(found)


def read_dir(version: str | None = None) -> Path:
    """The folder the dashboard reads: ``version``, else the pinned one, else the highest ``vN``
    holding a metrics.json, else ``v1``."""
    if version or config.OUTPUT_VERSION:
        return config.OUTPUTS_DIR / (version or config.OUTPUT_VERSION)
    published = _versions(require="metrics.json")
    return published[-1][1] if published else config.OUTPUTS_DIR / FIRST_VERSION


def write_dir(version: str | None = None) -> Path:
    """The folder writers write to: ``version`` (``"new"`` = the next ``vN``), else the pinned one,
    else the highest existing ``vN``, else ``v1``. The caller creates it."""
    existing = _versions()
    if version == NEW:
        return config.OUTPUTS_DIR / f"v{existing[-1][0] + 1 if existing else 1}"
    if version or config.OUTPUT_VERSION:
        return config.OUTPUTS_DIR / (version or config.OUTPUT_VERSION)
    return existing[-1][1] if existing else config.OUTPUTS_DIR / FIRST_VERSION
