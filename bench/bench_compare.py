"""False alarms of the campaign comparison when people are seen many times: the naive chi-square against the new test.

Two campaigns are drawn from the *same* mix, so every "differ" is a false alarm. Each
campaign is a set of people, each seen several times (video or live samples); each person
has their own expression tendencies (a Dirichlet draw around the campaign mix, concentration
``--kappa``) and the model reads each sample through a confusion matrix (the deployed
model's error model, ``models/fer_cnn.error_model.json``, when it is there) that is itself
a little different for each person (``--person-noise``), so one person's samples hang
together as in real footage.

Per scenario and repetition: the naive test (Pearson's chi-square on rows: every sample taken
as independent), the Rao-Scott one (second-order Rao-Scott F test with people as clusters,
``src.analytics.compare.rao_scott``, what ``compare`` decides by), and the product's test:
each person counted once with one label (here their most frequent sample label; the product
averages their probabilities), then Pearson's chi-square on the people counts
(``src.analytics.compare.pearson``, what ``compare_counts`` decides by), at alpha 0.05. It also reports power against a real gap
(campaign B with 15 points moved from neutral to happy) and runs ``compare`` end to end on some
repetitions of the main scenario to count its verdicts.

Usage: python bench/bench_compare.py [--reps 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from src import config
from src.analytics.compare import compare, pearson, rao_scott
from src.analytics.quantify import Confusion, cluster_counts
from src.training.error_model import load_error_model

MIX = {"angry": 0.07, "disgust": 0.05, "fear": 0.05, "happy": 0.35, "sad": 0.10, "surprise": 0.08, "neutral": 0.30}
SCENARIOS = {  # name: (people per campaign, samples per person: an int, or (low, high) drawn per person)
    "30 people x 10 samples": (30, 10),
    "12 people x 25 samples": (12, 25),
    "60 people x 1-20 samples": (60, (1, 20)),
    "300 faces, each a different person": (300, 1),
}


def campaign(mix: np.ndarray, confusion: np.ndarray, people: int, samples, kappa: float, noise: float, rng):
    """(predicted label indices, person ids) of one simulated campaign."""
    k = len(mix)
    sizes = np.full(people, samples) if isinstance(samples, int) else rng.integers(samples[0], samples[1] + 1, people)
    ids = np.repeat(np.arange(people), sizes)
    tendency = _rows(rng.standard_gamma(np.broadcast_to(kappa * mix, (people, k))))
    reads = np.broadcast_to(confusion, (people, k, k))
    if noise:
        reads = _rows(rng.standard_gamma(noise * reads + 1e-3))
    true = _pick(tendency[ids], rng)
    return _pick(reads[ids, true], rng), ids


def person_counts(labels: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Label counts of people: each person once, with their most frequent sample label."""
    table = cluster_counts(labels, ids, k)
    return np.bincount(table.argmax(axis=1), minlength=k)


def _rows(x: np.ndarray) -> np.ndarray:
    return x / x.sum(axis=-1, keepdims=True)


def _pick(probs: np.ndarray, rng) -> np.ndarray:
    """One category per row of ``probs`` (inverse CDF)."""
    cut = probs.cumsum(axis=1)
    return np.minimum((rng.random(len(probs))[:, None] > cut).sum(axis=1), probs.shape[1] - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--verdict-reps", type=int, default=200, help="repetitions run through compare() end to end")
    ap.add_argument("--kappa", type=float, default=3.0, help="how alike people are (higher: more alike)")
    ap.add_argument("--person-noise", type=float, default=20.0, help="0: every person read alike")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    model = load_error_model(strict=False)
    names = tuple(config.EMOTIONS)
    if model is not None:
        names, counts = model.class_names, model.counts.astype(float)
        source = f"confusion of {model.model_file} ({model.describe()})"
    else:
        counts = 40 * np.eye(len(names)) + 10
        source = "a synthetic confusion (40% right): no error model file beside the model"
    confusion = counts / counts.sum(axis=1, keepdims=True)
    mix = np.array([MIX[n] for n in names])
    shifted = mix.copy()  # 15 points moved from neutral to happy
    shifted[names.index("happy")] += 0.15
    shifted[names.index("neutral")] -= 0.15
    print(
        f"mix {dict(zip(names, mix.round(2).tolist()))}; {source}; kappa {args.kappa}, person noise {args.person_noise}"
    )

    start = time.perf_counter()
    summary = {}
    for name, (people, samples) in SCENARIOS.items():
        rates = {}
        for label, mix_b in (("same mix", mix), ("neutral -> happy 15 points", shifted)):
            naive = new = per_person = 0
            for _ in range(args.reps):
                a = campaign(mix, confusion, people, samples, args.kappa, args.person_noise, rng)
                b = campaign(mix_b, confusion, people, samples, args.kappa, args.person_noise, rng)
                test = rao_scott(*(cluster_counts(x, ids, len(names)) for x, ids in (a, b)))
                naive += test.pearson_p < 0.05
                new += test.p_value < 0.05
                counted = pearson(*(person_counts(x, ids, len(names)) for x, ids in (a, b)))
                per_person += counted is not None and counted.p_value < 0.05
            rates[label] = (naive / args.reps, new / args.reps, per_person / args.reps)
        summary[name] = rates
        (n0, r0, p0), (n1, r1, p1) = rates["same mix"], rates["neutral -> happy 15 points"]
        print(
            f"{name:38s} false alarms: naive chi-square {n0:6.1%}, Rao-Scott {r0:6.1%}, people counted once "
            f"{p0:6.1%}   power (15 points neutral -> happy): naive {n1:6.1%}, Rao-Scott {r1:6.1%}, "
            f"people {p1:6.1%}"
        )

    verdicts: dict[str, int] = {}
    error_model = Confusion(names, counts)
    people, samples = SCENARIOS["30 people x 10 samples"]
    for rep in range(args.verdict_reps):
        a_labels, a_ids = campaign(mix, confusion, people, samples, args.kappa, args.person_noise, rng)
        b_labels, b_ids = campaign(mix, confusion, people, samples, args.kappa, args.person_noise, rng)
        result = compare(
            [names[i] for i in a_labels],
            [names[i] for i in b_labels],
            clusters_a=a_ids,
            clusters_b=b_ids,
            error_model=error_model,
            seed=rep,
        )
        kind = "differ" if result.differs else ("no clear difference" if result.testable else "too few to tell")
        verdicts[kind] = verdicts.get(kind, 0) + 1
    print(f"compare() verdicts, 30 people x 10 samples, same mix, {args.verdict_reps} repetitions: {verdicts}")
    print(f"last verdict: {result.verdict}")
    main_naive, main_new, main_people = summary["30 people x 10 samples"]["same mix"]
    worst = max(r["same mix"][1] for r in summary.values())
    print(
        f"SUMMARY false alarms at alpha 0.05, 30 people x 10 samples ({args.reps} repetitions): naive chi-square "
        f"{main_naive:.1%}, new test {main_new:.1%} (target <= 7%), people counted once {main_people:.1%}; "
        f"new test worst over {len(SCENARIOS)} scenarios "
        f"{worst:.1%}; {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
