"""The dataset commands: ``collect`` (copy FER2013 under inputs/datasets/) and ``stats``
(the dataset charts the dashboard reads). Neither needs Keras."""

from __future__ import annotations

import argparse
from pathlib import Path

from src.cli.common import UserError, add_output_options, load_data, output_dir


def cmd_collect(args: argparse.Namespace) -> int:
    from src.training.data import collect_dataset

    source = Path(args.source).expanduser()
    if not source.exists():
        raise UserError(f"{source} does not exist")
    dest = collect_dataset(source, Path(args.dest) if args.dest else None)
    print(f"dataset copied to {dest}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    data = load_data(args.data)
    from src.training.evaluation import write_dataset_stats

    out_dir = output_dir(args)
    stats = write_dataset_stats(data, out_dir)
    print(
        f"{stats['total']} rows, imbalance ratio {stats['imbalance_ratio']:.1f}; "
        f"wrote {out_dir / 'dataset_stats.json'} and {out_dir / 'mean_faces.png'}"
    )
    return 0


def add_parsers(sub) -> None:
    """Register ``collect`` and ``stats`` on the top-level sub-parsers."""
    p = sub.add_parser("collect", help="copy a FER2013 dataset under inputs/datasets/")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--dest", metavar="DIR")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("stats", help="write dataset_stats.json and mean_faces.png")
    p.add_argument("--data", metavar="PATH")
    add_output_options(p)
    p.set_defaults(func=cmd_stats)
