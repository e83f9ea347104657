"""People as the unit (src/analytics/people.py): a photo's face, a video's or live camera's track."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src import config
from src.analytics import people
from src.engine.faces import Box
from src.engine.results import FaceResult, ImageResult

LABELS = config.EMOTIONS


def probs(emotion: str, p: float = 0.7) -> dict[str, float]:
    out = dict.fromkeys(LABELS, (1 - p) / (len(LABELS) - 1))
    out[emotion] = p
    return out


def tracked(file: str, track_id: int, emotions: list[str], every: float = 0.5, start: float = 0.0) -> list[dict]:
    return [
        {"file": file, "emotion": e, "confidence": 0.7, "emotions": probs(e), "time": start + i * every,
         "track_id": track_id, "status": "ok"}
        for i, e in enumerate(emotions)
    ]  # fmt: skip


def test_every_face_of_a_photo_is_a_person_and_faceless_files_are_none():
    face = FaceResult(box=Box(1, 2, 3, 4), emotions=probs("sad"), emotion="sad", confidence=0.7)
    rows = [
        {**row, "emotions": {label: row[label] for label in LABELS}}
        for result in (ImageResult("a.jpg", [face, face, face]), ImageResult("b.jpg", status="no_face"))
        for row in result.rows(LABELS)
    ]
    found = people.people_of_rows(rows)
    assert [(p.kind, p.file, p.face, p.emotion, p.samples) for p in found] == [
        ("photo", "a.jpg", i, "sad", 1) for i in range(3)
    ]
    assert found[0].probabilities["sad"] == pytest.approx(0.7) and found[0].dwell_s is None
    assert all(people.is_person(p, min_samples=50) for p in found)  # photos always count


def test_a_track_is_one_person_with_its_mean_probabilities_and_dwell():
    rows = tracked("v.mp4", 3, ["happy"] * 6 + ["sad"] * 4)
    (person,) = people.track_people(rows)
    mean = np.mean([[r["emotions"][label] for label in LABELS] for r in rows], axis=0)
    assert list(person.probabilities.values()) == pytest.approx(mean)
    assert (person.emotion, person.confidence) == ("happy", pytest.approx(mean.max()))
    assert (person.kind, person.track_id, person.samples) == ("track", 3, 10)
    assert (person.first_seen, person.last_seen, person.dwell_s) == (0.0, 4.5, pytest.approx(5.0))


def test_tracks_are_people_per_file_and_one_sample_tracks_are_none():
    rows = tracked("a.mp4", 0, ["happy"] * 3) + tracked("b.mp4", 0, ["sad"] * 2) + tracked("a.mp4", 1, ["fear"])
    rows.append({**rows[0], "status": "error", "emotion": ""})  # not a face: ignored
    found = people.track_people(rows)
    assert [(p.file, p.track_id, p.samples) for p in found] == [("a.mp4", 0, 3), ("b.mp4", 0, 2)]
    assert len(people.track_people(rows, min_samples=1)) == 3
    assert [p.track_id for p in people.track_people(rows, min_samples=3)] == [0]


def test_a_face_hidden_for_a_while_stays_as_long_as_it_was_seen_plus_one_sample():
    # Seen at 0, 0.5, then hidden, then at 3.0 and 3.5: the video's sampling is 0.5 s.
    rows = [*tracked("v.mp4", 0, ["happy"] * 2), *tracked("v.mp4", 0, ["happy"] * 2, start=3.0)]
    rows += tracked("v.mp4", 1, ["sad"] * 8)  # another person sets the file's sampling
    person = people.track_people(rows)[0]
    assert person.dwell_s == pytest.approx(4.0)
    assert people.dwell_seconds(0.0, 3.5, 4) == pytest.approx(3.5 + 3.5 / 3)  # its own mean gap, alone
    assert people.dwell_seconds(2.0, 2.0, 1) == 0.0
    assert people.sampling_interval([0.0, 0.5, 0.5, 1.0, None, 3.0]) == 0.5
    assert people.sampling_interval([1.0]) is None


def test_without_probabilities_a_track_takes_the_label_most_of_its_samples_had():
    rows = [{**r, "emotions": None} for r in tracked("v.mp4", 0, ["sad", "happy", "sad"])]
    (person,) = people.track_people(rows)
    assert (person.emotion, person.confidence, person.probabilities) == ("sad", pytest.approx(2 / 3), {})
    assert people.mean_probabilities([None, {}, {"a": 1.0}, {"a": 0.0, "b": 1.0}]) == {"a": 0.5, "b": 0.5}
    assert people.top_label({"a": 0.4, "b": 0.4}) == ("a", 0.4) and people.top_label({}) is None


def test_live_tracks_are_tallied_sample_by_sample():
    tally = people.TrackTally.start(5, 100.0, [0.2, 0.8])
    for k in range(1, 4):
        tally.add(100.0 + 0.6 * k, [0.6, 0.4])
    person = tally.person(("calm", "tense"))
    assert (person.file, person.track_id, person.samples) == (people.LIVE_FILE, 5, 4)
    assert person.probabilities == pytest.approx({"calm": 0.5, "tense": 0.5})
    assert person.emotion == "calm"  # a tie goes to the first label
    assert person.first_seen == 100.0 and person.last_seen == pytest.approx(101.8)
    assert person.dwell_s == pytest.approx(2.4)
    assert person.as_row()["probabilities"] == person.probabilities
    glitch = people.TrackTally.start(6, 100.0, [1.0, 0.0]).person(("calm", "tense"))
    assert not people.is_person(glitch) and people.is_person(glitch, min_samples=1)


def test_people_of_a_results_frame_run_by_run():
    frame = pd.DataFrame(
        [
            {"run_id": "r1", "file": "a.jpg", "face": 0, "status": "ok", "emotion": "happy", "confidence": 0.7,
             **probs("happy"), "time": np.nan, "track_id": pd.NA},
            {"run_id": "r1", "file": "b.jpg", "face": pd.NA, "status": "no_face", "emotion": "", "confidence": np.nan,
             **dict.fromkeys(LABELS, np.nan), "time": np.nan, "track_id": pd.NA},
            *({"run_id": "r2", "file": "v.mp4", "face": 0, "status": "ok", "emotion": "sad", "confidence": 0.7,
               **probs("sad"), "time": t, "track_id": 4} for t in (0.0, 0.5, 1.0)),
        ]
    )  # fmt: skip
    found = people.people_of_results(frame, LABELS)
    assert found["run_id"].tolist() == ["r1", "r2"] and found["kind"].tolist() == ["photo", "track"]
    assert found["samples"].tolist() == [1, 3] and found["dwell_s"].tolist()[1] == pytest.approx(1.5)
    assert found["emotion"].tolist() == ["happy", "sad"] and found["face"].tolist()[0] == 0
    assert people.people_of_results(frame.iloc[:0], LABELS).empty


def test_a_doubtful_photo_face_is_a_doubtful_person():
    sure = FaceResult(box=Box(1, 2, 30, 30), emotions=probs("sad"), emotion="sad", confidence=0.7)
    blurred = FaceResult(
        box=Box(50, 2, 30, 30), emotions=probs("fear", 0.25), emotion="fear", confidence=0.25, uncertain=True,
        doubts=("blurred", "low_confidence"),
    )  # fmt: skip
    rows = [
        {**row, "emotions": {k: row[k] for k in LABELS}} for row in ImageResult("a.jpg", [sure, blurred]).rows(LABELS)
    ]
    found = people.people_of_rows(rows)
    assert [p.uncertain for p in found] == [False, True]
    assert found[1].as_row()["uncertain"] is True and found[0].as_row()["uncertain"] is False


def test_a_track_is_doubtful_when_most_of_its_samples_are():
    rows = tracked("v.mp4", 1, ["happy"] * 5)
    for row in rows[:3]:
        row["uncertain"] = True
    assert people.track_people(rows)[0].uncertain  # 3 of 5
    rows[2]["uncertain"] = False
    assert not people.track_people(rows)[0].uncertain  # 2 of 5: its label stands
    # Older rows have no flag at all, or the text of a CSV cell.
    assert not people.track_people(tracked("old.mp4", 2, ["sad"] * 3))[0].uncertain
    text = [{**row, "uncertain": "True"} for row in tracked("csv.mp4", 3, ["sad"] * 2)]
    assert people.track_people(text)[0].uncertain


def test_a_live_track_counts_its_doubtful_samples():
    tally = people.TrackTally.start(7, 0.0, [0.1] * 6 + [0.4], uncertain=True)
    tally.add(0.5, [0.1] * 6 + [0.4])
    assert not tally.person(LABELS).uncertain  # 1 of 2 is not most
    tally.add(1.0, [0.1] * 6 + [0.4], uncertain=True)
    person = tally.person(LABELS)
    assert person.uncertain and tally.uncertain_samples == 2 and person.samples == 3


def test_people_of_stored_results_carry_the_flag():
    frame = pd.DataFrame(
        [
            {"run_id": "r1", "file": "a.jpg", "face": 0, "emotion": "sad", "confidence": 0.7, "status": "ok",
             "uncertain": True, **probs("sad")},
            {"run_id": "r1", "file": "a.jpg", "face": 1, "emotion": "happy", "confidence": 0.7, "status": "ok",
             "uncertain": None, **probs("happy")},
        ]
    )  # fmt: skip
    out = people.people_of_results(frame, LABELS)
    assert "uncertain" in out.columns and out["uncertain"].tolist() == [True, False]
