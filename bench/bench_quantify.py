"""Raw against corrected shares on campaigns of real photos with known, skewed mixes.

ExpW's held-back photos (the 20% of source photos training never saw) go once through the
product's whole pipeline (``src.training.error_model.predict_faces``: detection, alignment,
classifier), cached in ``--cache``. They are split in two halves by source photo (sha1 of
``"half:" + name``). The error model is estimated on one half; campaigns of ``--faces`` faces
are drawn from the OTHER half with the mixes below (per class with replacement, as the
half holds ~70 faces per class and a 70% neutral campaign needs 70), and the roles of the
halves are then swapped, so no campaign ever holds a face of its error model. Faces the
detector missed never reach a share, so campaigns hold found faces; the truth is the
campaign's own label shares.

Per mix: the mean absolute error over the seven emotions of the raw shares (top labels
counted, as the app counts) and of the corrected ones, and how often the 95% intervals hold
the truth. Methods: ``bayes`` (the default of ``src.analytics.quantify``), ``acc`` (the
maximum-likelihood adjusted count with a bootstrap), ``sld`` (Saerens et al. 2002: EM on
the probabilities, after recalibrating them on the error model's half with a temperature
and per-class biases; point estimate only), and ``oracle`` (``bayes`` with the confusion
counted on the campaign's own half: not a method, the floor that 100 noisy labels allow).

Usage: python bench/bench_quantify.py --expw PATH/TO/expw [--campaigns 60] [--faces 100] [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from src import config
from src.analytics.groups import builtin_sentiment
from src.analytics.quantify import Confusion, group_map, quantify
from src.engine.manifest import sha256_file
from src.training.error_model import count_confusions, held_back_labels, predict_faces

MIXES = {  # the rest of each mix is spread evenly over the classes not named
    "60% happy": {"happy": 0.60},
    "50% angry": {"angry": 0.50},
    "uniform": {},
    "70% neutral": {"neutral": 0.70},
    "negative": {
        "angry": 0.25,
        "disgust": 0.15,
        "fear": 0.20,
        "sad": 0.30,
        "neutral": 0.10,
        "happy": 0.0,
        "surprise": 0.0,
    },
}
INTERVAL_METHODS = ("bayes", "acc", "oracle")


def predictions(expw: Path, model: Path, cache: Path) -> pd.DataFrame:
    """The held-back faces through the pipeline, from the cache when this model already ran."""
    from src.engine.classifier import model_views
    from src.engine.inference import EmotionRecognizer
    from src.engine.manifest import read_manifest

    # Keyed by the weights and the test-time views: either changes the predictions.
    path = cache / f"expw_heldback_{sha256_file(model)[:12]}_{model_views(read_manifest(model))}.csv"
    if path.exists():
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    recognizer = EmotionRecognizer(model)
    faces = predict_faces(expw, held_back_labels(expw), recognizer)
    cache.mkdir(parents=True, exist_ok=True)
    faces.to_csv(path, index=False)
    print(f"cached the pipeline's predictions in {path}")
    return faces


def mix_counts(spec: dict[str, float], names: tuple[str, ...], faces: int) -> np.ndarray:
    rest = [n for n in names if n not in spec]
    left = 1 - sum(spec.values())
    shares = np.array([spec.get(n, left / len(rest) if rest else 0.0) for n in names])
    exact = shares * faces
    counts = np.floor(exact).astype(int)
    counts[np.argsort(exact - counts)[::-1][: faces - counts.sum()]] += 1
    return counts


def recalibration(logp: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Temperature and per-class biases (first fixed at 0) fitted by likelihood: bias-corrected temperature scaling."""
    k = logp.shape[1]

    def loss(theta):
        z = logp / theta[0] + np.r_[0.0, theta[1:]]
        z = z - z.max(axis=1, keepdims=True)
        return -(z[np.arange(len(z)), truth] - np.log(np.exp(z).sum(axis=1))).mean()

    return minimize(loss, np.r_[1.0, np.zeros(k - 1)], method="L-BFGS-B").x


def saerens(probs: np.ndarray, prior: np.ndarray, steps: int = 1000) -> np.ndarray:
    """EM re-estimation of the class priors of calibrated probabilities (Saerens, Latinne and Decaestecker, 2002)."""
    mix = prior.copy()
    for _ in range(steps):
        weighted = probs * (mix / prior)
        weighted /= weighted.sum(axis=1, keepdims=True)
        mix = weighted.mean(axis=0)
    return mix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expw", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=config.MODEL_FILE)
    ap.add_argument("--campaigns", type=int, default=60, help="campaigns per mix and per fold")
    ap.add_argument(
        "--folds",
        type=int,
        default=2,
        help="split the held-back photos in this many folds by source photo: campaigns from one, the error "
        "model from the others (2: halves, the error model on one)",
    )
    ap.add_argument("--faces", type=int, default=100, help="faces per campaign")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/fer_quantify"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    start = time.perf_counter()
    faces = predictions(args.expw, args.model, args.cache)
    names = tuple(c[2:] for c in faces.columns if c.startswith("p_"))
    found = faces[faces["found"].astype(bool)].reset_index(drop=True)
    # Folds by source photo; with 2 (the default) the sha1 rule of the two halves.
    half = np.array(
        [int(hashlib.sha1(f"half:{s}".encode()).hexdigest()[:8], 16) % args.folds for s in found["source_image"]]
    )
    truth_idx = found["emotion"].map({n: i for i, n in enumerate(names)}).to_numpy()
    probs = found[[f"p_{n}" for n in names]].to_numpy(float)
    logp = np.log(np.clip(probs, 1e-9, 1))
    print(
        f"{len(faces)} held-back faces, {len(found)} found; {args.folds} folds of {np.bincount(half).tolist()} faces "
        f"({found.groupby(half)['source_image'].nunique().tolist()} photos)"
    )

    sentiment = group_map(builtin_sentiment(), names)
    member = np.array([[e in sentiment[g] for g in sentiment] for e in names], float)
    rng = np.random.default_rng(args.seed)
    methods = ("raw", "bayes", "acc", "sld", "oracle")
    rows, error_sizes = [], []
    for side in range(args.folds):
        # The error model on every fold but one (one half with two folds), campaigns from that one.
        fit = half != side if args.folds > 2 else half == side
        calib, pool = found[fit], found[~fit]
        error_sizes.append(len(calib))
        model = Confusion(names, count_confusions(calib, names)[0])
        oracle = Confusion(names, count_confusions(pool, names)[0])
        theta = recalibration(logp[fit], truth_idx[fit])
        prior = np.bincount(truth_idx[fit], minlength=len(names)) / fit.sum()
        pool_rows = np.flatnonzero(~fit)
        by_class = [pool_rows[truth_idx[pool_rows] == k] for k in range(len(names))]
        for mix_name, spec in MIXES.items():
            counts = mix_counts(spec, names, args.faces)
            truth = counts / counts.sum()
            for _ in range(args.campaigns):
                picked = np.concatenate([rng.choice(by_class[k], c, replace=True) for k, c in enumerate(counts) if c])
                labels = found["predicted"].to_numpy()[picked]
                seed = int(rng.integers(1 << 31))
                results = {
                    m: quantify(labels, em, groups=sentiment, method=m.replace("oracle", "bayes"), seed=seed)
                    for m, em in (("bayes", model), ("acc", model), ("oracle", oracle))
                }
                z = logp[picked] / theta[0] + np.r_[0.0, theta[1:]]
                calibrated = np.exp(z - z.max(axis=1, keepdims=True))
                calibrated /= calibrated.sum(axis=1, keepdims=True)
                estimates = {
                    "raw": np.array([s.raw for s in results["bayes"].emotions]),
                    "sld": saerens(calibrated, prior),
                    **{m: np.array([s.corrected for s in r.emotions]) for m, r in results.items()},
                }
                row = {"side": side, "mix": mix_name}
                for m in methods:
                    row[f"mae_{m}"] = float(np.abs(estimates[m] - truth).mean())
                for m in INTERVAL_METHODS:
                    low = np.array([s.low for s in results[m].emotions])
                    high = np.array([s.high for s in results[m].emotions])
                    row[f"cover_{m}"] = float(((low <= truth + 1e-9) & (truth <= high + 1e-9)).mean())
                    row[f"width_{m}"] = float((high - low).mean())
                truth_groups = truth @ member
                row["sentiment_raw"] = float(np.abs(estimates["raw"] @ member - truth_groups).mean())
                row["sentiment_bayes"] = float(np.abs(estimates["bayes"] @ member - truth_groups).mean())
                low = np.array([s.low for s in results["bayes"].groups])
                high = np.array([s.high for s in results["bayes"].groups])
                row["sentiment_cover"] = float(((low <= truth_groups + 1e-9) & (truth_groups <= high + 1e-9)).mean())
                rows.append(row)
    table = pd.DataFrame(rows)
    error_faces = round(float(np.mean(error_sizes)))

    print(
        f"\n{args.campaigns} campaigns of {args.faces} faces per mix and per fold; mean absolute error over 7 emotions"
    )
    per_mix = table.groupby("mix", sort=False).mean(numeric_only=True)
    per_mix.loc["overall"] = table.mean(numeric_only=True)
    header = (
        f"{'mix':12s}" + "".join(f"{m:>9s}" for m in methods) + "   coverage (width): " + ", ".join(INTERVAL_METHODS)
    )
    print(header)
    for mix_name, r in per_mix.iterrows():
        cover = ", ".join(f"{r[f'cover_{m}']:.1%} ({r[f'width_{m}']:.2f})" for m in INTERVAL_METHODS)
        print(f"{mix_name:12s}" + "".join(f"{r[f'mae_{m}']:9.3f}" for m in methods) + f"   {cover}")
    for side, part in table.groupby("side"):
        print(
            f"campaigns from fold {side}: raw {part['mae_raw'].mean():.3f}, bayes {part['mae_bayes'].mean():.3f}, "
            f"acc {part['mae_acc'].mean():.3f}, sld {part['mae_sld'].mean():.3f}; "
            f"bayes coverage {part['cover_bayes'].mean():.1%}"
        )
    overall = per_mix.loc["overall"]
    print(
        f"sentiment (positive / neutral / negative), mean absolute error: raw {overall['sentiment_raw']:.3f}, "
        f"corrected {overall['sentiment_bayes']:.3f}; coverage {overall['sentiment_cover']:.1%}"
    )
    print(
        f"SUMMARY {len(table)} campaigns of {args.faces} ExpW faces (5 mixes, error model on {error_faces} faces "
        f"of other photos): "
        f"MAE raw {overall['mae_raw']:.3f}, corrected {overall['mae_bayes']:.3f} "
        f"({overall['mae_bayes'] / overall['mae_raw']:.2f}x raw; target <= 0.50x), "
        f"95% coverage {overall['cover_bayes']:.1%} (target >= 90%); acc {overall['mae_acc']:.3f}, "
        f"sld {overall['mae_sld']:.3f}, oracle {overall['mae_oracle']:.3f}; {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
