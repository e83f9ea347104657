"""The REST API (FastAPI), served by ``python -m src.cli serve``.

May import: every layer below the entry points (not ``src.cli``, not ``src.app``)."""
