"""The active groups: ``FER_GROUPS_FILE`` read once per process, saved atomically, sentiment from it.

``active()`` never raises: a missing or invalid groups file (a ``.json`` one included) is
logged, reported by ``active_problem()``, and the built-in sentiment grouping is used alone.
``save`` to the active file (the dashboard editor's save) takes effect at once; ``reload``
reads the file again after it changed on disk or ``config.GROUPS_FILE`` was pointed elsewhere.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from src import config
from src.analytics.groups.model import GroupError, Grouping, GroupSet, default_set
from src.analytics.groups.toml_file import check_path, load, to_toml
from src.analytics.groups.validation import validate

LOGGER = logging.getLogger(__name__)

_LOCK = threading.Lock()
_ACTIVE: tuple[GroupSet, str] | None = None  # (the set, why the file was not used or "")


def save(group_set: GroupSet, path: str | Path | None = None, class_names: Sequence[str] = config.EMOTIONS) -> Path:
    """Validate and write ``group_set`` as TOML, atomically; the active set follows when ``path`` is its file.

    ``path`` defaults to ``config.GROUPS_FILE``. Raises ``GroupError`` (invalid, a ``.json``
    name, or the file cannot be written).
    """
    path = Path(path) if path is not None else Path(config.GROUPS_FILE)
    check_path(path)
    group_set = validate(group_set, class_names)
    text = to_toml(group_set)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise GroupError(f"{path}: cannot be written ({exc})") from None
    if _same_file(path, config.GROUPS_FILE):
        global _ACTIVE
        with _LOCK:
            _ACTIVE = (group_set.with_sentiment(), "")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def load_active(path: str | Path | None = None) -> tuple[GroupSet, str]:
    """The groups of ``path`` (default ``config.GROUPS_FILE``) and ``""``; or, when it is missing or
    invalid, the built-in sentiment alone and a message saying why. Never raises."""
    path = Path(path) if path is not None else Path(config.GROUPS_FILE)
    try:
        return load(path).with_sentiment(), ""
    except GroupError as exc:
        message = f"Emotion groups not loaded, using sentiment only: {exc}"
    except Exception as exc:  # whatever the file holds, the app starts
        message = f"Emotion groups not loaded, using sentiment only: {path}: {type(exc).__name__}: {exc}"
    LOGGER.warning(message)
    return default_set(), message


def active() -> GroupSet:
    """The process-wide groups (``FER_GROUPS_FILE``, read once; sentiment always included)."""
    global _ACTIVE
    current = _ACTIVE
    if current is None:
        with _LOCK:
            if _ACTIVE is None:
                _ACTIVE = load_active()
            current = _ACTIVE
    return current[0]


def active_problem() -> str:
    """Why the groups file was not used (``""`` when it was)."""
    active()
    return _ACTIVE[1] if _ACTIVE else ""


def reload() -> GroupSet:
    """Read ``config.GROUPS_FILE`` again (after it changed on disk or the setting changed)."""
    global _ACTIVE
    with _LOCK:
        _ACTIVE = load_active()
    return _ACTIVE[0]


def sentiment() -> Grouping:
    """The sentiment grouping in force (the active file's, or the built-in one)."""
    return active().sentiment


def sentiment_of(emotion: str) -> str:
    """Sentiment bucket of an emotion label (unknown labels count as the sentiment grouping's
    ``other``: neutral), by the sentiment grouping in force (``sentiment()``)."""
    return sentiment().label_of_emotion(emotion)
