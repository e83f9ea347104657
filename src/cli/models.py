"""The commands that need Keras: ``evaluate`` (score, calibrate, write the dashboard outputs),
``train``, ``ensemble``, ``balance`` (the per-class logit shift) and ``export`` (the ONNX
twins). Each checks its arguments first and starts the backend only then."""

from __future__ import annotations

import argparse
from pathlib import Path

from src import config
from src.cli.common import UserError, add_output_options, data_path, load_data, model_path, output_dir, start_backend
from src.training.data import DatasetError, resolve_dataset_path
from src.training.outputs import model_folder


def _expw_dir(arg: str | None) -> Path | None:
    """``--expw``: an ExpW-style folder (labels.csv and faces/), or None when not given."""
    if not arg:
        return None
    expw = Path(arg).expanduser()
    if not (expw / "labels.csv").is_file():
        raise UserError(f"--expw {expw}: no labels.csv there (expected labels.csv and faces/)")
    return expw


def _require_keras(command: str) -> None:
    from src.engine.runtime import TRAINING_EXTRA, keras_available

    if not keras_available():
        raise UserError(f"`{command}` needs TensorFlow, which this serving install leaves out: {TRAINING_EXTRA}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    _require_keras("evaluate")
    if args.score_only and args.version:
        raise UserError("--version is what the manifest records and --score-only leaves it alone: give one of them")
    data_file = data_path(args.data)
    model_file = model_path(args.model)
    # Another model than the deployed one keeps its reports in a sub-folder named after it.
    out_dir = output_dir(args) if args.output_dir else model_folder(output_dir(args), model_file)
    data = load_data(str(data_file))
    start_backend()
    from src.training.evaluation import evaluate, write_dataset_stats

    try:
        result = evaluate(
            data,
            model_file,
            out_dir,
            split=args.split,
            run_dir=args.run_dir,
            update_manifest=not args.score_only,
            views=args.views,
            version=args.version,
        )
    except ValueError as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    write_dataset_stats(data, out_dir)
    m = result.metrics
    print(f"model: {model_file} (version {m['model']['version']}, test-time views {m['model']['test_time_views']})")
    print(f"data: {data.source} ({len(data)} rows)")
    for name, s in m["splits"].items():
        print(
            f"{name}: n={s['n']} accuracy={s['accuracy']:.4f} macro_f1={s['macro_f1']:.4f} "
            f"weighted_f1={s['weighted_f1']:.4f} ece={s['ece']:.4f}"
        )
    plus = (m.get("ferplus") or {}).get("PrivateTest")
    if plus:
        print(
            f"FER+ majority (PrivateTest): n={plus['n']} accuracy={plus['accuracy']:.4f} "
            f"macro_f1={plus['macro_f1']:.4f}"
        )
    cal = m.get("calibration")
    if cal:
        print(
            f"temperature={cal['temperature']:.3f} (fitted on PublicTest): ECE {cal['ece_before']:.4f} -> "
            f"{cal['ece_after']:.4f}, NLL {cal['nll_before']:.4f} -> {cal['nll_after']:.4f}"
        )
    print(f"wrote {result.output_dir}")
    print(result.summary_line)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    _require_keras("train")
    data_file = data_path(args.data)
    start_backend()
    from src.training.train import PROFILES, publish, train

    if args.profile not in PROFILES:
        raise UserError(f"unknown profile {args.profile}")
    expw = _expw_dir(args.expw)
    if args.init_from and not Path(args.init_from).is_file():
        raise UserError(f"--init-from {args.init_from}: no such model file")
    for teacher in args.teacher or ():
        if not Path(teacher).is_file():
            raise UserError(f"--teacher {teacher}: no such model file")
    if args.distil_weight is not None and not 0.0 <= args.distil_weight <= 1.0:
        raise UserError(f"--distil-weight {args.distil_weight}: give a share between 0 and 1")
    if args.distil_temperature is not None and not args.distil_temperature > 0:
        raise UserError(f"--distil-temperature {args.distil_temperature}: give a positive temperature")
    if (args.distil_weight or args.distil_temperature) and not args.teacher:
        raise UserError("--distil-weight and --distil-temperature need at least one --teacher model")
    if args.input_size is not None and not (32 <= args.input_size <= 128 and args.input_size % 8 == 0):
        raise UserError(f"--input-size {args.input_size}: give a multiple of 8 from 32 to 128 (pixels)")
    run_dir = train(
        str(data_file),
        args.profile,
        run_dir=args.run_dir,
        expw_path=expw,
        epochs=args.epochs,
        seed=args.seed,
        width=args.width,
        learning_rate=args.learning_rate,
        warmup_epochs=args.warmup_epochs,
        class_weight_power=args.class_weight_power,
        expw_repeat=args.expw_repeat,
        init_from=args.init_from,
        teachers=tuple(str(Path(t).resolve()) for t in args.teacher) if args.teacher else None,
        distil_weight=args.distil_weight,
        distil_temperature=args.distil_temperature,
        input_size=args.input_size,
        mixed_precision=args.bf16,
    )
    print(f"run: {run_dir}")
    if args.publish:
        dest = publish(run_dir, args.model, data_path=data_file)
        print(f"published: {dest} and its ONNX twins {_twin_names(dest)}")
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    _require_keras("ensemble")
    sources = [Path(m).expanduser() for m in args.member]
    if len(sources) < 2:
        raise UserError("an ensemble needs at least two --member models")
    for source in sources:
        if source.is_dir() and not (source / "best.keras").is_file():
            raise UserError(f"--member {source}: a run folder without best.keras")
        if not source.is_dir() and (source.suffix != ".keras" or not source.is_file()):
            raise UserError(f"--member {source}: not a .keras model or a training run folder")
    data_file = data_path(args.data) if args.data else None
    start_backend()
    from src.training.train import publish_ensemble

    dest = Path(args.model).expanduser() if args.model else None
    if dest is not None and dest.suffix != ".keras":
        raise UserError(f"--model {dest}: the ensemble is written as a .keras file")
    fields = {"version": args.version} if args.version else {}
    try:
        dest = publish_ensemble(sources, dest, data_path=data_file, **fields)
    except ValueError as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    print(f"published the mean of {len(sources)} models: {dest} and its ONNX twins {_twin_names(dest)}")
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    _require_keras("balance")
    model_file = model_path(args.model)
    if model_file.suffix != ".keras":
        raise UserError(f"--model {model_file}: balancing needs the .keras model")
    data_file = data_path(args.data)
    expw = _expw_dir(args.expw)
    dest = Path(args.output).expanduser() if args.output else model_file
    if dest.suffix != ".keras":
        raise UserError(f"--output {dest}: the balanced model is written as a .keras file")
    start_backend()
    from src.training.train import publish_balanced

    fields = {"version": args.version} if args.version else {}
    try:
        dest, record = publish_balanced(model_file, data_file, expw, dest, **fields)
    except ValueError as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    shifts = ", ".join(f"{name} {value:+.2f}" for name, value in record["bias"].items())
    print(f"logit shifts: {shifts}")
    for name in record["before"]:
        before, after = record["before"][name], record["after"][name]
        print(
            f"{name}: accuracy {before['accuracy']:.4f} -> {after['accuracy']:.4f}, macro-F1 "
            f"{before['macro_f1']:.4f} -> {after['macro_f1']:.4f}, lowest recall {before['lowest_recall']:.3f} -> "
            f"{after['lowest_recall']:.3f}"
        )
    print(f"published: {dest} and its ONNX twins {_twin_names(dest)}")
    return 0


def _twin_names(model_file: Path) -> str:
    """The ONNX twins a publish wrote beside ``model_file`` (the INT8 one when it was written)."""
    from src.engine.manifest import read_manifest

    int8 = read_manifest(model_file).get("onnx_int8")
    return ", ".join([model_file.with_suffix(".onnx").name] + ([int8["file"]] if int8 else []))


def _export(model_file: Path) -> None:
    from src.training.export import export_features, export_onnx

    try:
        record = export_onnx(model_file)
        features = export_features(model_file)
    except ValueError as exc:
        raise UserError(f"{model_file}: {str(exc).splitlines()[0]}") from None
    print(
        f"exported {model_file.with_name(record['file'])} (opset {record['opset']}, "
        f"max difference from Keras {record['max_abs_diff']:.1e} over {record['checked_inputs']} inputs)"
    )
    print(f"exported {model_file.with_name(features['file'])} ({features['dimensions']} features, for `adapt`)")


def _export_int8(model_file: Path, data: str | None) -> None:
    """The INT8 twin, calibrated on FER2013 Training faces; without the data it is skipped, saying why."""
    from src.training.export import export_int8_from_dataset

    try:
        data_file = resolve_dataset_path(data)
    except DatasetError as exc:
        print(f"INT8 twin skipped (it is calibrated on FER2013 Training faces): {exc}")
        return
    if not data_file.exists():
        raise UserError(f"dataset path {data_file} does not exist")
    try:
        record = export_int8_from_dataset(model_file, data_file)
    except ValueError as exc:
        raise UserError(f"{model_file}: {str(exc).splitlines()[0]}") from None
    print(
        f"exported {model_file.with_name(record['file'])} (INT8, calibrated on {record['calibration']}; "
        f"same top answer as the fp32 twin on {record['top1_agreement']:.1%} of {record['checked_faces']} other faces)"
    )


def cmd_export(args: argparse.Namespace) -> int:
    _require_keras("export")
    model_file = model_path(args.model)
    if model_file.suffix != ".keras":
        raise UserError(f"export reads a .keras model, not {model_file.name}")
    start_backend()
    _export(model_file)
    if args.int8:
        _export_int8(model_file, args.data)
    else:
        print("INT8 twin skipped (--no-int8)")
    return 0


def add_parsers(sub) -> None:
    """Register ``evaluate``, ``train``, ``ensemble``, ``balance`` and ``export`` on the top-level sub-parsers."""
    p = sub.add_parser("evaluate", help="score a model, calibrate it and write the dashboard outputs")
    p.add_argument("--data", metavar="PATH", help="FER2013 CSV(.gz), folder holding one, or image folders")
    p.add_argument("--split", default="PrivateTest", choices=("PublicTest", "PrivateTest"))
    p.add_argument("--model", metavar="FILE")
    add_output_options(p)
    p.add_argument("--run-dir", metavar="RUN", help="training run whose history.csv to copy")
    p.add_argument(
        "--views",
        choices=config.TTA_MODES,
        help="test-time views to score, calibrate and then serve the model with (recorded in its "
        "manifest); default: the model's own",
    )
    p.add_argument(
        "--score-only",
        action="store_true",
        help="leave the model's manifest (temperature, scores, views) as it is",
    )
    p.add_argument(
        "--version",
        help="the version its manifest records from now on (other views give other answers: name them, "
        "e.g. v3.1-scale)",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a model (fit on Training, select on PublicTest)")
    p.add_argument("--data", metavar="PATH")
    p.add_argument(
        "--profile", choices=("cpu", "wild", "ferplus", "teacher", "student", "big", "gpu", "smoke"), default="cpu"
    )
    p.add_argument("--expw", metavar="DIR", help="ExpW-style in-the-wild faces (labels.csv + faces/) to train on too")
    p.add_argument("--init-from", metavar="FILE", help="start from this .keras model's weights (same architecture)")
    p.add_argument(
        "--teacher",
        action="append",
        metavar="FILE",
        help="distil from this .keras model (repeatable: an ensemble); the student profile sets the weight",
    )
    p.add_argument(
        "--distil-weight",
        type=float,
        help="share of the target that is the teachers' soft probabilities (0-1); default: the profile's",
    )
    p.add_argument(
        "--distil-temperature",
        type=float,
        help="temperature that softens the teachers' probabilities; default: the profile's",
    )
    p.add_argument(
        "--input-size",
        type=int,
        metavar="PX",
        help="side of the net's input in pixels (default 48): FER2013 faces are enlarged to it, "
        "ExpW's aligned crops taken at it",
    )
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 compute (AMX/oneDNN); default: the profile's choice",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--run-dir", metavar="DIR")
    p.add_argument("--seed", type=int)
    # Overrides of the profile's recipe, for warm restarts and second members.
    p.add_argument("--width", type=int, help="network width (filters of the first block); default: the profile's")
    p.add_argument("--learning-rate", type=float, help="peak learning rate; default: the profile's")
    p.add_argument("--warmup-epochs", type=int, help="epochs of linear warm-up; default: the profile's")
    p.add_argument(
        "--class-weight-power",
        type=float,
        help="class weights = (1 / class frequency) ^ this (0 = none, 1 = fully balanced); default: the profile's",
    )
    p.add_argument(
        "--expw-repeat",
        type=int,
        help="how many times each ExpW training face is seen an epoch; default: the profile's",
    )
    p.add_argument("--publish", action="store_true", help="copy the best checkpoint to the model file")
    p.add_argument("--model", metavar="FILE", help="where --publish puts the model")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("ensemble", help="publish the mean of several models' probabilities as one model")
    p.add_argument(
        "--member",
        action="append",
        required=True,
        metavar="MODEL_OR_RUN",
        help="a .keras model or a training run folder (repeat, at least twice); may include the destination",
    )
    p.add_argument("--model", metavar="FILE", help="where to publish it (default: the bundled model file)")
    p.add_argument("--data", metavar="PATH", help="FER2013 whose Training faces calibrate the INT8 twin")
    p.add_argument("--version", help="the version the manifest records, e.g. v3-ensemble")
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser(
        "balance",
        help="shift each class's logit so no class goes unseen (fitted on PublicTest and ExpW held-back faces)",
    )
    p.add_argument("--model", metavar="FILE", help="the .keras model to balance (default: the bundled one)")
    p.add_argument("--data", metavar="PATH", help="FER2013: its PublicTest faces fit the shift (PrivateTest unused)")
    p.add_argument("--expw", metavar="DIR", help="ExpW-style faces: the held-back ones fit the shift too")
    p.add_argument("--output", metavar="FILE", help="where to write the balanced model (default: over --model)")
    p.add_argument("--version", help="the version the manifest records, e.g. v3.1")
    p.set_defaults(func=cmd_balance)

    p = sub.add_parser(
        "export", help="write the model's ONNX twin for the TensorFlow-free serving runtime (checked against Keras)"
    )
    p.add_argument("--model", metavar="FILE", help="a .keras model (default: the bundled one)")
    p.add_argument(
        "--data",
        metavar="PATH",
        help="FER2013 whose Training faces calibrate the INT8 twin (default: inputs/datasets/fer2013)",
    )
    p.add_argument(
        "--int8", action=argparse.BooleanOptionalAction, default=True, help="also write the INT8 twin (default: yes)"
    )
    p.set_defaults(func=cmd_export)
