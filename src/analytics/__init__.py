"""Analytics: emotion groups and sentiment, per-face tables and shares, the results store
(with its Alembic migrations), trends over time, saving runs, webhook alerts and demo data.

May import: ``src.config``, ``src.common``, ``src.engine``."""
