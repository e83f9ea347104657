"""The model manifest: ``<model>.json`` beside a ``.keras`` file, and the one module that reads or writes it.

The manifest records what the app needs before (or instead of) loading the model:
sha256, labels, input size, softmax temperature, version, training facts and
headline metrics. Nothing here imports Keras or TensorFlow at module level, so
the summary pages and the sidebar can read it cheaply; only ``write_manifest``
asks Keras for its version, and only when the caller does not say.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class ManifestError(ValueError):
    """A manifest that is missing, unreadable or not a JSON object; str(err) says which file and why."""


def manifest_path(model_file: str | Path) -> Path:
    """``model.keras`` -> ``model.json``."""
    return Path(model_file).with_suffix(".json")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(model_file: str | Path, strict: bool = True) -> dict | None:
    """The manifest beside ``model_file``.

    ``strict`` raises ``ManifestError`` when it is missing, unreadable or not a JSON
    object (training and evaluation must not guess); otherwise those cases give None
    (the dashboard shows "unversioned" and carries on).
    """
    path = manifest_path(model_file)
    try:
        payload = json.loads(path.read_text())
    except OSError as exc:
        if strict:
            raise ManifestError(f"cannot read the model manifest {path}: {exc.strerror or exc}") from exc
        return None
    except ValueError as exc:
        if strict:
            raise ManifestError(f"the model manifest {path} is not valid JSON: {exc}") from exc
        return None
    if not isinstance(payload, dict):
        if strict:
            raise ManifestError(f"the model manifest {path} holds a {type(payload).__name__}, not an object")
        return None
    return payload


def _framework() -> dict[str, str]:
    import keras  # deferred: only writing a manifest needs to know the Keras version

    return {"keras_version": keras.__version__, "backend": keras.backend.backend()}


def write_manifest(
    model_file: str | Path,
    class_names,
    input_size: int,
    framework: dict[str, str] | None = None,
    **fields: Any,
) -> dict:
    """Write ``<model>.json`` beside the model: sha256, labels, input size and any extra fields.

    ``framework`` is ``{"keras_version", "backend"}``; without it Keras is asked.
    While the weights (sha256) are unchanged, the fields of the existing manifest that
    are not given again are kept, and so is its ``created`` date; new weights start a
    fresh manifest, so no score or temperature of the old weights survives.
    """
    model_file = Path(model_file)
    manifest = {
        "file": model_file.name,
        "sha256": sha256_file(model_file),
        "size_bytes": model_file.stat().st_size,
        "class_names": list(class_names),
        "input_size": int(input_size),
        "temperature": 1.0,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(framework if framework is not None else _framework()),
    }
    previous = read_manifest(model_file) if manifest_path(model_file).exists() else {}
    if previous.get("sha256") == manifest["sha256"]:
        # Same weights: the birth date, temperature and scores stand.
        manifest.update({k: v for k, v in previous.items() if k not in ("file", "sha256", "size_bytes")})
    manifest.update(fields)
    manifest_path(model_file).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
