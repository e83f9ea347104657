"""``report``: the stakeholder report of stored results as a self-contained HTML file or a PDF.

    python -m src.cli report --campaign "Spring ad A" --campaign "Spring ad B" --output report.pdf

People counted, raw and corrected shares with 95% ranges, the comparison of the campaigns
with plain verdicts, the method and its limits, and the model (``src/analytics/report``).
The format comes from the output's suffix (``.html``, ``.htm``, ``.pdf``) or ``--format``.
The correction uses the error model beside the model (``--model``, the deployed one by
default); without one the shares are reported as labelled, with a warning. A selection
with no people is exit 2 and nothing is written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from src.analytics.store import SOURCES
from src.cli.common import UserError, model_path, open_store, store_errors
from src.common import sanitize

SUFFIXES = {".html": "html", ".htm": "html", ".pdf": "pdf"}


def output_format(output: str, fmt: str | None) -> str:
    """``--format``, else the format the output's suffix names; a user error when neither says."""
    if fmt:
        return fmt
    found = SUFFIXES.get(Path(output).suffix.lower())
    if found is None:
        raise UserError(f"cannot tell the format of {sanitize.line(output)!r}: name it .html or .pdf, or pass --format")
    return found


def load_model_facts(model_file: Path):
    """(``ModelFacts``, error model or None) for ``model_file``; a missing error model is a warning."""
    from src.analytics.report import ModelFacts
    from src.engine.manifest import read_manifest
    from src.training import model_card
    from src.training.error_model import ErrorModelError, load_error_model

    manifest = read_manifest(model_file, strict=False)
    facts = ModelFacts.from_manifest(manifest, model_card.plain_name(manifest))
    try:
        error_model = load_error_model(model_file)
    except ErrorModelError as exc:
        print(f"warning: {exc}; the report gives shares as labelled, not corrected", file=sys.stderr)
        error_model = None
    return facts, error_model


def cmd_report(args: argparse.Namespace) -> int:
    from src.analytics.report import EmptySelection, Selection, build_report, render

    fmt = output_format(args.output, args.format)
    try:
        selection = Selection.of(args.campaign, args.location, args.source, since=args.since, until=args.until)
    except ValueError as exc:
        raise UserError(f"--since/--until: {exc}") from None
    facts, error_model = load_model_facts(model_path(args.model))
    store = open_store()
    with store_errors():
        try:
            report = build_report(store, selection, error_model, facts)
        except EmptySelection as exc:
            raise UserError(sanitize.line(str(exc))) from None
    data = render(report, fmt)
    output = Path(args.output)
    output.write_bytes(data)
    c = report.total.counts
    print(
        f"wrote {output} ({fmt.upper()}, {len(data) / 1024:,.0f} KB): {c.people:,} people "
        f"({c.samples:,} samples, {c.face_seconds:,} face-seconds), {len(report.comparisons)} "
        f"comparison{'s' * (len(report.comparisons) != 1)}, shares {'corrected' if report.corrected else 'as labelled'}"
    )
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "report",
        help="a report of stored results for managers: people, corrected shares, comparisons (HTML or PDF)",
        description="Write the report of the selected campaigns (finished runs of the results store, "
        "FER_DATABASE_URL) as one self-contained HTML file or a PDF.",
    )
    p.add_argument(
        "--campaign",
        action="append",
        required=True,
        metavar="NAME",
        help="a campaign to report on (repeat for several; two or more are compared)",
    )
    p.add_argument("--location", action="append", metavar="NAME", help="only runs at this location (repeatable)")
    p.add_argument("--source", action="append", choices=SOURCES, help="only runs from this source (repeatable)")
    p.add_argument("--since", metavar="WHEN", help="runs started from this date (YYYY-MM-DD, UTC) or ISO 8601 time on")
    p.add_argument(
        "--until",
        metavar="WHEN",
        help="runs started before this ISO 8601 time; a date (YYYY-MM-DD) includes that whole day (UTC)",
    )
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="where to write it: report.html or report.pdf")
    p.add_argument("--format", choices=("html", "pdf"), help="the format, whatever the output's suffix")
    p.add_argument(
        "--model",
        metavar="FILE",
        help="the model whose error model corrects the shares (default: the deployed model, FER_MODEL)",
    )
    p.set_defaults(func=cmd_report)
