"""src/app/cache.py: process-level set-up the dashboard's entry script asks of it."""

from __future__ import annotations

import gc


def test_startup_objects_are_frozen_once_per_process(monkeypatch):
    """The entry script runs on every rerun; only the first call may freeze (later garbage must stay collectable)."""
    from src.app import cache

    monkeypatch.setattr(cache, "_FROZEN", False)
    gc.unfreeze()
    try:
        cache.freeze_startup_objects()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        made_later = [[] for _ in range(1000)]
        cache.freeze_startup_objects()
        # Nothing new is frozen (the count may fall: frozen objects can still be freed by refcount).
        assert gc.get_freeze_count() <= frozen and len(made_later) == 1000
    finally:
        gc.unfreeze()
