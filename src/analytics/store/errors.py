"""The results store's errors, and how a failure is written into a run's ``error`` column."""

from __future__ import annotations


class StoreError(Exception):
    """A problem with the results store, worded for the person who can fix it."""


class RunClosedError(StoreError):
    """The run is unknown (never started, deleted) or finished: it takes no more rows."""


def error_text(exc: BaseException) -> str:
    """How a run's failure is recorded: the exception's type and message."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (KeyboardInterrupt)"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
