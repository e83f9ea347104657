"""The ``python -m src.cli`` parser and ``main()``: each command module registers its own
sub-parsers; ``main`` turns the errors a command raises into the exit codes of the contract
(src/cli/__init__.py)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from src.cli import adapt, datasets, models, predict, report, runs, serve, watch
from src.cli.common import EXIT_IO_ERROR, EXIT_USER_ERROR, UserError
from src.training.data import DatasetError

# In the order ``--help`` lists the commands.
COMMAND_MODULES = (predict, models, adapt, datasets, runs, report, serve, watch)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m src.cli", description="Facial emotion recognition.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        # e.g. `predict ... | head`: the reader left; that is not a failure.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A full disk or an unwritable output met mid-run: the message, not a traceback
        # (anything already stored was kept and its run marked failed).
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_IO_ERROR
    except KeyboardInterrupt:
        return 130
