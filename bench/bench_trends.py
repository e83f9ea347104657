"""How fast the History & trends view, /v1/summary and their store reads are on a large SQLite store.

Fills a temporary SQLite store with ``--faces`` sample rows and ``--people`` people (default a
tenth of the faces) spread over many runs, campaigns, locations and sources across ~90 days,
with a realistic label mix, ~3% faceless files and ~5% doubtful faces; their tallies are
made by the store's own code (``records.face_tallies``, ``records.person_tallies``). The rows
go in by bulk insert through the SQLite driver, in the format the store writes.

Then a child process, started after the fill so its memory is the reader's alone, times:

* ``open_s``: what opening the view asks of the store (``time_view``): filter options, the
  person and sample tallies, the row count and the first page of rows;
* ``rerun_s``: the same after a filter change: the median of five, each to another single
  campaign (``rerun_first_s``, the first of them, and ``rerun_max_s`` are printed above it);
* ``summary_s``: ``GET /v1/summary`` through FastAPI's TestClient on ``create_app`` (the second
  call; the first, with the app's lazy start-up work, is printed above it), in a second child;
* ``peak_rss_mb``: the view child's peak resident memory (the summary child's is printed apart:
  it holds the model too).

Run on an idle machine (the last line is the machine-readable one):

    python bench/bench_trends.py --faces 1000000
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CAMPAIGNS = [f"campaign {k:02d}" for k in range(12)] + [None]
LOCATIONS = ["Lyon", "Paris", "Berlin", "Madrid", "Milan", "Porto", "Ghent", "Oslo", None]
SOURCES = ("photo", "batch", "video", "live", "api", "cli")
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
LABEL_WEIGHTS = (0.08, 0.02, 0.05, 0.32, 0.11, 0.09, 0.33)
SENTIMENT = {"happy": "positive", "surprise": "neutral", "neutral": "neutral"}
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 90
ROWS_PER_RUN = 500
INSERT_CHUNK = 100_000
TALLY_COLUMNS = ("run_id", "hour", "unit", "emotion", "uncertain", "n", "day", "campaign", "location", "source")
TALLY_COLUMNS += ("status", "n_50", "n_60", "n_70", "n_80", "n_90")


def _stamp(at: datetime) -> str:
    """A UTC time as the store keeps it in SQLite (SQLAlchemy's DateTime text)."""
    return at.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _probabilities(rng: random.Random, emotion: str) -> tuple[dict[str, float], float]:
    top = round(rng.uniform(0.35, 0.98), 4)
    rest = (1 - top) / (len(LABELS) - 1)
    probs = {label: (top if label == emotion else round(rest, 4)) for label in LABELS}
    return probs, top


def fill(path: Path, faces: int, people: int, seed: int = 0, rows_per_run: int = ROWS_PER_RUN) -> dict[str, int]:
    """A store at ``path`` with ``faces`` sample rows and ``people`` people in runs of about
    ``rows_per_run`` rows; returns what it holds."""
    from src.analytics.store import Store
    from src.analytics.store.records import face_tallies, person_tallies

    Store(f"sqlite:///{path.as_posix()}").close()  # the schema, at the newest revision
    rng = random.Random(seed)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    runs = max(20, faces // rows_per_run)
    face_rows: list[tuple] = []
    people_rows: list[tuple] = []
    tally_rows: list[tuple] = []
    counts = {"runs": runs, "faces": 0, "people": 0, "tallies": 0}

    def flush(final: bool = False) -> None:
        if face_rows and (final or len(face_rows) >= INSERT_CHUNK):
            db.executemany(
                "INSERT INTO faces (run_id, file, face, x, y, w, h, emotion, confidence, sentiment, emotions,"
                " status, error, time, track_id, uncertain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                face_rows,
            )
            face_rows.clear()
        if people_rows and (final or len(people_rows) >= INSERT_CHUNK):
            db.executemany(
                "INSERT INTO people (run_id, person, kind, file, face, track_id, first_seen, last_seen, samples,"
                " dwell_s, emotion, confidence, sentiment, emotions, uncertain)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                people_rows,
            )
            people_rows.clear()
        if tally_rows and (final or len(tally_rows) >= INSERT_CHUNK):
            names = ", ".join(TALLY_COLUMNS)
            marks = ", ".join("?" * len(TALLY_COLUMNS))
            db.executemany(f"INSERT INTO tallies ({names}) VALUES ({marks})", tally_rows)
            tally_rows.clear()

    db.execute("BEGIN")
    faces_left, people_left = faces, people
    for k in range(runs):
        n = faces_left // (runs - k)
        m = people_left // (runs - k)
        faces_left -= n
        people_left -= m
        run_id = secrets.token_hex(16)
        source = rng.choice(SOURCES)
        created = START + timedelta(seconds=rng.uniform(0, DAYS * 86400))
        timed = source in ("video", "live")
        run = {"id": run_id, "created_at": created, "source": source, "status": "ok"}
        run |= {"campaign": rng.choice(CAMPAIGNS), "location": rng.choice(LOCATIONS)}
        db.execute(
            "INSERT INTO runs (id, created_at, finished_at, source, campaign, location, tags, model_version, status,"
            " error, files, faces, heartbeat_at, samples, people) VALUES (?, ?, ?, ?, ?, ?, '[]', 'v3', 'ok', '',"
            " ?, ?, ?, ?, ?)",
            (
                run_id,
                _stamp(created),
                _stamp(created + timedelta(minutes=5)),
                source,
                run["campaign"],
                run["location"],
                1 if timed else max(1, n // 3),
                n,
                _stamp(created + timedelta(minutes=5)),
                n,
                m,
            ),
        )
        records = []
        run_faces = 0
        for i in range(n):
            if rng.random() < 0.03:
                record = {"status": "no_face", "emotion": None, "time": None, "uncertain": None, "confidence": None}
                face_rows.append((run_id, f"f{i}.jpg", *[None] * 9, "no_face", "", None, None, None))
            else:
                emotion = rng.choices(LABELS, LABEL_WEIGHTS)[0]
                probs, top = _probabilities(rng, emotion)
                at = i * 0.5 if timed else None
                uncertain = rng.random() < 0.05
                run_faces += 1
                record = {"status": "ok", "emotion": emotion, "time": at, "uncertain": uncertain, "confidence": top}
                face_rows.append(
                    (
                        run_id,
                        "clip.mp4" if timed else f"f{i // 3}.jpg",
                        i % 3,
                        10,
                        20,
                        64,
                        64,
                        emotion,
                        top,
                        SENTIMENT.get(emotion, "negative"),
                        json.dumps(probs),
                        "ok",
                        "",
                        at,
                        (i // 40) if timed else None,
                        int(uncertain),
                    )
                )
            records.append(record)
        persons = []
        for p in range(m):
            emotion = rng.choices(LABELS, LABEL_WEIGHTS)[0]
            probs, top = _probabilities(rng, emotion)
            first = created + timedelta(seconds=(p * n * 0.5 / max(1, m)) if timed else 0.0)
            uncertain = rng.random() < 0.05
            persons.append({"first_seen": first, "emotion": emotion, "uncertain": uncertain, "confidence": top})
            people_rows.append(
                (
                    run_id,
                    p,
                    "track" if timed else "photo",
                    "clip.mp4" if timed else f"f{p}.jpg",
                    None if timed else 0,
                    p if timed else None,
                    _stamp(first),
                    _stamp(first + timedelta(seconds=20 if timed else 0)),
                    10 if timed else 1,
                    20.0 if timed else None,
                    emotion,
                    top,
                    SENTIMENT.get(emotion, "negative"),
                    json.dumps(probs),
                    int(uncertain),
                )
            )
        # The tallies as the store writes them with these rows.
        tallies = face_tallies(run, records) + person_tallies(run, persons)
        tally_rows.extend(tuple(_stamp(t[c]) if c in ("hour", "day") else t[c] for c in TALLY_COLUMNS) for t in tallies)
        counts["tallies"] += len(tallies)
        # As the store counts them: face rows with status ok, the others, the media times (the
        # pager relies on them).
        times = [r["time"] for r in records if r["time"] is not None]
        db.execute(
            "UPDATE runs SET faces = ?, samples = ?, no_face = ?, first_time = ?, last_time = ? WHERE id = ?",
            (run_faces, run_faces, n - run_faces, min(times, default=None), max(times, default=None), run_id),
        )
        counts["faces"] += n
        counts["people"] += m
        flush()
    flush(final=True)
    db.execute("COMMIT")
    db.close()
    return counts


def time_view(url: str) -> dict:
    """The real History & trends tab on the store at ``url`` (``bench/history_view_timing.py``:
    Streamlit's AppTest in a child process of its own): ``open_s``, ``rerun_s`` after a filter
    change, and that child's ``peak_rss_mb``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("history_view_timing", ROOT / "bench" / "history_view_timing.py")
    timing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(timing)
    return timing.time_view(url)


def time_summary(url: str) -> tuple[float, float]:
    """Seconds for the first GET /v1/summary after the app started (model and store loaded)
    and for a second one (what every later visitor waits)."""
    from fastapi.testclient import TestClient

    from src.analytics.store import Store
    from src.api.app import ApiSettings, create_app

    key = secrets.token_urlsafe(32)
    with Store(url) as store, TestClient(create_app(ApiSettings(api_key=key), store=store)) as client:
        took = []
        for _ in range(2):
            start = time.perf_counter()
            response = client.get("/v1/summary", headers={"Authorization": f"Bearer {key}"})
            took.append(time.perf_counter() - start)
            if response.status_code != 200:
                sys.exit(f"/v1/summary answered {response.status_code}: {response.text[:200]}")
    return took[0], took[1]


def read_phase(part: str, url: str) -> None:
    """A child's part (``view`` or ``summary``): its timings and peak memory as one JSON line."""
    if part == "view":
        print(json.dumps(time_view(url)))  # its own child's figures, peak memory included
        return
    else:
        first_s, again_s = time_summary(url)
        figures = {"first_summary_s": first_s, "summary_s": again_s}
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def _child(part: str, url: str) -> dict:
    """Run one read phase in a fresh process (its memory its own) and return its figures."""
    done = subprocess.run(
        [sys.executable, __file__, "--read", part, url], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"the {part} read phase failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000, help="sample rows to store")
    parser.add_argument("--people", type=int, default=None, help="people to store (default: faces / 10)")
    parser.add_argument(
        "--no-summary", action="store_true", help="skip /v1/summary (summary_s=nan), e.g. while it reads every row"
    )
    parser.add_argument(
        "--rows-per-run",
        type=int,
        default=ROWS_PER_RUN,
        help="sample rows per run (the tallies grow with runs x hours x labels, not with rows)",
    )
    parser.add_argument("--db", type=Path, help="keep the store in this SQLite file (reused when it exists)")
    parser.add_argument("--read", nargs=2, metavar=("PART", "URL"), help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    if args.read:
        read_phase(*args.read)
        return
    people = args.faces // 10 if args.people is None else args.people
    with tempfile.TemporaryDirectory(prefix="bench_trends_") as tmp:
        path = args.db or Path(tmp) / "results.db"
        if path.exists():
            print(f"store: reusing {path}", flush=True)
        else:
            start = time.perf_counter()
            held = fill(path, args.faces, people, rows_per_run=args.rows_per_run)
            fill_s = time.perf_counter() - start
            size_mb = path.stat().st_size / 1e6
            print(
                f"store: {held['faces']:,} face rows, {held['people']:,} people, {held['runs']:,} runs, "
                f"{held['tallies']:,} tally rows; filled in {fill_s:.1f} s, {size_mb:,.0f} MB",
                flush=True,
            )
        url = f"sqlite:///{path.as_posix()}"
        view = _child("view", url)
        summary = {"summary_s": math.nan} if args.no_summary else _child("summary", url)
    print(
        f"History view: filter changes took {view['rerun_first_s']:.3f} s (the first), {view['rerun_max_s']:.3f} s "
        f"(the slowest); per hour over every campaign {view['hour_s']:.3f} s"
    )
    if not args.no_summary:
        print(
            f"/v1/summary: first call after start-up {summary['first_summary_s']:.3f} s, then "
            f"{summary['summary_s']:.3f} s (summary_s); that process peaked at {summary['peak_rss_mb']:.0f} MB"
        )
    print(
        f"faces={args.faces} open_s={view['open_s']:.3f} rerun_s={view['rerun_s']:.3f} "
        f"summary_s={summary['summary_s']:.3f} peak_rss_mb={view['peak_rss_mb']:.0f}"
    )


if __name__ == "__main__":
    main()
