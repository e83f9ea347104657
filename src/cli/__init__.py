"""Command line: ``python -m src.cli {predict,evaluate,train,ensemble,export,collect,stats,runs,serve}``.

An entry point: may import every layer (the API too, for ``serve``), but not ``src.app``."""

from src.cli.main import main

__all__ = ["main"]
