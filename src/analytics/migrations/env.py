"""Alembic environment of the results store, run programmatically by ``Store`` (src/analytics/store/store.py).

``Store._migrate`` passes an open connection in ``config.attributes["connection"]``; no alembic.ini
and no URL are read here. SQLite gets batch mode, so future ALTERs work there too.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the results store migrations run through src.analytics.store.Store (no alembic.ini)")

context.configure(
    connection=connection,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
