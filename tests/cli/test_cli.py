"""End to end through ``python -m src.cli`` in a subprocess, as other tools call it."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from src import config
from src.cli import main

ROOT = Path(__file__).resolve().parents[2]
# The per-face table, then what the dashboard's export adds: sentiment, the custom groups of the
# repository's inputs/emotion_groups.toml (frustrated, delighted, other), and a video face's time and track.
HEADER = (
    "file,face,x,y,w,h,emotion,confidence,angry,disgust,fear,happy,sad,surprise,neutral,status,error,uncertain,doubt,"
    "sentiment,frustrated,delighted,other,time,track_id"
)


def run_cli(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "src.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    """A real face photo, a faceless image, a text file posing as JPEG, an empty PNG,
    a nested photo and a non-image file the folder walk must skip."""

    root = tmp_path_factory.mktemp("photos")
    Image.fromarray(skdata.astronaut()).save(root / "astronaut.jpg", quality=92)
    Image.new("RGB", (320, 240), (200, 200, 200)).save(root / "blank.png")
    (root / "fake.jpg").write_text("this is a text file, not a photo\n")
    (root / "empty.png").write_bytes(b"")
    (root / "nested" / "deeper").mkdir(parents=True)
    Image.fromarray(skdata.astronaut()).resize((256, 256)).save(root / "nested" / "deeper" / "small.JPG")
    (root / "nested" / "notes.txt").write_text("skip me")
    return root


@pytest.fixture(scope="module")
def predicted(photo_dir, trained_model) -> subprocess.CompletedProcess:
    missing = str(photo_dir / "no_such_file.jpg")
    return run_cli("predict", str(photo_dir), missing, "--model", str(trained_model))


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_predict_csv_header_and_statuses(predicted, photo_dir):
    # Unreadable inputs (a missing file, a fake and an empty image) make the exit code 1:
    # a script notices them; every other file is still written.
    assert predicted.returncode == 1, predicted.stderr
    assert "6 images: 2 with faces (2 faces in all), 1 without, 3 errors, 1 skipped" in predicted.stderr
    lines = predicted.stdout.splitlines()
    assert lines[0] == HEADER
    rows = _rows(predicted.stdout)
    by_file = {}
    for row in rows:
        by_file.setdefault(row["file"], []).append(row)
    given = str(photo_dir)
    assert set(by_file) == {
        os.path.join(given, "astronaut.jpg"),
        os.path.join(given, "blank.png"),
        os.path.join(given, "fake.jpg"),
        os.path.join(given, "empty.png"),
        os.path.join(given, "nested/deeper/small.JPG"),
        str(photo_dir / "no_such_file.jpg"),
    }
    astronaut = by_file[os.path.join(given, "astronaut.jpg")]
    assert [r["status"] for r in astronaut] == ["ok"]
    face = astronaut[0]
    assert face["face"] == "0" and face["error"] == ""
    assert face["emotion"] in config.EMOTIONS
    x, y, w, h = (int(face[k]) for k in "xywh")
    assert 0 <= x and 0 <= y and x + w <= 512 and y + h <= 512 and w >= 24
    probs = [float(face[name]) for name in config.EMOTIONS]
    assert sum(probs) == pytest.approx(1.0, abs=1e-3)
    assert float(face["confidence"]) == pytest.approx(max(probs), abs=1e-4)
    # The face's doubt: a flag and the reasons behind it (src/engine/doubt.py).
    assert face["uncertain"] in ("True", "False") and (face["uncertain"] == "True") == (face["doubt"] != "")
    assert set(filter(None, face["doubt"].split("; "))) <= {"small", "blurred", "turned", "low_confidence"}
    assert by_file[os.path.join(given, "nested/deeper/small.JPG")][0]["status"] == "ok"

    blank = by_file[os.path.join(given, "blank.png")]
    assert len(blank) == 1 and blank[0]["status"] == "no_face" and blank[0]["emotion"] == ""
    for name, reason in (("fake.jpg", "not an image"), ("empty.png", "empty file")):
        (row,) = by_file[os.path.join(given, name)]
        assert row["status"] == "error" and row["error"] == reason and row["x"] == ""
    (row,) = by_file[str(photo_dir / "no_such_file.jpg")]
    assert row["status"] == "error" and row["error"] == "file not found"


def test_predict_jsonl_to_file(photo_dir, trained_model, tmp_path, capsys):
    # In-process through the same entry point: saves a TensorFlow start-up.
    out = tmp_path / "faces.jsonl"
    code = main(
        [
            "predict",
            str(photo_dir / "astronaut.jpg"),
            str(photo_dir / "fake.jpg"),
            "--format",
            "jsonl",
            "--output",
            str(out),
            "--model",
            str(trained_model),
        ]
    )
    assert code == 1  # fake.jpg could not be read
    assert capsys.readouterr().out == ""
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [list(r) for r in records] == [HEADER.split(",")] * 2
    assert records[0]["status"] == "ok" and isinstance(records[0]["confidence"], float)
    assert isinstance(records[0]["uncertain"], bool) and records[0]["uncertain"] == bool(records[0]["doubt"])
    assert records[1]["status"] == "error" and records[1]["error"] == "not an image"
    assert records[1]["emotion"] is None and records[1]["uncertain"] is None


def test_predict_fast_mode_finds_the_same_face(photo_dir, trained_model, capsys):
    photo = str(photo_dir / "astronaut.jpg")
    assert main(["predict", photo, "--model", str(trained_model)]) == 0
    (thorough,) = _rows(capsys.readouterr().out)
    assert main(["predict", photo, "--fast", "--model", str(trained_model)]) == 0
    (fast,) = _rows(capsys.readouterr().out)
    assert thorough["status"] == fast["status"] == "ok"
    box = lambda r: np.array([int(r[k]) for k in "xywh"])  # noqa: E731
    assert np.abs(box(thorough) - box(fast)).max() <= 0.15 * int(thorough["w"])


def test_predict_crops(trained_model, tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(tmp_path / f"crop{i}.png")
    assert main(["predict", "--crops", str(tmp_path), "--model", str(trained_model)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [row["file"] for row in rows] == [os.path.join(str(tmp_path), f"crop{i}.png") for i in range(3)]
    for row in rows:
        assert row["status"] == "ok"
        assert (row["x"], row["y"], row["w"], row["h"]) == ("0", "0", "48", "48")


def test_evaluate_last_line(fer_dir, model_copy, tmp_path):
    out = tmp_path / "outputs"
    proc = run_cli("evaluate", "--data", str(fer_dir), "--model", str(model_copy), "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"accuracy=\d\.\d{4} macro_f1=\d\.\d{4}", last)
    metrics = json.loads((out / "metrics.json").read_text())
    assert last == (
        f"accuracy={metrics['splits']['PrivateTest']['accuracy']:.4f} "
        f"macro_f1={metrics['splits']['PrivateTest']['macro_f1']:.4f}"
    )
    for name in ("roc.json", "dataset_stats.json", "mean_faces.png", "model_comparison.csv"):
        assert (out / name).exists(), name


def test_evaluate_views_and_score_only(fer_dir, model_copy, tmp_path):
    manifest = model_copy.with_suffix(".json")
    before = manifest.read_bytes()
    proc = run_cli(
        "evaluate", "--data", str(fer_dir), "--model", str(model_copy), "--output-dir", str(tmp_path / "a"),
        "--views", "zoom", "--score-only",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "test-time views zoom)" in proc.stdout.splitlines()[0]
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["model"]["test_time_views"] == "zoom"
    assert manifest.read_bytes() == before
    proc = run_cli("evaluate", "--data", str(fer_dir), "--model", str(model_copy), "--views", "rotate")
    assert proc.returncode == 2 and "invalid choice: 'rotate'" in proc.stderr
    proc = run_cli("evaluate", "--data", str(fer_dir), "--model", str(model_copy), "--score-only", "--version", "x")
    assert proc.returncode == 2 and "give one of them" in proc.stderr and manifest.read_bytes() == before


def test_user_errors_exit_2_with_one_line(tmp_path, trained_model):
    proc = run_cli("evaluate", "--data", str(tmp_path / "nowhere"), "--model", str(trained_model))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0] and "Traceback" not in proc.stderr

    proc = run_cli("predict", str(tmp_path), "--model", str(tmp_path / "missing.keras"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not found" in lines[0]

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    proc = run_cli("stats", "--data", str(bad))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "lacks columns" in proc.stderr


def test_train_refuses_distillation_settings_it_cannot_use(fer_dir, trained_model):
    proc = run_cli("train", "--data", str(fer_dir), "--profile", "smoke", "--distil-weight", "0.5")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "error: --distil-weight and --distil-temperature need at least one --teacher model"

    proc = run_cli(
        "train", "--data", str(fer_dir), "--profile", "smoke", "--teacher", str(trained_model), "--distil-weight", "1.5"
    )
    assert proc.returncode == 2
    assert "--distil-weight 1.5: give a share between 0 and 1" in proc.stderr and "Traceback" not in proc.stderr

    proc = run_cli("train", "--data", str(fer_dir), "--profile", "smoke", "--input-size", "50")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "error: --input-size 50: give a multiple of 8 from 32 to 128 (pixels)"


def test_stats_output_version(fer_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config, "OUTPUTS_DIR", tmp_path)
    monkeypatch.setattr(config, "OUTPUT_VERSION", "")
    (tmp_path / "v4").mkdir()
    assert main(["stats", "--data", str(fer_dir)]) == 0
    assert (tmp_path / "v4" / "dataset_stats.json").is_file()  # the newest version folder
    assert main(["stats", "--data", str(fer_dir), "--output-version", "new"]) == 0
    assert (tmp_path / "v5" / "mean_faces.png").is_file()
    with pytest.raises(SystemExit) as exit_info:
        main(["stats", "--data", str(fer_dir), "--output-version", "latest"])
    assert exit_info.value.code == 2 and "invalid output_version value: 'latest'" in capsys.readouterr().err


def test_odd_names_and_skipped_entries_in_a_batch(trained_model, tmp_path):
    """A non-UTF-8 file name (bytes b"caf\\xe9.jpg") used to end the run with a UnicodeEncodeError
    and lose the rows after it; entries a folder walk leaves out were not mentioned at all."""
    folder = tmp_path / "batch"
    (folder / ".git").mkdir(parents=True)
    blank = Image.new("RGB", (64, 48), (90, 90, 90))
    blank.save(folder / "a.png")
    blank.save(os.fsencode(folder) + b"/caf\xe9.jpg")
    blank.save(folder / "z.png")
    blank.save(folder / ".hidden.jpg")
    blank.save(folder / ".git" / "inside.jpg")
    (folder / "notes.txt").write_text("not a photo")
    explicit = os.fsdecode(os.fsencode(tmp_path) + b"/\xff\xfe.png")  # named on the command line
    blank.save(os.fsencode(explicit))

    proc = run_cli("predict", str(folder), explicit, "--model", str(trained_model))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = _rows(proc.stdout)
    assert [r["file"] for r in rows] == [
        os.path.join(str(folder), "a.png"),
        os.path.join(str(folder), "caf\\xe9.jpg"),
        os.path.join(str(folder), "z.png"),
        str(tmp_path / "\\xff\\xfe.png"),
    ]
    assert {r["status"] for r in rows} == {"no_face"}
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped ")]
    assert skipped == [
        f"skipped {folder / '.git'}: hidden folder",
        f"skipped {folder / '.hidden.jpg'}: hidden file",
        f"skipped {folder / 'notes.txt'}: not an image or video file (.txt)",
    ]
    assert "4 images: 0 with faces (0 faces in all), 4 without, 0 errors, 3 skipped" in proc.stderr


def test_predict_exit_codes_and_summary_words(tmp_path, trained_model):
    """0 when every input was read (faces or not), 1 when one could not be (its row says why),
    and the summary line in words: 1 image, 1 face, 1 error."""
    Image.fromarray(skdata.astronaut()).save(tmp_path / "one.jpg")
    ok = run_cli("predict", str(tmp_path / "one.jpg"), "--model", str(trained_model))
    assert ok.returncode == 0, ok.stderr
    assert "1 image: 1 with faces (1 face in all), 0 without, 0 errors, 0 skipped" in ok.stderr
    missing = run_cli("predict", str(tmp_path / "gone.jpg"), "--model", str(trained_model))
    assert missing.returncode == 1, missing.stderr
    assert "1 image: 0 with faces (0 faces in all), 0 without, 1 error, 0 skipped" in missing.stderr
    (row,) = _rows(missing.stdout)
    assert row["status"] == "error" and row["error"]


def test_formula_names_are_neutralised_in_csv_and_exact_in_jsonl(trained_model, tmp_path, monkeypatch, capsys):
    names = ["=cmd|' -C calc'!A0.jpg", "+1+2.png", "-2+3.png", "@SUM(A1).png", "\tTAB.png", "\rCR.png", "plain.png"]
    for name in names:
        Image.new("RGB", (40, 30), (128, 128, 128)).save(tmp_path / name, format="PNG")
    monkeypatch.chdir(tmp_path)  # relative names are written as given: the cell starts with the name
    assert main(["predict", "--model", str(trained_model), "--", *names]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [r["file"] for r in rows] == [f"'{n}".replace("\r", "\\x0d") for n in names[:-1]] + ["plain.png"]

    assert main(["predict", "--format", "jsonl", "--model", str(trained_model), "--", *names]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in records] == names


def test_keras_runtime_without_tensorflow_says_what_to_install(tmp_path):
    """FER_RUNTIME=keras in the serving install (no TensorFlow): one line naming the extra, exit 2."""
    from support import WITHOUT_TF

    Image.fromarray(skdata.astronaut()).save(tmp_path / "one.jpg")
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TF, "predict", str(tmp_path / "one.jpg")],
        cwd=ROOT,
        env={**os.environ, "FER_RUNTIME": "keras"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "FER_RUNTIME=keras needs TensorFlow and Keras: pip install -e '.[train]'" in proc.stderr


def test_runs_list_shows_people_and_samples(tmp_path, monkeypatch):
    """One face in front of the (fake) live camera for 15 s is 1 person and 15 samples
    (face-seconds), beside a photo with 3 faces: 3 people, 3 samples."""
    from live_support import fake_session, feed

    from src.analytics import persist
    from src.analytics.store import Store
    from src.engine.faces import Box
    from src.engine.results import FaceResult, ImageResult

    url = f"sqlite:///{(tmp_path / 'runs.db').as_posix()}"
    with Store(url) as store:
        face = FaceResult(box=Box(1, 2, 3, 4), emotions={"happy": 1.0}, emotion="happy", confidence=1.0)
        store.save_rows("photo", ImageResult("group.jpg", [face, face, face]).rows(("happy",)), campaign="Shop")
        session, recognizer, _ = fake_session("happy")
        recorder = persist.LiveRecorder("Desk")
        end = feed(session, recognizer, "happy", 1_773_000_000.0, 15.0)
        recorder.flush(store, session.stats, session.labels, now=end + 1, final=True)
        recorder.finish(store)
    monkeypatch.setenv("FER_DATABASE_URL", url)
    listed = run_cli("runs", "list")
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.splitlines()
    assert header.split()[:8] == ["run_id", "started", "(UTC)", "source", "status", "files", "people", "samples"]
    rows = {line.split()[3]: line.split()[4:8] for line in lines}
    assert rows == {"live": ["ok", "0", "1", "15"], "photo": ["ok", "1", "3", "3"]}
    table = _rows(run_cli("runs", "list", "--format", "csv").stdout)
    assert {(r["source"], r["people"], r["samples"]) for r in table} == {("live", "1", "15"), ("photo", "3", "3")}


def test_runs_export_streams_samples_and_people_as_csv(tmp_path, monkeypatch):
    """Every stored sample (or person) of the selection, in chunks, one header; a campaign name a
    spreadsheet would run as a formula stays text."""
    from src.analytics.store import Store
    from src.engine.faces import Box
    from src.engine.results import FaceResult, ImageResult

    url = f"sqlite:///{(tmp_path / 'runs.db').as_posix()}"
    with Store(url) as store:
        face = FaceResult(box=Box(1, 2, 3, 4), emotions={"happy": 0.9, "sad": 0.1}, emotion="happy", confidence=0.9)
        for k in range(3):
            rows = ImageResult(f"p{k}.jpg", [face, face]).rows(("happy", "sad"))
            store.save_rows("batch", rows, campaign="=HYPERLINK(1)" if k else "Shop")
    monkeypatch.setenv("FER_DATABASE_URL", url)
    out = tmp_path / "samples.csv"
    done = run_cli("runs", "export", "--output", str(out), "--chunk-rows", "2")  # three runs, three chunks
    assert done.returncode == 0, done.stderr
    assert "wrote 6 samples" in done.stderr
    samples = _rows(out.read_text(encoding="utf-8"))
    assert len(samples) == 6 and {r["emotion"] for r in samples} == {"happy"}
    assert {r["campaign"] for r in samples} == {"Shop", "'=HYPERLINK(1)"}
    people = _rows(run_cli("runs", "export", "--people", "--campaign", "Shop").stdout)
    assert len(people) == 2 and {r["file"] for r in people} == {"p0.jpg"}


def test_predict_reads_videos_with_time_and_track_and_writes_people(tmp_path, trained_model):
    """A video among the photos: one row per face per sampled frame with its time and track id,
    and the per-person file counts the drifting face once, the photo's face once."""
    from camera_support import drift_clip

    drift_clip(tmp_path / "clip.avi", seconds=4.0)
    Image.fromarray(skdata.astronaut()).save(tmp_path / "one.jpg")
    out = tmp_path / "faces.csv"
    proc = run_cli("predict", str(tmp_path), "--model", str(trained_model), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out.read_text())
    video = [r for r in rows if r["file"].endswith("clip.avi")]
    assert len(video) >= 6 and {r["track_id"] for r in video} == {"0"}
    times = [float(r["time"]) for r in video]
    assert times == sorted(times) and times[0] == 0.0
    photo = [r for r in rows if r["file"].endswith("one.jpg")]
    assert len(photo) == 1 and photo[0]["time"] == "" and photo[0]["sentiment"] in ("positive", "neutral", "negative")
    people = _rows((tmp_path / "faces.people.csv").read_text())
    assert sorted(p["kind"] for p in people) == ["photo", "track"]
    track = next(p for p in people if p["kind"] == "track")
    assert int(track["samples"]) == len(video) and float(track["dwell_s"]) >= 3.5
    assert {p["uncertain"] for p in people} <= {"True", "False"}
    assert "1 image: 1 with faces" in proc.stderr and "1 video: 1 with faces" in proc.stderr
    assert "2 people in " in proc.stderr


def test_predict_names_an_unreadable_video(tmp_path, trained_model):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    proc = run_cli("predict", str(tmp_path / "broken.mp4"), "--model", str(trained_model))
    assert proc.returncode == 1, proc.stderr
    (row,) = _rows(proc.stdout)
    assert row["status"] == "error" and row["error"] and "Traceback" not in proc.stderr
