"""Adaptation to a customer's faces, measured subject-disjoint on CK+ (issue #18, part 3).

CK+ (48x48 crops, folders anger/disgust/fear/happy/sadness/surprise; contempt left out) is
split by subject (the ``S###`` prefix of each file): ``--share`` of the subjects (20% by
default) form the customer's folder that ``adapt`` learns from, and every face of the
other subjects is the test. The script prints the bundled model's accuracy on the test
faces before adaptation (its six shared classes) and the adapted model's after, through
``python -m src.cli predict --crops --model`` as a user would run it, then one summary
line. Several seeds give the spread from the choice of subjects.

    python bench/bench_adapt.py --ckplus PATH/TO/ckplus48 [--seeds 0 1 2] [--model models/fer_cnn.keras]
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from src.training.adapt import adapt, label_of

ROOT = Path(__file__).resolve().parents[1]


SUBJECT = re.compile(r"^(S\d+)_")
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def faces(ckplus: Path) -> list[tuple[Path, str, str]]:
    out = []
    for folder in sorted(p for p in ckplus.iterdir() if p.is_dir()):
        label = label_of(folder.name, LABELS)
        if label is None:
            continue
        for f in sorted(folder.glob("*.png")):
            out.append((f, label, SUBJECT.match(f.name).group(1)))
    return out


def predict(model: Path, files: list[Path], work: Path) -> list[str]:
    listing = work / "test"
    if listing.exists():
        shutil.rmtree(listing)
    listing.mkdir()
    for i, f in enumerate(files):
        (listing / f"{i:05d}_{f.name}").symlink_to(f)
    out = work / "pred.csv"
    cmd = [
        sys.executable,
        "-m",
        "src.cli",
        "predict",
        str(listing),
        "--crops",
        "--model",
        str(model),
        "--output",
        str(out),
    ]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    rows = {r["file"]: r for r in csv.DictReader(out.open())}
    return [rows[str(listing / f"{i:05d}_{f.name}")]["emotion"] for i, f in enumerate(files)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckplus", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "fer_cnn.keras")
    ap.add_argument("--share", type=float, default=0.2, help="share of subjects to adapt on")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()

    items = faces(args.ckplus.resolve())
    subjects = sorted({s for _, _, s in items})
    classes = sorted({label for _, label, _ in items})
    print(f"CK+: {len(items)} faces of {len(subjects)} subjects, classes {', '.join(classes)}")
    befores, afters = [], []
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        chosen = set(rng.choice(subjects, max(1, round(len(subjects) * args.share)), replace=False))
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for f, label, subject in items:
                if subject in chosen:
                    dest = work / "customer" / label
                    dest.mkdir(parents=True, exist_ok=True)
                    (dest / f.name).symlink_to(f)
            test = [(f, label) for f, label, s in items if s not in chosen]
            started = time.perf_counter()
            result = adapt(
                work / "customer", work / "adapted.onnx", args.model, crops=True, group_pattern=SUBJECT.pattern
            )
            took = time.perf_counter() - started
            truth = np.array([label for _, label in test])
            base = np.array(predict(args.model, [f for f, _ in test], work))
            # The base model may answer neutral (CK+ has none): counted wrong, as a user would see it.
            before = float((base == truth).mean())
            adapted = np.array(predict(work / "adapted.onnx", [f for f, _ in test], work))
            after = float((adapted == truth).mean())
        befores.append(before)
        afters.append(after)
        print(
            f"seed {seed}: adapted on {len(chosen)} subjects ({result.faces} faces, {took:.0f} s; held-back "
            f"{result.before.accuracy:.3f} -> {result.after.accuracy:.3f}); test {len(test)} faces of "
            f"{len(subjects) - len(chosen)} other subjects: before {before:.3f}, after {after:.3f}"
        )
    print(
        f"ckplus_subjects_disjoint before={np.mean(befores):.4f} after={np.mean(afters):.4f} "
        f"after_min={min(afters):.4f} seeds={len(args.seeds)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
