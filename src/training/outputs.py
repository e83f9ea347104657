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

Versions compare by number (``v10`` is newer than ``v9``). The deployed model's reports
sit in the version folder itself; another model's (e.g. ``models/fer_plus.keras``) in
its sub-folder named after the model file (``model_folder``). ``model_files`` lists the models
the dashboard offers: the deployed one, other ``.keras`` models and the models adapted to a
customer's faces (which carry their scores in their manifest). No Streamlit, no TensorFlow.
"""

from __future__ import annotations

import re
from pathlib import Path

from src import config
from src.engine.manifest import read_manifest

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


def model_folder(base: Path, model_file: str | Path | None) -> Path:
    """Where one model's reports go inside a version folder: the folder itself for the
    deployed model (``config.MODEL_FILE``), else a sub-folder named after the model file."""
    if model_file is None or Path(model_file).resolve() == Path(config.MODEL_FILE).resolve():
        return base
    return base / Path(model_file).stem


def is_adapted(manifest: dict | None) -> bool:
    """Whether a manifest is an adapted model's (``src/training/adapt.py`` records ``adapted_from``)."""
    return isinstance(manifest, dict) and isinstance(manifest.get("adapted_from"), dict)


def adapted_model_files() -> list[Path]:
    """The adapted models in ``config.MODELS_DIR``: ``.onnx`` files whose own manifest has ``adapted_from``.

    The ONNX twins of a ``.keras`` model are left out: ``fer_cnn.onnx`` shares ``fer_cnn.json``,
    which records no ``adapted_from``, and the INT8 and features twins have no manifest of their own.
    """
    found = []
    for path in sorted(Path(config.MODELS_DIR).glob("*.onnx")):
        if path.is_file() and is_adapted(read_manifest(path, strict=False)):
            found.append(path)
    return found


def model_files() -> list[Path]:
    """The deployed model first, then every other ``.keras`` file beside it that has a manifest,
    then the adapted models (``adapted_model_files``)."""
    default = Path(config.MODEL_FILE)
    others = sorted(
        p
        for p in Path(config.MODELS_DIR).glob("*.keras")
        if p.resolve() != default.resolve() and p.with_suffix(".json").is_file()
    )
    adapted = [p for p in adapted_model_files() if p.resolve() != default.resolve()]
    return ([default] if default.is_file() else []) + others + adapted
