"""DEMO DATA ONLY: fills a results store with made-up, seeded runs for screenshots and tests.

Nothing here comes from a camera or a model: three invented campaigns over several weeks,
in three invented locations, as photo batches, a few videos and live sessions, with
emotion mixes drawn at random around a per-campaign profile. Each face's true emotion is
drawn from that mix, then *read* as a model reads real photos, mistakes included
(``READ_AS``), so the corrected shares on the dashboard land near the profiles, as they
would on real data. Every run is tagged
``demo`` (and its files are named ``demo_...``), so demo rows are easy to find and
delete (``python -m src.cli runs delete``, or the History & trends tab).

People and samples differ as they would for real: a photo's face is one person and one
sample; a video holds a few invented people, each followed for a stretch of 0.5 s samples
(the store makes them people when the run finishes); a live session is visitors who stay
a few seconds to a minute, stored as face-seconds and as one person each. The command prints
people against samples per campaign.

    python -m src.analytics.demo --database-url sqlite:////tmp/demo.db   # never the real store by default
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from src import config
from src.analytics.people import LIVE_FILE, Person, TrackTally

DEMO_TAG = "demo"
# Share of each emotion (angry, disgust, fear, happy, sad, surprise, neutral) per campaign,
# at its start and at its end: the mix drifts linearly in between.
PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "Spring ad A": ((0.08, 0.03, 0.05, 0.30, 0.10, 0.09, 0.35), (0.07, 0.03, 0.05, 0.33, 0.09, 0.09, 0.34)),
    "Spring ad B": ((0.06, 0.02, 0.04, 0.42, 0.07, 0.12, 0.27), (0.05, 0.02, 0.04, 0.47, 0.06, 0.12, 0.24)),
    "Loyalty week": ((0.14, 0.05, 0.07, 0.20, 0.16, 0.06, 0.32), (0.07, 0.03, 0.05, 0.36, 0.09, 0.08, 0.32)),
}
# How a face of each true emotion (rows) is read (columns), in %: the deployed model's confusion
# on held-back web photos (models/fer_cnn.error_model.json, v3.1-scale), rounded. Reading the demo's
# faces this way keeps the stored labels consistent with the error model that corrects them.
READ_AS = np.array(
    [
        (66, 14, 4, 3, 2, 10, 1),
        (21, 31, 7, 6, 11, 2, 22),
        (17, 5, 45, 3, 7, 20, 2),
        (7, 5, 1, 63, 6, 5, 12),
        (21, 18, 10, 6, 27, 6, 12),
        (23, 4, 11, 11, 6, 37, 8),
        (4, 21, 4, 3, 20, 4, 44),
    ],
    float,
)
LOCATIONS = ("Paris Opéra", "Lyon Part-Dieu", "Online panel")
VIDEO_EVERY_S = 0.5  # the demo videos' sampling, as the dashboard's default
LIVE_SECONDS = 240  # length of a demo live session
STAYS_S = (5, 60)  # how long a live visitor stays, at least and at most
# Weeks (counted back from now) each campaign ran.
ACTIVE_WEEKS = {"Spring ad A": (6, 1), "Spring ad B": (4, 0), "Loyalty week": (5, 0)}


def _probabilities(rng: np.random.Generator, emotion: int, labels: Sequence[str]) -> dict[str, float]:
    confidence = float(np.clip(rng.beta(5, 2.5), 0.3, 0.99))
    rest = rng.dirichlet(np.ones(len(labels) - 1)) * (1 - confidence)
    probs = np.insert(rest, emotion, confidence)
    return {label: round(float(p), 4) for label, p in zip(labels, probs)}


class _Reader:
    """Reads a true emotion as the model would (``READ_AS``), on a random stream of its own, so the
    demo's runs, people and samples stay those drawn from the main stream."""

    def __init__(self, seed: int, k: int) -> None:
        self.rng = np.random.default_rng([seed, 99])
        self.rows = READ_AS / READ_AS.sum(axis=1, keepdims=True) if k == len(READ_AS) else np.eye(k)

    def __call__(self, emotion: int) -> int:
        return int(self.rng.choice(len(self.rows), p=self.rows[emotion]))


def _faces(
    rng: np.random.Generator, mix: np.ndarray, n: int, labels: Sequence[str], file_prefix: str, read=int
) -> list[dict]:
    rows = []
    for i in range(n):
        emotion = read(int(rng.choice(len(labels), p=mix)))
        probs = _probabilities(rng, emotion, labels)
        rows.append(
            {
                "file": f"{file_prefix}_{i // 3:04d}.jpg",
                "face": i % 3,
                "x": int(rng.integers(0, 600)),
                "y": int(rng.integers(0, 400)),
                "w": 80,
                "h": 80,
                "emotion": labels[emotion],
                "confidence": probs[labels[emotion]],
                **probs,
                "status": "ok",
                "error": "",
            }
        )
    return rows


def _video_rows(rng: np.random.Generator, mix: np.ndarray, labels: Sequence[str], file: str, read=int) -> list[dict]:
    """A made-up video's face rows: 1-4 people, each followed for a stretch of samples, mostly
    with their own emotion (a track id each; ``time`` in seconds into the video)."""
    rows = []
    for track_id in range(int(rng.integers(1, 5))):
        emotion = int(rng.choice(len(labels), p=mix))
        start = int(rng.integers(0, 20))
        for k in range(int(rng.integers(6, 30))):
            shown = emotion if rng.random() < 0.8 else int(rng.choice(len(labels), p=mix))
            row = _faces(rng, np.eye(len(labels))[shown], 1, labels, file, read)[0]
            row.update(file=file, face=track_id, time=round((start + k) * VIDEO_EVERY_S, 2), track_id=track_id)
            rows.append(row)
    return sorted(rows, key=lambda r: (r["time"], r["track_id"]))


def _live_session(
    rng: np.random.Generator, mix: np.ndarray, labels: Sequence[str], when: datetime, read=int
) -> tuple[list[dict], list[Person]]:
    """A made-up live session: visitors arrive, stay 5-60 s with their own emotion, and leave.
    Returns its per-second aggregates (faces in view, their labels) and its people."""
    start = when.timestamp()
    visitors: list[tuple[int, int, int, TrackTally]] = []  # arrival second, stay, emotion, tally
    second = int(rng.integers(0, 5))
    while second < LIVE_SECONDS:
        stay = int(rng.integers(*STAYS_S))
        emotion = int(rng.choice(len(labels), p=mix))
        visitors.append((second, min(stay, LIVE_SECONDS - second), emotion, TrackTally(len(visitors), 0.0, 0.0)))
        second += int(rng.integers(3, 25))
    seconds = []
    for s in range(LIVE_SECONDS):
        counts = np.zeros(len(labels), int)
        for arrived, stay, emotion, tally in visitors:
            if arrived <= s < arrived + stay:
                shown = read(emotion if rng.random() < 0.85 else int(rng.choice(len(labels), p=mix)))
                counts[shown] += 1
                probs = list(_probabilities(rng, shown, labels).values())
                if tally.samples == 0:
                    tally.first_seen = tally.last_seen = start + s
                tally.add(start + s, probs)
        seconds.append(
            {
                "second": when + timedelta(seconds=s),
                "faces": int(counts.sum()),
                "counts": {label: int(n) for label, n in zip(labels, counts) if n},
            }
        )
    people = [tally.person(labels, LIVE_FILE) for _, _, _, tally in visitors if tally.samples]
    return seconds, people


def fill_demo_store(store, *, seed: int = 7, weeks: int = 6, now: datetime | None = None) -> int:
    """Add the demo runs (tagged ``demo``) ending at ``now``; returns how many runs were added."""
    rng = np.random.default_rng(seed)
    labels = list(config.EMOTIONS)
    read = _Reader(seed, len(labels))
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start = now - timedelta(weeks=weeks)
    added = 0
    for day in range(weeks * 7 + 1):
        date = (start + timedelta(days=day)).replace(hour=0, minute=0, second=0, microsecond=0)
        weeks_back = (now - date).days // 7
        for campaign, (first, last) in ACTIVE_WEEKS.items():
            if not (last <= weeks_back <= min(first, weeks)):
                continue
            begin, end = (np.array(p) for p in PROFILES[campaign])
            progress = 1 - (weeks_back - last) / max(1, first - last)
            mix = begin + (end - begin) * progress
            mix = mix / mix.sum()
            for _ in range(int(rng.poisson(1.4))):
                when = date + timedelta(hours=float(rng.uniform(9, 19)))
                if when > now:
                    continue
                location = LOCATIONS[int(rng.integers(0, len(LOCATIONS)))]
                source = "video" if rng.random() < 0.15 else "batch"
                fields = dict(campaign=campaign, location=location, tags=[DEMO_TAG], model_version="demo")
                run_id = store.start_run(source, created_at=when, **fields)
                if source == "video":
                    rows = _video_rows(rng, mix, labels, f"demo_{added:04d}.mp4", read)
                else:
                    rows = _faces(rng, mix, int(rng.integers(12, 60)), labels, f"demo_{added:04d}", read)
                store.add_rows(run_id, rows)
                store.finish_run(run_id)
                added += 1
    # Two live sessions at the service desk, a few minutes each.
    for k, campaign in enumerate(("Loyalty week", "Spring ad B")):
        when = (now - timedelta(days=2 + 5 * k)).replace(hour=14, minute=0, second=0, microsecond=0)
        run_id = store.start_run(
            "live", created_at=when, campaign=campaign, location=LOCATIONS[k], tags=[DEMO_TAG], model_version="demo"
        )
        begin = np.array(PROFILES[campaign][1])
        # Its own random stream: the batches above draw more or less depending on the time of
        # day (runs later than now are skipped), and the sessions must not change with it.
        session_rng = np.random.default_rng([seed, k])
        seconds, people = _live_session(
            session_rng, begin / begin.sum(), labels, when, _Reader(seed + 1 + k, len(labels))
        )
        store.add_live_seconds(run_id, seconds, people=people)
        store.finish_run(run_id)
        added += 1
    return added


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fill a results store with DEMO data (made up; tagged 'demo').")
    parser.add_argument("--database-url", required=True, help="store to fill, e.g. sqlite:////tmp/demo.db")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--weeks", type=int, default=6)
    args = parser.parse_args(argv)
    from src.analytics.store import open_store

    store = open_store(args.database_url)
    runs = fill_demo_store(store, seed=args.seed, weeks=args.weeks)
    print(f"added {runs} demo runs (tagged '{DEMO_TAG}')")
    print(people_against_samples(store.runs(status="ok")).to_string(index=False))
    return 0


def people_against_samples(runs: pd.DataFrame) -> pd.DataFrame:
    """Per campaign and source: runs, people and samples (``Store.runs()`` frame), campaigns A-Z."""
    table = runs.assign(campaign=runs["campaign"].replace("", "(no campaign)"))
    table = table.groupby(["campaign", "source"], as_index=False).agg(
        runs=("run_id", "size"), people=("people", "sum"), samples=("samples", "sum")
    )
    return table.sort_values(["campaign", "source"], ignore_index=True)


if __name__ == "__main__":
    raise SystemExit(main())
