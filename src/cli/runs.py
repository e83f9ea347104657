"""``runs list|export|delete|retention``: what the results database (FER_DATABASE_URL, src/analytics/store/,
docs/store.md) holds, listed or deleted.

Runs are listed with their people (a photo's face, a video's or live session's track: each
person once) and their samples (face observations: a photo's faces, a video's face rows, a
live session's face-seconds), so one person in front of the camera for 15 s reads as 1
person and 15 samples. ``export`` writes the stored samples (or people) as CSV chunk by
chunk (``Store.iter_results``/``iter_people``), so memory stays flat however large the store."""

from __future__ import annotations

import argparse
import sys

from src import config
from src.cli.common import UserError, open_store, store_errors
from src.common import sanitize


def _cell(value, width: int = 40) -> str:
    if isinstance(value, list):
        value = ",".join(value)
    elif hasattr(value, "strftime"):
        value = "" if value != value else value.strftime("%Y-%m-%d %H:%M:%S")  # NaT != NaT
    text = sanitize.line(str(value))
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_runs_list(args: argparse.Namespace) -> int:
    store = open_store()
    with store_errors():
        frame = store.runs(campaign=args.campaign, source=args.source, limit=args.limit or None)
    columns = ["run_id", "run_time", "source", "status", "files", "people", "samples", "campaign", "location", "tags"]
    columns += ["model_version", "error"]
    if args.format == "csv":
        out = frame[columns].copy()
        out["tags"] = out["tags"].map(",".join)
        sanitize.csv_frame(out).to_csv(sys.stdout, index=False, lineterminator="\n")
        return 0
    if frame.empty:
        print("no runs stored" + (" for these filters" if args.campaign or args.source else ""), file=sys.stderr)
        return 0
    cells = [[_cell(row[c]) for c in columns] for _, row in frame.iterrows()]
    header = [c.replace("run_time", "started (UTC)") for c in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    for line in [header, *cells]:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())
    return 0


def cmd_runs_export(args: argparse.Namespace) -> int:
    """The stored samples (``--people``: people) of finished runs as CSV, streamed chunk by chunk."""
    store = open_store()
    filters = {"campaign": args.campaign, "location": args.location, "source": args.source}
    filters |= {"since": args.since, "until": args.until}
    out = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
    rows = 0
    try:
        with store_errors():
            read = store.iter_people if args.people else store.iter_results
            chunks = read(**filters, chunk_rows=args.chunk_rows)
            for chunk in chunks:
                frame = chunk.copy()
                if "tags" in frame:
                    frame["tags"] = frame["tags"].map(lambda tags: ",".join(tags) if isinstance(tags, list) else tags)
                sanitize.csv_frame(frame).to_csv(out, index=False, header=rows == 0, lineterminator="\n")
                rows += len(frame)
    finally:
        if args.output:
            out.close()
    what = "people" if args.people else "samples"
    print(f"wrote {rows} {what}" + (f" to {sanitize.line(args.output)}" if args.output else ""), file=sys.stderr)
    return 0


def cmd_runs_delete(args: argparse.Namespace) -> int:
    if bool(args.run_id) == bool(args.campaign):
        raise UserError("give either a RUN_ID or --campaign NAME")
    store = open_store()
    with store_errors():
        if args.run_id:
            run = store.get_run(args.run_id)
            if run is None:
                raise UserError(f"no run {sanitize.line(args.run_id)!r} in {store.url} (see `runs list`)")
            store.delete_run(args.run_id)
            print(
                f"deleted run {run['run_id']} ({run['source']}, started {_cell(run['run_time'])} UTC, "
                f"{run['files']} files, {run['people']} people, {run['samples']} samples)"
            )
            return 0
        runs = store.runs(campaign=args.campaign)
        if runs.empty:
            raise UserError(f"no runs in campaign {sanitize.line(args.campaign)!r} in {store.url}")
        deleted = store.delete_campaign(args.campaign)
    print(
        f"deleted {deleted} run{'s' * (deleted != 1)} of campaign {sanitize.line(args.campaign)!r} "
        f"({int(runs['files'].sum())} files, {int(runs['people'].sum())} people, {int(runs['samples'].sum())} samples)"
    )
    return 0


def cmd_runs_retention(args: argparse.Namespace) -> int:
    days = config.RETENTION_DAYS if args.days is None else args.days
    if days <= 0:
        print("retention is off (FER_RETENTION_DAYS is 0 or unset): nothing deleted")
        return 0
    store = open_store(retention_days=0)  # applied below, so the count can be reported
    try:
        with store_errors():
            deleted = store.apply_retention(days)
    finally:
        store.close()
    print(f"deleted {deleted} run{'s' * (deleted != 1)} older than {days:g} days from {store.url}")
    return 0


def add_parsers(sub) -> None:
    """Register ``runs`` and its own sub-commands on the top-level sub-parsers."""
    runs = sub.add_parser("runs", help="list, export or delete the runs in the results database (FER_DATABASE_URL)")
    what = runs.add_subparsers(dest="runs_command", required=True)
    p = what.add_parser(
        "list", help="stored runs, newest first, with their people and samples (face rows, live face-seconds)"
    )
    p.add_argument("--campaign", metavar="NAME")
    p.add_argument("--source", metavar="SOURCE", help="photo, batch, video, live, api or cli")
    p.add_argument("--limit", type=int, metavar="N", help="at most N runs")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(func=cmd_runs_list)
    p = what.add_parser(
        "export", help="the stored samples (or people) of finished runs as CSV, streamed with flat memory"
    )
    p.add_argument("--people", action="store_true", help="one row per person instead of per sample")
    p.add_argument("--campaign", metavar="NAME")
    p.add_argument("--location", metavar="NAME")
    p.add_argument("--source", metavar="SOURCE", help="photo, batch, video, live, api or cli")
    p.add_argument("--since", metavar="TIME", help="rows seen at or after this UTC time (e.g. 2026-03-01)")
    p.add_argument("--until", metavar="TIME", help="rows seen before this UTC time")
    p.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    p.add_argument("--chunk-rows", type=int, default=50_000, metavar="N", help="rows read at a time (memory)")
    p.set_defaults(func=cmd_runs_export)
    p = what.add_parser("delete", help="delete a run, or every run of a campaign, with their rows")
    p.add_argument("run_id", nargs="?", metavar="RUN_ID")
    p.add_argument("--campaign", metavar="NAME", help="delete every run of this campaign")
    p.set_defaults(func=cmd_runs_delete)
    p = what.add_parser("retention", help="delete runs older than FER_RETENTION_DAYS days now")
    p.add_argument("--days", type=float, help="this many days instead of FER_RETENTION_DAYS")
    p.set_defaults(func=cmd_runs_retention)
