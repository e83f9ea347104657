"""Results store: every analysis run and its per-face rows, in SQLite, PostgreSQL or MySQL/MariaDB.

One package persists results, so the dashboard, the API and the CLI read the same history:

* ``Store(url)`` opens the database at a SQLAlchemy URL (default ``FER_DATABASE_URL``, else a
  git-ignored SQLite file ``outputs/results.db``), brings its schema to the newest Alembic
  revision (``src/analytics/migrations/``, run from here: no alembic.ini) and applies the retention
  (``FER_RETENTION_DAYS``). ``open_store()`` keeps one ``Store`` (one connection pool) per URL
  per process.
* A *run* is one analysis (a photo, a batch, a video, a live session, an API call, a CLI
  job): source, campaign, location, tags, model version, status (running/ok/failed) and
  counts (files, samples, people). Its rows are the CLI's per-face rows (``ImageResult.rows``):
  probabilities are kept as a JSON object ``{label: p}``, so models with other labels fit
  too. Live sessions store per-second aggregates, never frames. Alerts are stored with what
  was sent. Images are never stored.
* Rows and live seconds are *samples*; *people* are stored beside them, one row each
  (``src.analytics.people``): a photo's face as its row is added, a video's tracks when its
  run finishes ``ok``, a live session's tracks as they end (``add_people``).
* Every write is one transaction. A write that fails marks its run ``failed`` with the
  reason, and so does a ``Store.run()`` block that raises; the rows written before stay.
  A failed commit, or a SQLite file deleted or replaced under the process, raises
  ``StoreError``: no write is reported done that is not in the database.
* Runs hold a lease (``FER_RUN_LEASE_S``): every write renews its heartbeat, and a run left
  ``running`` by a process that died is marked failed ("abandoned") once the lease has passed,
  when a store opens, on retention passes and as runs start.
* Readers of rows (``results``, ``people``, ``live_seconds``) count finished (``ok``) runs only, unless
  asked (``include_running``, ``include_unfinished``). They read every row: views and reports
  read ``tallies`` (counts per hour, run columns, label, doubt, written with the rows they
  count), ``filter_options``, ``count_results``/``page_results`` and stream exports with
  ``iter_results``/``iter_people``, whose cost does not grow with the whole store.
  Concurrent writers are safe on every backend (SQLite: WAL, a busy timeout and ``BEGIN
  IMMEDIATE`` for writes; deadlocks and lock timeouts are retried), and forked processes
  open their own connections.
* Names (files, campaigns, tags) are stored exactly as given, once made valid Unicode
  (``sanitize.text``); neutralising formulas is for CSV output, not for storage.

Readers return pandas DataFrames with UTC, timezone-aware times. Problems (bad URL, server
down, unknown run, bad rows) raise ``StoreError`` with a message fit for a user, which never
holds a password (nor a query value named like one: ``printable_url``).

The modules, bottom up (import from the package, not from them):

* ``errors``: ``StoreError``, ``RunClosedError`` and ``error_text``.
* ``schema``: the tables, their column types and limits (``SOURCES``, ``NAME_MAX``...).
* ``records``: checking incoming runs, rows, people, live seconds and alerts.
* ``backends``: URLs, drivers, engines and connection settings, driver errors.
* ``queries``: the readers' SELECTs and the DataFrames they return.
* ``store``: ``Store`` (transactions, migrations, writes, reads, retention), ``RunHandle``
  and ``open_store``.
"""

from __future__ import annotations

from src.analytics.store.backends import CONNECT_TIMEOUT_S, EXAMPLE_URLS, parse_url, printable_url
from src.analytics.store.errors import RunClosedError, StoreError, error_text
from src.analytics.store.queries import (
    ALERT_COLUMNS,
    PEOPLE_COLUMNS,
    PEOPLE_TAIL_COLUMNS,
    RESULT_FACE_COLUMNS,
    RESULT_RUN_COLUMNS,
    RESULT_TAIL_COLUMNS,
    RUN_COLUMNS,
    TALLY_COLUMNS,
)
from src.analytics.store.schema import (
    ALERTS,
    CONFIDENCE_BANDS,
    ERROR_MAX,
    FACES,
    LABEL_MAX,
    LIVE_SECONDS,
    NAME_MAX,
    PEOPLE,
    ROW_STATUSES,
    RUN_STATUSES,
    RUNS,
    SOURCES,
    TAGS_MAX,
    TALLIES,
    TALLY_UNITS,
    JSONText,
    UTCDateTime,
)
from src.analytics.store.store import (
    ABANDONED,
    MIGRATIONS_DIR,
    RETENTION_EVERY_S,
    WRITE_ATTEMPTS,
    RunHandle,
    Store,
    open_store,
)

__all__ = [
    "ABANDONED",
    "ALERTS",
    "ALERT_COLUMNS",
    "CONFIDENCE_BANDS",
    "CONNECT_TIMEOUT_S",
    "ERROR_MAX",
    "EXAMPLE_URLS",
    "FACES",
    "LABEL_MAX",
    "LIVE_SECONDS",
    "MIGRATIONS_DIR",
    "NAME_MAX",
    "PEOPLE",
    "PEOPLE_COLUMNS",
    "PEOPLE_TAIL_COLUMNS",
    "RESULT_FACE_COLUMNS",
    "RESULT_RUN_COLUMNS",
    "RESULT_TAIL_COLUMNS",
    "RETENTION_EVERY_S",
    "ROW_STATUSES",
    "RUNS",
    "RUN_COLUMNS",
    "RUN_STATUSES",
    "SOURCES",
    "TAGS_MAX",
    "TALLIES",
    "TALLY_COLUMNS",
    "TALLY_UNITS",
    "WRITE_ATTEMPTS",
    "JSONText",
    "RunClosedError",
    "RunHandle",
    "Store",
    "StoreError",
    "UTCDateTime",
    "error_text",
    "open_store",
    "parse_url",
    "printable_url",
]
