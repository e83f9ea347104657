"""Saving what the dashboard analysed into the results store (``src.analytics.store``), failures included.

The dashboard's tabs hand their results here: photos and batches as ``ImageResult``
rows, a video's per-face table with each face's ``time`` and ``track_id``, and the live
camera's finished seconds as per-second aggregates. No streamlit: the pages only show
the ``Saved`` outcome, so a store that is down, full or refusing a value gives a clear
message while the results stay on screen.

The live camera is recorded by ``LiveRecorder`` from the Streamlit script thread (the
panel that refreshes every second), never from the WebRTC frame callback: it copies
the seconds ``LiveStats`` has finished, each exactly once, and retries the ones a
failed write left behind while they are still in the stats' window. The tracks that
ended (``LiveStats.finished_tracks``) go in the same transaction, as people (those with
``FER_PERSON_MIN_SAMPLES`` detections; the others stay samples only), and the ones still
followed when the camera stops go with the last seconds.

Photos, batches and videos get their people from the store itself (``Store.add_rows``,
``Store.finish_run``): a photo's face is a person, a video's track with enough samples too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from src.analytics.people import Person, is_person, track_people

LOGGER = logging.getLogger(__name__)
PHOTO_SOURCES = ("photo", "batch")


@dataclass(frozen=True)
class Saved:
    """The outcome of one save: the run it went to, how many rows, or why it failed."""

    run_id: Any = None
    rows: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def clean_name(value: str | None) -> str | None:
    """A campaign or location as typed, without surrounding blanks; None when empty."""
    value = (value or "").strip()
    return value or None


def failure(exc: BaseException) -> str:
    """A one-line reason for a store failure (no traceback): the store's own message when it has one."""
    from src.analytics.store import StoreError

    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, StoreError) and detail:
        return detail
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def alert_recorder(store):
    """``on_result`` for ``src.analytics.alerts``: each webhook event's outcome (delivered or why not)
    recorded in the store. Runs on the sender thread; a store failure is logged, never raised."""

    def record(event, delivered: bool, error: str) -> None:
        try:
            store.record_alert(
                kind=event.kind, message=event.message, payload=event.payload, delivered=delivered, error=error or ""
            )
        except Exception as exc:  # the sender thread must keep delivering
            LOGGER.warning("could not record the %s alert: %s", event.kind, failure(exc))

    return record


def image_rows(results: Iterable, class_names: Sequence[str]) -> list[dict]:
    """The per-face rows (``ImageResult.rows``) of photos or a batch, failed files included."""
    return [row for result in results for row in result.rows(class_names)]


def video_rows(faces: pd.DataFrame, name: str, class_names: Sequence[str]) -> list[dict]:
    """A video's per-face table (``video.face_tracks_frame``) as store rows with ``time`` and ``track_id``.

    ``face`` numbers the faces within their frame, as in a photo.
    """
    rows = []
    within = faces.groupby("frame").cumcount() if len(faces) else pd.Series([], dtype=int)
    for (_, face), index in zip(faces.iterrows(), within):
        row = {
            "file": name,
            "face": int(index),
            **{k: int(face[k]) for k in ("x", "y", "w", "h")},
            "emotion": str(face["emotion"]),
            "confidence": float(face["confidence"]),
        }
        row.update({c: float(face[c]) for c in class_names})
        row.update(status="ok", error="", time=float(face["time_s"]), track_id=int(face["track_id"]))
        rows.append(row)
    return rows


def video_people(faces: pd.DataFrame, name: str, class_names: Sequence[str]) -> list[Person]:
    """The people of a video's per-face table (one per track with ``FER_PERSON_MIN_SAMPLES``
    samples), as the store counts them when the video's run finishes."""
    rows = video_rows(faces, name, class_names)
    return track_people([{**row, "emotions": {c: row[c] for c in class_names}} for row in rows])


def save_rows(store, source: str, rows: list[dict], **run_fields) -> Saved:
    """One run of ``rows`` (``store.save_rows``); never raises: failures come back as ``Saved.error``."""
    try:
        run_id = store.save_rows(source, rows, **run_fields)
    except Exception as exc:  # any store failure: the caller keeps its results and shows this
        LOGGER.warning("saving %s results failed: %s", source, exc)
        return Saved(error=failure(exc))
    return Saved(run_id=run_id, rows=len(rows))


def in_progress(runs: pd.DataFrame, now: float, lease_s: float | None = None) -> pd.Series:
    """Which runs are still being written: ``running`` with a heartbeat within the lease
    (FER_RUN_LEASE_S); an older one was abandoned by its process."""
    from src import config

    lease = config.RUN_LEASE_S if lease_s is None else lease_s
    running = runs["status"] == "running"
    if "heartbeat_at" not in runs:
        return running
    fresh = pd.to_datetime(runs["heartbeat_at"], utc=True) >= pd.Timestamp(now - lease, unit="s", tz="UTC")
    return running & fresh.fillna(False).astype(bool)


def history_version(runs: pd.DataFrame, now: float, running_every: float = 5.0, lease_s: float | None = None) -> str:
    """A key that changes whenever what the views count would: a run added, deleted, grown,
    finished, or no longer in progress (its lease ran out).

    Live sessions add seconds without touching their run's counts, so while any run is in
    progress the key also moves every ``running_every`` seconds.
    """
    import hashlib

    columns = [c for c in ("run_id", "status", "files", "faces", "samples", "people", "finished_at") if c in runs]
    digest = hashlib.sha256(pd.util.hash_pandas_object(runs[columns], index=False).to_numpy().tobytes())
    active = in_progress(runs, now, lease_s)
    if active.any():
        digest.update(",".join(runs.loc[active, "run_id"]).encode())
        digest.update(str(int(now // running_every)).encode())
    return digest.hexdigest()


def run_fields(campaign: str | None, location: str | None, model_version: str = "") -> dict:
    """The keyword arguments a run is started with."""
    return {"campaign": clean_name(campaign), "location": clean_name(location), "model_version": model_version}


# --- live camera ------------------------------------------------------------------------


def faces_in_view(counts: np.ndarray, frames: int, faces: int) -> tuple[int, np.ndarray]:
    """One second's faces in view and their labels, from its per-frame counts.

    ``LiveStats`` counts every face in every processed frame, so one person seen at 10 fps
    is 10 per second. Stored, a second holds the faces in view on average (rounded) and
    their labels' shares of them, rounded by largest remainder so they add up: one person
    for a minute is 60 face-seconds, whatever the frame rate.
    """
    counts = np.asarray(counts, dtype=float)
    frames = max(1, int(frames))
    mean = counts / frames
    total = int(round(faces / frames))
    whole = np.floor(mean)
    short = total - int(whole.sum())
    if short > 0:
        whole[np.argsort(-(mean - whole), kind="stable")[:short]] += 1
    return total, whole.astype(int)


def live_seconds(seconds: Sequence, labels: Sequence[str]) -> list[dict]:
    """``live.SecondCounts`` as the store's per-second aggregates: UTC second, faces in view, counts per label."""
    out = []
    for bucket in seconds:
        faces, counts = faces_in_view(bucket.counts, bucket.frames, bucket.faces)
        out.append(
            {
                "second": datetime.fromtimestamp(int(bucket.second), tz=UTC),
                "faces": faces,
                "counts": {label: int(n) for label, n in zip(labels, counts) if n},
            }
        )
    return out


class LiveRecorder:
    """Copies a live session's finished seconds into the store, one run per stretch of streaming.

    ``flush`` is called from the script thread (every second while the camera plays, and
    once more with ``final=True`` when it stops); the second still being counted is left
    for the next call. Changing the campaign or location starts a new run.
    """

    def __init__(self, campaign: str | None = None, location: str | None = None, model_version: str = ""):
        self.fields = run_fields(campaign, location, model_version)
        self.run_id: Any = None
        self.saved_until: int | None = None  # the last second written
        self.seconds_saved = 0
        self.tracks_after = 0  # the last finished track written (``FinishedTrack.seq``)
        self.people_saved = 0
        self.error = ""

    def set_fields(self, store, campaign: str | None, location: str | None, model_version: str = "") -> None:
        fields = run_fields(campaign, location, model_version)
        if fields != self.fields:
            self.finish(store)
            self.fields = fields

    def flush(self, store, stats, labels: Sequence[str], now: float, final: bool = False) -> int:
        """Write the seconds finished since the last flush, with the people whose tracks ended
        (all of them when ``final``); returns how many seconds (0 on failure, see ``error``).

        ``stats`` is a ``LiveStats`` or a view with its ``seconds`` (and ``finished_tracks``:
        without it, no people are written)."""
        pending = [
            b
            for b in stats.seconds(now)
            if (self.saved_until is None or b.second > self.saved_until) and (final or b.second < int(now))
        ]
        finished = stats.finished_tracks(self.tracks_after, final=final) if hasattr(stats, "finished_tracks") else []
        people = [t.person for t in finished if is_person(t.person)]
        if not pending and not people:
            if finished:
                self.tracks_after = finished[-1].seq  # one-detection glitches: samples, not people
            return 0
        try:
            if self.run_id is None:
                self.run_id = store.start_run("live", **self.fields)
            store.add_live_seconds(self.run_id, live_seconds(pending, labels), people=people)
        except Exception as exc:  # the camera keeps running; these seconds are retried next time
            from src.analytics.store import RunClosedError

            LOGGER.warning("saving live seconds failed: %s", exc)
            self.error = failure(exc)
            if isinstance(exc, RunClosedError) or not self._running(store):
                self.run_id = None  # the store closed the run (failed, deleted): the retry opens a new one
            return 0
        self.error = ""
        if pending:
            self.saved_until = pending[-1].second
        if finished:
            self.tracks_after = finished[-1].seq
        self.seconds_saved += len(pending)
        self.people_saved += len(people)
        return len(pending)

    def _running(self, store) -> bool:
        """Whether the current run still takes rows (True when the store cannot say)."""
        if self.run_id is None:
            return False
        try:
            run = store.get_run(self.run_id)
        except Exception:
            return True
        return run is not None and run["status"] == "running"

    def finish(self, store, status: str = "ok") -> None:
        """Close the current run (the next flush opens a new one); a run the store failed stays failed."""
        if self.run_id is None:
            return
        try:
            store.finish_run(self.run_id, status=status, if_running=True)
        except Exception as exc:
            LOGGER.warning("closing live run %s failed: %s", self.run_id, exc)
            self.error = failure(exc)
        self.run_id = None
