"""``serve``: the REST API (src/api/app.py, docs/api.md) under uvicorn, with the model and the
results store loaded before the port is bound; uvicorn's limits and timeouts are those of
src/api/server.py (``FER_API_*``)."""

from __future__ import annotations

import argparse

from src import config
from src.cli.common import UserError, load_recognizer, model_path, open_store, start_backend


def cmd_serve(args: argparse.Namespace) -> int:
    from src.api.app import ApiSettings, create_app
    from src.api.auth import serve_problem
    from src.api.capacity import limit_arenas
    from src.api.server import ServerSettings, run

    # Before the model's and the server's threads allocate: see src/api/capacity.py.
    limit_arenas()

    # No key off loopback, or a key too short to resist guessing: one line and exit 2.
    problem = serve_problem(config.API_KEY, args.host)
    if problem:
        raise UserError(problem)
    model_file = model_path(args.model)
    start_backend(model_file)
    # Loaded here, before binding, so a bad model or database is one line and exit 2, not a traceback.
    recognizer = load_recognizer(model_file)
    store = open_store()
    app = create_app(ApiSettings(model_file=model_file), recognizer=recognizer, store=store)
    run(app, ServerSettings(host=args.host, port=args.port, log_level=args.log_level))
    return 0


def add_parsers(sub) -> None:
    """Register ``serve`` on the top-level sub-parsers."""
    p = sub.add_parser("serve", help="run the REST API (see docs/api.md)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need FER_API_KEY)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", metavar="FILE", help="model file or name in models/ (default: FER_MODEL)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=cmd_serve)
