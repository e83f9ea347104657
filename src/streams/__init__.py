"""Streams: the engine run over time. Video files and the live camera, each person
followed by a track, per-second counts, the live alert, and annotated frames.

May import: ``src.config``, ``src.common``, ``src.engine``, ``src.analytics``."""
