"""The commands that fit the deployed model to real photos, without TensorFlow:

* ``adapt``: fit the model to a customer's own labelled photos (one folder per emotion) and
  publish the result as a model (.onnx + manifest) usable by ``predict --model``, the
  dashboard and the API (src/training/adapt.py);
* ``error-model``: count the model's confusions on ExpW's held-back photos through the whole
  pipeline, the error model that corrects shares (src/training/error_model.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from src.cli.common import UserError, model_path


def _pct(value: float) -> str:
    return f"{value:.1%}"


def cmd_adapt(args: argparse.Namespace) -> int:
    from src.training.adapt import AdaptError, adapt

    model_file = model_path(args.model)
    try:
        result = adapt(
            args.folder,
            Path(args.output),
            model_file,
            crops=args.crops,
            holdout=args.holdout,
            group_pattern=args.group_pattern,
            seed=args.seed,
        )
    except AdaptError as exc:
        raise UserError(str(exc)) from None
    for name, reason in result.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    faces = "face" if result.faces == 1 else "faces"
    print(
        f"adapted {model_file.name} to {len(result.classes)} emotions ({', '.join(result.classes)}) on "
        f"{result.faces} {faces} in {result.seconds:.0f} s; wrote {result.model} and its manifest"
    )
    print(
        f"held-back photos ({result.held_out}): accuracy {_pct(result.before.accuracy)} -> "
        f"{_pct(result.after.accuracy)}, macro-F1 {result.before.macro_f1:.3f} -> {result.after.macro_f1:.3f}"
    )
    print(f"use it: python -m src.cli predict PHOTOS --model {result.model}")
    return 0


def cmd_error_model(args: argparse.Namespace) -> int:
    from src.training.error_model import build, load_error_model

    model_file = model_path(args.model)
    expw = Path(args.expw)
    if not (expw / "labels.csv").is_file():
        raise UserError(f"{expw} holds no labels.csv (an ExpW folder: labels.csv and faces/)")
    path = build(expw, model_file, args.output)
    model = load_error_model(path)
    print(f"wrote {path}: {model.describe()}; accuracy on found faces {model.accuracy():.1%}")
    return 0


def add_parsers(sub) -> None:
    """Register ``adapt`` and ``error-model`` on the top-level sub-parsers."""
    p = sub.add_parser("adapt", help="fit the model to your own labelled photos (one folder per emotion)")
    p.add_argument("folder", metavar="FOLDER", help="one sub-folder per emotion (angry, disgust, ..., neutral)")
    p.add_argument("--output", metavar="PATH", required=True, help="the adapted model to write (.onnx)")
    p.add_argument("--model", metavar="FILE", help="the model to adapt (default: the deployed model)")
    p.add_argument("--crops", action="store_true", help="the photos are face crops already (no detection)")
    p.add_argument(
        "--holdout", type=float, default=0.25, metavar="SHARE", help="share of photos held back to score (0.25)"
    )
    p.add_argument(
        "--group-pattern",
        metavar="REGEX",
        help="photos whose file names match the same group (first parenthesised part) stay on one side of the "
        "held-back split, e.g. '^(S\\d+)_' for one person's photos",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_adapt)

    p = sub.add_parser("error-model", help="count the model's confusions on held-back in-the-wild photos (ExpW)")
    p.add_argument("--expw", metavar="DIR", required=True, help="the ExpW folder (labels.csv, faces/)")
    p.add_argument("--model", metavar="FILE", help="the model (default: the deployed model)")
    p.add_argument("--output", metavar="FILE", help="default: beside the model, <name>.error_model.json")
    p.set_defaults(func=cmd_error_model)
