"""The Streamlit dashboard under ``streamlit.testing.v1.AppTest``.

Every page runs with a populated fake outputs folder and with an empty one; the
Emotion Detection tabs are exercised with a real face photo, a broken upload,
a mixed batch and a small video. The bundled model is used (its emotions are
not asserted: it may be a placeholder).
"""

from __future__ import annotations

import io
import shutil
from datetime import date
from pathlib import Path

# Before anything imports TensorFlow: importing pylibsrtp (streamlit-webrtc) after it segfaults.
import streamlit_webrtc  # noqa: F401  isort: skip

import cv2
import fake_outputs
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from support import jpeg_bytes as jpeg
from support import png_bytes as png

from src import config
from src.common.sanitize import markdown_literal

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
PAGES = [
    "pages/1_project_summary.py",
    "pages/2_emotion_detection.py",
    "pages/3_data_analysis.py",
    "pages/4_model_performance.py",
]
TIMEOUT = 240  # the first model load imports TensorFlow on a busy 2-core machine

pytestmark = [
    pytest.mark.skipif(not config.MODEL_FILE.exists(), reason="no bundled model"),
    pytest.mark.usefixtures("no_webrtc_session", "navigation_mode"),
]


@pytest.fixture
def no_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DATASETS_DIR", tmp_path / "no_datasets")


def _point_outputs(folder: Path, monkeypatch) -> Path:
    monkeypatch.setattr(config, "OUTPUTS_DIR", folder)
    monkeypatch.setenv("FER_OUTPUTS_DIR", str(folder))
    monkeypatch.setattr(config, "OUTPUT_VERSION", "")
    monkeypatch.delenv("FER_OUTPUT_VERSION", raising=False)
    return folder


@pytest.fixture
def populated(tmp_path, monkeypatch, no_dataset) -> Path:
    folder = tmp_path / "outputs"
    fake_outputs.write_fake_outputs(folder / "v1")
    return _point_outputs(folder, monkeypatch)


@pytest.fixture
def empty(tmp_path, monkeypatch, no_dataset) -> Path:
    folder = tmp_path / "outputs"
    folder.mkdir()
    return _point_outputs(folder, monkeypatch)


@pytest.fixture(params=["populated", "empty"])
def outputs(request) -> Path:
    return request.getfixturevalue(request.param)


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def image_urls(at: AppTest) -> list[str]:
    """Media URLs of every st.image on the page, in order (they change when the pixels do)."""

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "imgs"):
            yield from (img.url for img in proto.imgs)
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    return list(walk(at.main))


def batch_uploader(at: AppTest):
    """The Batch tab's uploader: its key changes after every batch, which empties it."""
    return next(u for u in at.get("file_uploader") if (u.key or "").startswith("batch_upload"))


def metric(at: AppTest, label: str) -> str:
    return next(str(m.value) for m in at.metric if m.label == label)


@pytest.fixture(scope="module")
def face_jpeg() -> bytes:
    from skimage import data

    return jpeg(data.astronaut())


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs(page, outputs):
    at = open_page(page)
    assert at.title, "each page has a title"
    if page.endswith("summary.py"):
        values = [m.value for m in at.metric]
        if outputs.joinpath("v1").exists():
            assert "35,887 faces" in values and "42 ms / photo" in values
        else:
            assert values.count("—") == 4


def test_sidebar_shows_model_version_and_accuracy(populated):
    at = open_page()
    sidebar = at.sidebar
    assert "Version" in texts(sidebar.markdown)
    assert any(m.label.startswith("Accuracy on lab photos") for m in sidebar.metric)


def test_model_performance_toggle_and_split(populated):
    at = open_page(PAGES[3])
    at.toggle(key="cm_normalise").set_value(False).run()
    at.radio(key="perf_split").set_value("PublicTest").run()
    assert not at.exception
    assert "different model file" in texts(at.warning)  # the fake metrics carry another sha256


def test_data_analysis_from_dataset(tmp_path, monkeypatch, fer_dir, empty):
    """With a dataset on disk and no saved statistics, the page computes them and shows examples."""
    datasets = tmp_path / "datasets"
    shutil.copytree(fer_dir, datasets / "fer2013")
    monkeypatch.setattr(config, "DATASETS_DIR", datasets)
    at = open_page(PAGES[2])
    assert "Computed from the dataset" in texts(at.caption)
    assert at.slider(key="grid_per_class")
    at.button(key="grid_shuffle").click().run()
    assert not at.exception


def test_photo_with_face_is_classified(populated, face_jpeg):
    at = open_page(PAGES[1])
    at.file_uploader(key="photos_upload").set_value(("astronaut.jpg", face_jpeg, "image/jpeg")).run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    assert "face found" in texts(at.caption) or "faces found" in texts(at.caption)
    assert "**#1 " in texts(at.markdown)  # the first face card: its top emotion and confidence


def test_saliency_overlay_changes_the_picture(populated, face_jpeg):
    at = open_page(PAGES[1])
    at.file_uploader(key="photos_upload").set_value(("astronaut.jpg", face_jpeg, "image/jpeg")).run()
    plain = image_urls(at)
    assert plain and image_urls(at.run()) == plain  # same pixels, same media URL
    at.toggle(key="photos_saliency").set_value(True).run()
    assert not at.exception, at.exception
    overlaid = image_urls(at)
    assert len(overlaid) == len(plain) and overlaid[0] != plain[0]


def test_saliency_switch_says_in_plain_words_why_it_is_off(populated, face_jpeg, monkeypatch):
    """In the default install Grad-CAM is off and only a tooltip said why, as a pip command."""
    from src.app import cache
    from src.app.detection.photos import SALIENCY_OFF

    monkeypatch.setattr(cache, "saliency_unavailable", lambda: "Saliency maps need TensorFlow (`pip install x`).")
    at = open_page(PAGES[1])
    at.file_uploader(key="photos_upload").set_value(("astronaut.jpg", face_jpeg, "image/jpeg")).run()
    assert not at.exception, at.exception
    assert at.toggle(key="photos_saliency").disabled
    assert SALIENCY_OFF in texts(at.caption) and "pip" not in SALIENCY_OFF


def test_photos_from_a_zip_with_a_summary(populated, face_jpeg):
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("crew/astronaut.jpg", face_jpeg)
        zf.writestr("crew/notes.txt", "not a photo")
    at = open_page(PAGES[1])
    at.file_uploader(key="photos_upload").set_value(
        [("shots.zip", buf.getvalue(), "application/zip"), ("again.jpg", face_jpeg, "image/jpeg")]
    ).run()
    assert not at.exception, at.exception
    assert [e.label for e in at.expander if e.label.startswith("Skipped")] == ["Skipped 1 archive entry"]
    skipped = at.expander[0].dataframe[0].value
    assert skipped.to_dict("records") == [{"entry": "shots.zip/crew/notes.txt", "reason": "not an image file (.txt)"}]
    assert "in 2 photos" in texts(at.markdown)


def test_bad_photo_shows_an_error_not_an_exception(populated):
    at = open_page(PAGES[1])
    at.file_uploader(key="photos_upload").set_value(("x.jpg", b"this is plain text", "image/jpeg")).run()
    assert not at.exception
    assert "x.jpg" in texts(at.error) or "Could not analyse" in texts(at.error)


def test_batch_rows_failures_and_campaign_comparison(populated, face_jpeg):
    at = open_page(PAGES[1])
    files = [("astronaut.jpg", face_jpeg, "image/jpeg"), ("broken.jpg", b"not an image", "image/jpeg")]
    batch_uploader(at).set_value(files).run()
    at.button(key="batch_run").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert len(table) == 2
    assert set(table["status"]) == {"ok", "error"}
    assert "could not be read" in texts(at.warning)
    assert len(at.get("download_button")) >= 2

    at.text_input(key="batch_name").set_value("Campaign B").run()
    batch_uploader(at).set_value([("astronaut.jpg", face_jpeg, "image/jpeg")]).run()
    at.button(key="batch_run").click().run()
    assert not at.exception, at.exception
    assert at.multiselect(key="compare_batches").value == ["Campaign A", "Campaign B"]
    comparison = next(d.value for d in at.dataframe if "batch" in d.value.columns)  # not the History table
    assert comparison["batch"].tolist() == ["Campaign A", "Campaign B"]


def test_the_next_batch_is_shown_with_only_its_own_photos_and_a_full_csv(populated, face_jpeg, monkeypatch):
    """Issue 20, defects 1, 2 and 5: after batch "Spring ad A", renaming the campaign and analysing 3 other
    files kept showing A (figures, table, downloads, remove button; B's no-face warning never showed); the
    uploader still held A's photos ("Analyse 5 files"), which went into B; the CSV had no sentiment,
    campaign, location or group columns although the table shows sentiment."""
    from src.analytics import aggregates

    exported = []
    csv_bytes = aggregates.csv_bytes
    monkeypatch.setattr(aggregates, "csv_bytes", lambda df: exported.append(df) or csv_bytes(df))
    blank = jpeg(np.full((240, 320, 3), 128, np.uint8))
    at = open_page(PAGES[1])
    at.text_input(key="batch_name").set_value("Spring ad A").run()
    at.text_input(key="batch_location").set_value("Store 12").run()
    batch_uploader(at).set_value([("a1.jpg", face_jpeg, "image/jpeg"), ("a2.jpg", face_jpeg, "image/jpeg")]).run()
    at.button(key="batch_run").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="batch_show").value == "Spring ad A"
    assert batch_uploader(at).value in (None, []) and at.button(key="batch_run").label == "Analyse"  # empty again
    assert at.button(key="batch_run").disabled

    at.text_input(key="batch_name").set_value("Spring ad B").run()
    files = [("b1.jpg", face_jpeg, "image/jpeg"), ("b2.jpg", face_jpeg, "image/jpeg"), ("b3.jpg", blank, "image/jpeg")]
    batch_uploader(at).set_value(files).run()
    assert at.button(key="batch_run").label == "Analyse 3 files"  # not 5: A's photos are not in B
    at.button(key="batch_run").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="batch_show").value == "Spring ad B"
    assert metric(at, "Photos") == "3" and metric(at, "Faces") == "2"
    assert "1 file had no face" in texts(at.warning)
    assert set(at.dataframe[0].value["file"]) == {"b1.jpg", "b2.jpg", "b3.jpg"}
    assert [b.label for b in at.button if b.key == "batch_remove"] == [
        f"Remove batch “{markdown_literal('Spring ad B')}”"
    ]
    assert at.multiselect(key="compare_batches").value == ["Spring ad A", "Spring ad B"]

    csv = next(df for df in reversed(exported) if "file" in df.columns)  # the shown batch's download
    assert list(csv.columns[:3]) == ["campaign", "location", "file"]
    assert set(csv["campaign"]) == {"Spring ad B"} and set(csv["location"]) == {"Store 12"}
    assert set(csv["file"]) == {"b1.jpg", "b2.jpg", "b3.jpg"}
    shown = at.dataframe[0].value
    assert list(csv.columns[2:]) == list(shown.columns)  # what the screen shows, sentiment and groups included
    assert {"sentiment", "frustrated", "delighted"} <= set(csv.columns)


def test_model_performance_picks_a_second_model_and_shows_cross_dataset(populated, tmp_path, monkeypatch):
    """A FER+ model beside the deployed one gets its own reports and a place in the model picker."""
    import json
    import shutil

    models = tmp_path / "models"
    models.mkdir()
    for name in ("fer_cnn", "fer_plus"):
        shutil.copy(config.MODEL_FILE, models / f"{name}.keras")
        shutil.copy(config.MODEL_FILE.with_suffix(".json"), models / f"{name}.json")
    monkeypatch.setattr(config, "MODELS_DIR", models)
    monkeypatch.setattr(config, "MODEL_FILE", models / "fer_cnn.keras")
    confusion = {  # three true labels; answers: the seven emotions and a missed face
        "true": ["angry", "fear", "surprise"],
        "predicted": [*config.EMOTIONS, "(no face)"],
        "counts": [[6, 0, 2, 0, 0, 1, 0, 1], [1, 0, 4, 0, 0, 5, 0, 0], [0, 0, 1, 0, 0, 9, 0, 0]],
    }
    cross = {
        "rows": [
            {
                "dataset": "ExpW held-back photos",
                "faces": 30,
                "accuracy": 0.5,
                "faces_found": 0.97,
                "confusion": confusion,
            }
        ]
    }
    (populated / "v1" / "cross_dataset.json").write_text(json.dumps(cross))
    plus = populated / "v1" / "fer_plus"
    fake_outputs.write_fake_outputs(plus)
    metrics = json.loads((plus / "metrics.json").read_text())
    metrics["splits"]["PrivateTest"]["accuracy"] = 0.8123
    (plus / "metrics.json").write_text(json.dumps(metrics))

    at = open_page(PAGES[3])
    picker = at.selectbox(key="perf_model")
    assert picker.options[1].startswith("FER+ model")
    assert "deployed model (fer_cnn.keras)" in texts(at.caption)
    frames = [d.value for d in at.dataframe]
    cross_table = next(f for f in frames if "dataset" in f.columns)
    assert "ExpW held-back photos" in set(cross_table["dataset"]) and "FER2013 PrivateTest (48x48 crops)" in set(
        cross_table["dataset"]
    )
    # The confusion tables of every dataset, one at a time, with the open-mouth confusions in words.
    chooser = at.selectbox(key="cross_confusion_dataset")
    assert chooser.options == ["FER2013 PrivateTest (48x48 crops)", "ExpW held-back photos"]
    chooser.set_value("ExpW held-back photos").run()
    assert not at.exception, at.exception
    assert (
        "Among open-mouth expressions, fear is read as surprise 50% of the time, angry is read as fear 20% of the "
        "time, angry is read as surprise 10% of the time." in texts(at.caption)
    )

    picker.set_value(str(models / "fer_plus.keras")).run()
    assert not at.exception, at.exception
    assert "FER+ model (fer_plus.keras)" in texts(at.caption)
    assert any(m.label == "Accuracy" and m.value == "81.2%" for m in at.metric)


def test_video_file_timeline(populated, tmp_path, face_jpeg):
    from skimage import data

    path = tmp_path / "clip.avi"
    face = cv2.cvtColor(cv2.resize(data.astronaut(), (256, 256)), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 4.0, (256, 256))
    for _ in range(8):
        writer.write(face)
    writer.release()
    at = open_page(PAGES[1])
    at.file_uploader(key="video_upload").set_value(("clip.avi", path.read_bytes(), "video/x-msvideo")).run()
    at.button(key="video_run").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    assert any(m.label == "Frames analysed" and m.value == "4" for m in at.metric)
    # One face in 4 sampled frames: one person (a track), four samples.
    labels = [e.label for e in at.expander]
    assert "People (1 person followed across frames)" in labels, labels
    assert any(label.startswith("Per-sample table (4 samples") for label in labels), labels
    people = next(e for e in at.expander if e.label.startswith("People (")).dataframe[0].value
    assert people["samples"].tolist() == [4] and people["track_id"].tolist() == [0]
    downloads = {b.proto.label: b.proto for b in at.get("download_button")}
    assert {"Download people CSV", "Download per-sample CSV"} <= set(downloads)

    at.file_uploader(key="video_upload").set_value(("bad.mp4", b"no video here", "video/mp4")).run()
    at.button(key="video_run").click().run()
    assert not at.exception
    assert markdown_literal("bad.mp4") in texts(at.error)  # the name as literal text


def negative_live_session():
    """A real ``LiveSession`` whose statistics hold the last 20 s of one mostly-angry face.

    Its results are recorded straight into ``session.stats``, as the frame pipeline
    would, so no camera (and no WebRTC connection) is needed.
    """
    import time

    from src.engine.tracking import Track
    from src.streams.live import LiveSession

    now = time.time()
    session = LiveSession(clock=lambda: now, alert_seconds=10.0, alert_threshold=0.5)  # however slow the page
    labels = session.labels
    angry = np.array([0.7 if e == "angry" else 0.05 for e in labels])
    for i in range(100):
        t = now - 20 + i / 5
        session.stats.record(t, [Track(0, (10, 10, 50, 50), angry, t)], labels)
    return session


@pytest.fixture
def camera(monkeypatch):
    """The Live tab's camera component as a switch: ``camera.playing = True`` is START, False is STOP."""
    from types import SimpleNamespace

    from src.app.detection import live

    state = SimpleNamespace(playing=False)
    monkeypatch.setattr(live, "_live_streamer", lambda session: SimpleNamespace(state=state))
    return state


def test_live_tab_shows_alert_and_timeline(populated, results_db, camera):
    at = open_page(PAGES[1])
    at.session_state["live_session"] = negative_live_session()
    camera.playing = True
    at.run()
    assert not at.exception, at.exception
    assert "Negative-emotion alert" in texts(at.error)
    assert any(m.label == "Current mood" and m.value == "Angry" for m in at.metric)
    frames = next(m for m in at.metric if m.label == "Frames analysed")
    assert frames.proto.delta.endswith(" a second")  # not "Processed fps"


def test_live_panel_says_the_camera_stopped_after_stop(populated, results_db, camera):
    """Issue 20, defect 3: after STOP the panel kept showing "Faces in view 1 · Happy 97% · 12.0 fps"."""
    from src.analytics.store import open_store

    at = open_page(PAGES[1])
    assert "The camera is off" in texts(at.info)
    at.session_state["live_session"] = negative_live_session()
    camera.playing = True
    at.run()
    assert metric(at, "Faces in view") == "1" and metric(at, "Current mood") == "Angry"
    camera.playing = False
    at.run()
    assert not at.exception, at.exception
    live_labels = {"Faces in view", "Current mood", "Frames analysed", "Running for"}
    assert not live_labels & {m.label for m in at.metric}
    assert "Camera stopped" in texts(at.info) and "Negative-emotion alert" not in texts(at.error)
    assert "**Last session**" in texts(at.markdown) and "**angry**" in texts(at.caption)
    runs = open_store(results_db).runs()
    assert runs["source"].tolist() == ["live"] and runs["status"].tolist() == ["ok"]
    assert "seconds of emotion counts and 1 person saved" in texts(at.caption)


def test_live_tab_counts_and_saves_people(populated, results_db, camera):
    """A face in front of the camera for 20 s is one person seen and saved, not 20 (issue 16)."""
    import time

    from src.analytics.store import open_store
    from src.engine.tracking import Track
    from src.streams.live import LiveSession

    now = time.time()
    session = LiveSession(clock=lambda: now)
    at = open_page(PAGES[1])
    at.session_state["live_session"] = session
    camera.playing = True
    at.run()  # START, nobody in view yet
    assert metric(at, "People seen") == "0"
    happy = np.array([0.8 if e == "happy" else 0.2 / 6 for e in session.labels])
    for i in range(100):  # then 20 s of one happy face, 5 detections a second
        t = now - 20 + i / 5
        session.stats.record(t, [Track(0, (10, 10, 50, 50), happy, t)], session.labels)
    at.run()
    assert metric(at, "Faces in view") == "1" and metric(at, "People seen") == "1"
    camera.playing = False
    at.run()
    assert not at.exception, at.exception
    assert "1 person seen" in texts(at.markdown) and "of face-seconds" in texts(at.caption)
    assert "seconds of emotion counts and 1 person saved" in texts(at.caption)
    store = open_store(results_db)
    run = store.runs().iloc[0]
    assert (run["source"], run["people"]) == ("live", 1) and run["samples"] > 1
    people = store.people(run_id=run["run_id"])
    assert people["kind"].tolist() == ["track"] and people["samples"].tolist() == [100]


def test_a_live_run_that_saw_no_face_is_not_saved(populated, results_db, camera):
    """Issue 20, defect 3: 13 seconds of an empty room were saved as a campaign's live run."""
    import time

    from src.analytics.store import open_store
    from src.streams.live import LiveSession

    now = time.time()
    session = LiveSession(clock=lambda: now)
    for i in range(13 * 5):  # 13 s at 5 analysed frames a second, nobody in view
        session.stats.record(now - 13 + i / 5, [], session.labels)
    at = open_page(PAGES[1])
    at.text_input(key="live_campaign").set_value("Spring ad A").run()
    at.session_state["live_session"] = session
    camera.playing = True
    at.run()
    assert "Saving starts once a face is seen" in texts(at.caption)
    camera.playing = False
    at.run()
    assert not at.exception, at.exception
    assert open_store(results_db).runs().empty
    assert "Nothing to save: no face was seen." in texts(at.info)
    assert "No face was seen" in texts(at.caption)


# --- bad-input corpus (issue 7) -------------------------------------------------------------

TRACKER = "![t](http://tracker.invalid/pixel.png).jpg"


def markdown_shown(at: AppTest) -> list[str]:
    """Every string the page hands to Streamlit's Markdown renderer (bodies and labels)."""
    out = [
        str(e.value) for kind in ("markdown", "caption", "error", "warning", "info", "success") for e in at.get(kind)
    ]
    out += [e.proto.body for e in at.get("toast")]
    out += [b.label for b in at.button] + [e.label for e in at.expander]
    return out


def test_user_supplied_names_are_shown_as_plain_text(populated, face_jpeg):
    """A file named like a Markdown image made the browser fetch its URL; names must show literally."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[x](http://tracker.invalid/).jpg", b"not an image")
        zf.writestr("../$x^2$ :material/home:.jpg", face_jpeg)
    at = open_page(PAGES[1])
    at.file_uploader(key="photos_upload").set_value(
        [(TRACKER, face_jpeg, "image/jpeg"), ("**bold**.zip", buf.getvalue(), "application/zip")]
    ).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.text] == [TRACKER, "**bold**.zip/[x](http://tracker.invalid/).jpg"]
    skipped = at.expander[0].dataframe[0].value
    assert skipped["entry"].tolist() == ["**bold**.zip/../$x^2$ :material/home:.jpg"]
    assert skipped["reason"].tolist() == ["unsafe path (.. or absolute), not unpacked"]
    for shown in markdown_shown(at):
        assert "](http" not in shown and "$x^2$" not in shown and ":material/home" not in shown, shown

    batch_name = "![b](http://tracker.invalid/b.png)"
    at.text_input(key="batch_name").set_value(batch_name).run()
    for _ in range(2):  # the second run adds to the batch: its toast names the batch
        batch_uploader(at).set_value([(TRACKER, face_jpeg, "image/jpeg")]).run()
        at.button(key="batch_run").click().run()
    assert not at.exception, at.exception
    batch_table = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert batch_table["file"].tolist()[0] == TRACKER  # table cells are plain text
    shown = markdown_shown(at)
    assert any("Remove batch" in s for s in shown) and any("Added 1 files" in s for s in shown)
    for text in shown:
        assert "](http" not in text, text


def test_one_decode_per_uploaded_photo(populated, monkeypatch):
    """The Photos tab decoded each upload twice (analysis, then display); once is enough."""
    from PIL import ImageFile
    from skimage import data

    decodes = []
    load = ImageFile.ImageFile.load

    def counting_load(self):
        if self.tile:  # pixels still to decode (an already loaded image has none)
            decodes.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    photo = data.astronaut()[:500, :510].copy()  # a size no other picture on the page has
    photo[:4, :4] = np.random.default_rng().integers(0, 256, (4, 4, 3))  # bytes no earlier test cached
    at = open_page(PAGES[1])
    decodes.clear()
    at.file_uploader(key="photos_upload").set_value(("fresh.png", png(photo), "image/png")).run()
    assert not at.exception, at.exception
    assert "face found" in texts(at.caption) or "faces found" in texts(at.caption)
    # (Streamlit re-reads the small face thumbnails it encodes itself; those are not uploads.)
    assert decodes.count((510, 500)) == 1, decodes


def test_upload_limit_follows_fer_max_upload_mb(populated, monkeypatch):
    """FER_MAX_UPLOAD_MB sets the uploaders' limit and the server's (Streamlit said 200 MB regardless)."""
    from streamlit import config as st_config

    before = st_config.get_option("server.maxUploadSize")
    monkeypatch.setattr(config, "MAX_UPLOAD_MB", 1)
    try:
        at = open_page(PAGES[1])
        assert st_config.get_option("server.maxUploadSize") == 1  # what the upload endpoint enforces
        assert [u.proto.max_upload_size_mb for u in at.get("file_uploader")] == [1, 1, 1]
        # A client that skips the browser's check is still held to the limit.
        at.file_uploader(key="photos_upload").set_value(("big.jpg", b"x" * (3 << 19), "image/jpeg")).run()
        assert not at.exception, at.exception
        assert markdown_literal("file is 1.5 MB (limit 1 MB)") in texts(at.error)
    finally:
        st_config.set_option("server.maxUploadSize", before)


# --- results store: save switches, History & trends, summary KPIs ---------------------------


@pytest.fixture
def results_db(tmp_path, monkeypatch) -> str:
    """A fresh SQLite results store for this test (never the repository's)."""
    url = f"sqlite:///{(tmp_path / 'results.db').as_posix()}"
    monkeypatch.setattr(config, "DATABASE_URL", url)
    monkeypatch.setenv("FER_DATABASE_URL", url)
    return url


def save_faces(url: str, campaign: str, counts: dict[str, int], when: str, **fields) -> str:
    """One stored run of made-up faces (``counts`` per emotion) at ``when`` (UTC)."""
    from src.analytics.store import open_store

    rows = []
    for emotion, n in counts.items():
        for i in range(n):
            probs = dict.fromkeys(config.EMOTIONS, 0.05)
            probs[emotion] = 0.7
            rows.append({"file": f"{emotion}{i}.jpg", "face": 0, "emotion": emotion, "confidence": 0.7, **probs})
    return open_store(url).save_rows(fields.pop("source", "batch"), rows, campaign=campaign, created_at=when, **fields)


def person_tallies(url: str):
    """The store's person tallies as History counts them (finished runs and runs being written)."""
    from src.analytics.store import open_store

    return open_store(url).tallies("person", include_running=True)


def pearson(*rows) -> float:
    """Pearson's chi-square of a campaigns x labels table of counts (scipy, not our code)."""
    from scipy.stats import chi2_contingency

    return float(chi2_contingency(np.array(rows, float), correction=False).statistic)


def chart_specs(at: AppTest) -> list[str]:
    return [c.proto.spec for c in at.get("plotly_chart")]


def details(at: AppTest, containing: str):
    """The "Details for data scientists" expander whose text holds ``containing``."""
    found = [e for e in at.expander if e.label == "Details for data scientists" and containing in texts(e.markdown)]
    assert found, f"no details expander mentions {containing!r}"
    return found[0]


def test_history_tab_on_an_empty_store_says_how_to_fill_it(populated, results_db):
    at = open_page(PAGES[1])
    assert "Nothing saved yet" in texts(at.info)
    assert at.text_area(key="groups_editor")  # the group editor works without saved results
    # Issue #20: an empty History offers demo data, clearly marked as such once loaded.
    at.button(key="history_demo_load").click().run(timeout=120)
    assert "Nothing saved yet" not in texts(at.info)
    assert int(metric(at, "People").replace(",", "")) > 0


def test_history_points_large_exports_to_the_streamed_ones(populated, results_db, monkeypatch):
    """Past FER_DASHBOARD_EXPORT_ROWS the downloads say where an export streams; below it, nothing."""
    save_faces(results_db, "Ad A", {"happy": 4, "sad": 2}, "2026-03-02 10:00")
    at = open_page(PAGES[1])
    assert not [c for c in at.caption if "runs export" in c.value]
    monkeypatch.setattr(config, "DASHBOARD_EXPORT_ROWS", 5)
    at = open_page(PAGES[1])
    note = [c.value for c in at.caption if "runs export" in c.value]
    assert len(note) == 1 and note[0].startswith("6 rows:") and "/v1/results?format=csv" in note[0]


def test_history_tab_trends_comparison_filters_and_downloads(populated, results_db):
    save_faces(results_db, "Ad A", {"happy": 40, "neutral": 30, "sad": 10}, "2026-03-02 10:00", location="Paris")
    save_faces(results_db, "Ad B", {"happy": 15, "neutral": 35, "sad": 30}, "2026-03-04 10:00", location="Lyon")
    save_faces(results_db, "Ad B", {"happy": 5}, "2026-03-10 10:00", source="video")
    at = open_page(PAGES[1])
    assert metric(at, "People") == "165" and metric(at, "Samples") == "165" and metric(at, "Campaigns") == "2"
    charts = chart_specs(at)
    assert len(charts) == 4  # shares of people over time, corrected emotions and sentiment, campaign comparison
    assert "Share of people per day" in charts[0] and "share of people" in charts[0]
    assert at.selectbox(key="history_grouping").value == "sentiment"  # the default
    # Photo campaigns are compared with each other: Ad B's video faces stay out.
    assert at.segmented_control(key="history_compare_kind").value == "photo"
    chosen = at.multiselect(key="history_compare_photo").value
    assert sorted(chosen) == ["Ad A", "Ad B"]
    # Ad A against Ad B's photos: positive (happy), neutral, negative (sad) people.
    expected = pearson([40, 30, 10], [15, 35, 30])
    verdict = texts(at.success)
    assert "really differ" in verdict and "chi-square" not in verdict and "Rao-Scott" not in verdict
    checked = details(at, "Verdict as computed")  # the people-based test's figures
    assert markdown_literal(f"Pearson chi-square = {expected:.2f} on 2 degrees of freedom") in texts(checked.markdown)
    labels = {b.proto.label for b in at.get("download_button")}
    assert labels >= {"Samples (CSV)", "Samples (Parquet)", "People (CSV)"}
    table = next(d.value for d in at.dataframe if "at" in d.value.columns)
    assert len(table) == 165 and set(table["campaign"]) == {"Ad A", "Ad B"}

    at.multiselect(key="history_locations").set_value(["Lyon"]).run()
    assert not at.exception, at.exception
    assert metric(at, "People") == "80" and "two or more campaigns" in texts(at.info)
    at.multiselect(key="history_locations").set_value([]).run()
    at.date_input(key="history_dates").set_value((date(2026, 3, 4), date(2026, 3, 10))).run()
    assert metric(at, "People") == "85"
    at.date_input(key="history_dates").set_value(()).run()
    at.selectbox(key="history_grouping").set_value("emotion").run()
    assert not at.exception, at.exception
    # Emotions: only happy, neutral and sad have people, so the test has the same three columns.
    shown = texts(details(at, "Verdict as computed").markdown)
    assert markdown_literal(f"Pearson chi-square = {expected:.2f} on 2 degrees of freedom") in shown
    assert "really differ" in texts(at.success) or "No clear difference" in texts(at.info)
    at.segmented_control(key="history_bucket").set_value("week").run()
    assert not at.exception, at.exception


def test_campaigns_of_one_kind_are_all_compared_in_plain_words(populated, results_db):
    """Issue 20: the default comparison paired the busiest campaign, a video session, with one photo
    campaign and left the third campaign out; its verdict spoke of chi-square without saying what it is."""
    save_faces(results_db, "Spring ad A", {"happy": 40, "neutral": 20, "sad": 10}, "2026-03-02 10:00")
    save_faces(results_db, "Spring ad B", {"happy": 10, "neutral": 20, "sad": 40}, "2026-03-03 10:00")
    save_faces(results_db, "Spring ad C", {"happy": 25, "neutral": 25, "sad": 15}, "2026-03-04 10:00", source="photo")
    save_faces(results_db, "UX session", {"neutral": 300, "happy": 50}, "2026-03-05 10:00", source="video")
    at = open_page(PAGES[1])
    assert not at.exception, at.exception
    kind = at.segmented_control(key="history_compare_kind")
    assert kind.value == "photo" and set(kind.options) >= {"Photos & batches (3)", "Video files (1)"}
    assert sorted(at.multiselect(key="history_compare_photo").value) == ["Spring ad A", "Spring ad B", "Spring ad C"]
    verdict = texts(at.success)
    assert "really differ" in verdict and "“Spring ad C”" in verdict
    for jargon in ("chi-square", "Rao-Scott", "p =", "p <", "degrees of freedom"):
        assert jargon not in verdict
    shown = texts(details(at, "Verdict as computed").markdown)
    assert "chi-square" in shown and "Wilson" in shown

    at.multiselect(key="history_compare_photo").set_value(["Spring ad A", "Spring ad B"]).run()
    save_faces(results_db, "Spring ad D", {"happy": 30}, "2026-03-06 10:00")
    at.run()  # a campaign saved since joins the comparison; the one left out by hand stays out
    assert sorted(at.multiselect(key="history_compare_photo").value) == ["Spring ad A", "Spring ad B", "Spring ad D"]

    at.segmented_control(key="history_compare_kind").set_value("all").run()
    assert not at.exception, at.exception
    assert "UX session" in at.multiselect(key="history_compare_all").value


def test_history_tab_deletes_a_run_and_a_campaign_after_confirming(populated, results_db):
    from src.analytics.store import open_store

    save_faces(results_db, "Keep", {"happy": 3}, "2026-03-02 10:00")
    doomed = save_faces(results_db, "Keep", {"sad": 2}, "2026-03-03 10:00")
    save_faces(results_db, "Drop", {"neutral": 4}, "2026-03-04 10:00")
    store = open_store(results_db)
    at = open_page(PAGES[1])
    at.selectbox(key="history_run").set_value(doomed).run()
    at.button(key="history_delete_run").click().run()
    assert "This cannot be undone" in texts(at.warning)
    at.button(key="history_delete_no").click().run()  # cancel: nothing deleted
    assert len(store.runs()) == 3 and "This cannot be undone" not in texts(at.warning)
    at.selectbox(key="history_run").set_value(doomed).run()
    at.button(key="history_delete_run").click().run()
    at.button(key="history_delete_yes").click().run()
    assert not at.exception, at.exception
    assert doomed not in set(store.runs()["run_id"]) and metric(at, "People") == "7"

    at.selectbox(key="history_campaign_delete").set_value("Drop").run()
    at.button(key="history_delete_campaign").click().run()
    assert markdown_literal("campaign “Drop” and all its runs") in texts(at.warning)
    at.button(key="history_delete_yes").click().run()
    assert store.campaigns() == ["Keep"] and metric(at, "People") == "3"


def test_history_pages_the_samples_and_can_leave_out_doubtful_faces(populated, results_db):
    """Issue 19: the table reads one page of rows at a time, newest first; every count can leave out
    the faces the engine found doubtful, while the table keeps them."""
    from src.analytics.store import open_store

    save_faces(results_db, "Old", {"happy": 520}, "2026-03-02 10:00")
    probs = dict.fromkeys(config.EMOTIONS, 0.1)
    rows = [
        {"file": f"n{i}.jpg", "face": 0, "emotion": "sad", "confidence": 0.4, **probs, "uncertain": i < 4}
        for i in range(10)
    ]
    open_store(results_db).save_rows("batch", rows, campaign="New", created_at="2026-03-03 10:00")
    at = open_page(PAGES[1])
    assert not at.exception, at.exception
    assert metric(at, "People") == "530"
    table = next(d.value for d in at.dataframe if "at" in d.value.columns)
    assert len(table) == 200 and table["campaign"].head(10).eq("New").all()  # newest first
    assert "530 rows, newest first; page 1 of 3 (200 a page)" in texts(at.caption)
    at.number_input(key="history_page").set_value(3).run()
    table = next(d.value for d in at.dataframe if "at" in d.value.columns)
    assert len(table) == 130 and table["campaign"].eq("Old").all()

    at.toggle(key="history_leave_out_doubtful").set_value(True).run()
    assert not at.exception, at.exception
    assert metric(at, "People") == "526" and metric(at, "Samples") == "526"
    positive = next(m for m in at.metric if m.label == "Positive people")
    assert positive.value == f"{520 / 526:.0%}"


def test_batch_and_video_save_by_default_photos_only_when_switched_on(populated, results_db, face_jpeg, tmp_path):
    from src.analytics.store import open_store

    store = open_store(results_db)
    at = open_page(PAGES[1])
    assert at.toggle(key="photos_save").value is False
    assert at.toggle(key="batch_save").value and at.toggle(key="video_save").value and at.toggle(key="live_save").value
    at.file_uploader(key="photos_upload").set_value(("astronaut.jpg", face_jpeg, "image/jpeg")).run()
    assert store.runs().empty  # Photos: off by default
    at.text_input(key="photos_campaign").set_value("Window display").run()
    at.toggle(key="photos_save").set_value(True).run()
    assert not at.exception, at.exception
    at.run()  # a rerun must not save the same photo again
    runs = store.runs()
    assert runs["source"].tolist() == ["photo"] and runs["campaign"].tolist() == ["Window display"]
    assert "Saved" in texts(at.caption)

    at.text_input(key="batch_location").set_value("Store 12").run()
    batch_uploader(at).set_value(
        [("astronaut.jpg", face_jpeg, "image/jpeg"), ("broken.jpg", b"not an image", "image/jpeg")]
    ).run()
    at.button(key="batch_run").click().run()
    assert not at.exception, at.exception
    batch = store.runs(source="batch").iloc[0]
    assert (batch["campaign"], batch["location"], batch["files"]) == ("Campaign A", "Store 12", 2)
    assert set(store.results(run_id=batch["run_id"])["status"]) == {"ok", "error"}

    from skimage import data

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 4.0, (256, 256))
    for _ in range(4):
        writer.write(cv2.cvtColor(cv2.resize(data.astronaut(), (256, 256)), cv2.COLOR_RGB2BGR))
    writer.release()
    at.text_input(key="video_campaign").set_value("UX session 3").run()
    at.file_uploader(key="video_upload").set_value(("clip.avi", path.read_bytes(), "video/x-msvideo")).run()
    at.button(key="video_run").click().run()
    assert not at.exception, at.exception
    clip = store.results(source="video")
    assert set(clip["campaign"]) == {"UX session 3"} and clip["track_id"].notna().all()
    assert clip["time"].tolist() == sorted(clip["time"]) and clip["time"].max() > 0


def test_a_store_failure_is_shown_and_the_results_stay(populated, face_jpeg, monkeypatch):
    monkeypatch.setattr(config, "DATABASE_URL", "nosuchdb://nowhere/results")
    at = open_page(PAGES[1])
    batch_uploader(at).set_value([("astronaut.jpg", face_jpeg, "image/jpeg")]).run()
    at.button(key="batch_run").click().run()
    assert not at.exception, at.exception
    assert "Not saved to the results store" in texts(at.error) and "unsupported database" in texts(at.error)
    assert len(at.dataframe[0].value) >= 1  # the batch table is still there
    assert "The results store could not be opened" in texts(at.error)  # History & trends says so too


def test_summary_kpis_come_from_the_store(populated, results_db):
    from datetime import UTC, datetime, timedelta

    at = open_page()
    assert "No results saved yet" in texts(at.caption)
    now = datetime.now(UTC)
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=1, second=0, microsecond=0)
    save_faces(results_db, "Busy", {"happy": 6, "sad": 2}, monday.isoformat())
    save_faces(results_db, "Busy", {"happy": 1, "sad": 3}, (monday - timedelta(days=3)).isoformat())
    save_faces(results_db, "Quiet", {"neutral": 2}, (monday - timedelta(days=30)).isoformat())
    at = open_page()
    assert not at.exception, at.exception
    assert metric(at, "People seen") == "14"
    positive = next(m for m in at.metric if m.label == "Positive people this week")
    assert positive.value == "75%" and positive.proto.delta == "+50 pts vs last week"
    busiest = next(m for m in at.metric if m.label == "Busiest campaign")
    assert busiest.value == markdown_literal("Busy") and busiest.proto.delta == "12 people"
    # This week's positive share, corrected, with its range (8 photos of this week).
    assert "Positive this week, corrected for the mix-ups" in texts(at.caption)


@pytest.fixture
def groups_file(tmp_path, monkeypatch):
    """The groups file in a temporary copy; the process-wide groups are read again afterwards."""
    from src.analytics import groups

    path = tmp_path / "emotion_groups.toml"
    shutil.copy(config.GROUPS_FILE, path)
    monkeypatch.setattr(config, "GROUPS_FILE", path)
    groups.reload()
    yield path
    monkeypatch.undo()
    groups.reload()


def test_group_editor_checks_saves_and_feeds_the_selector(populated, results_db, groups_file):
    save_faces(results_db, "Ad A", {"happy": 4, "sad": 4}, "2026-03-02 10:00")
    at = open_page(PAGES[1])
    editor = at.text_area(key="groups_editor")
    assert "frustrated = angry + disgust + sad" in editor.value
    editor.set_value(editor.value + "\n[moods]\ngrumpy = angri + sad\n").run()
    at.button(key="groups_check").click().run()
    problem = 'unknown emotion "angri" in group "grumpy"; did you mean "angry"?'
    assert markdown_literal(problem) in texts(at.error)
    assert "grumpy" not in groups_file.read_text()

    at.text_area(key="groups_editor").set_value(editor.value.replace("angri", "angry")).run()
    at.button(key="groups_save").click().run()
    assert not at.exception, at.exception
    assert '"grumpy"' in groups_file.read_text() and "Saved to" in texts(at.success)
    options = at.selectbox(key="history_grouping").options
    assert any("moods" in o and "grumpy" in o for o in options)


def test_group_form_adds_and_removes_a_group_without_the_line_syntax(populated, results_db, groups_file):
    """The editor led with its line syntax; a plain form and an example come first now."""
    save_faces(results_db, "Ad A", {"happy": 4, "sad": 4}, "2026-03-02 10:00")
    at = open_page(PAGES[1])
    assert "*frustrated* = angry, disgust or sad" in texts(at.markdown)  # the example, in words
    at.selectbox(key="groups_form_grouping").set_value("New grouping…").run()
    at.text_input(key="groups_form_new").set_value("moods").run()
    at.text_input(key="groups_form_name").set_value("grumpy").run()
    at.button(key="groups_form_save").click().run()  # no emotions yet: refused, with the reason
    assert "has no emotions" in texts(at.error) and "grumpy" not in groups_file.read_text()
    at.multiselect(key="groups_form_emotions").set_value(["angry", "sad"]).run()
    at.slider(key="groups_form_confidence").set_value(50).run()
    at.button(key="groups_form_save").click().run()
    assert not at.exception, at.exception
    assert '"grumpy"' in groups_file.read_text() and "Saved to" in texts(at.success)
    assert "grumpy = angry + sad (confidence >= 0.5)" in at.text_area(key="groups_editor").value
    assert any("moods" in o and "grumpy" in o for o in at.selectbox(key="history_grouping").options)
    assert at.text_input(key="groups_form_name").value == ""  # blank for the next group

    remove = at.selectbox(key="groups_form_remove")
    remove.select_index(next(i for i, o in enumerate(remove.options) if o.startswith("grumpy"))).run()
    at.button(key="groups_form_remove_button").click().run()
    assert not at.exception, at.exception
    assert "grumpy" not in groups_file.read_text() and "moods" not in groups_file.read_text()


def test_live_seconds_are_saved_and_the_run_closed_when_the_camera_stops(populated, results_db):
    from src.analytics import persist
    from src.analytics.store import open_store

    store = open_store(results_db)
    session = negative_live_session()  # 20 s of one angry face, ending now
    recorder = persist.LiveRecorder("Front desk")
    now = session.clock()
    recorded = len(session.stats.seconds(now))  # 20 or 21 whole seconds
    assert recorder.flush(store, session.stats, session.labels, now - 10) >= 10  # saved while it streamed
    at = open_page(PAGES[1])
    at.session_state["live_session"] = session
    at.session_state["live_recorder"] = recorder
    at.run()  # the camera is not playing: the rest is written and the run closed
    assert not at.exception, at.exception
    run = store.runs().iloc[0]
    assert (run["source"], run["campaign"], run["status"]) == ("live", "Front desk", "ok")
    seconds = store.live_seconds(run_id=run["run_id"])
    assert len(seconds) == recorded and seconds["faces"].eq(1).all() and seconds["angry"].eq(1).all()
    # The face followed for 20 s is one person, saved when the camera stopped: 100 detections, 20 face-seconds.
    people = store.people(run_id=run["run_id"])
    assert len(people) == 1 and people["samples"].tolist() == [100] and people["emotion"].tolist() == ["angry"]
    assert (run["people"], run["samples"]) == (1, recorded)


# --- people against samples, corrected shares (issues 16 and 17) ----------------------------


@pytest.fixture
def demo_store(results_db) -> str:
    """The results store filled with the seeded demo runs (src/analytics/demo.py)."""
    from src.analytics.demo import fill_demo_store
    from src.analytics.store import open_store

    fill_demo_store(open_store(results_db), seed=7, weeks=6)
    return results_db


def test_summary_counts_people_and_samples_on_the_demo_store(populated, demo_store):
    from datetime import UTC, datetime

    from src.analytics import trends
    from src.analytics.store import open_store

    runs = open_store(demo_store).runs()
    people, samples = int(runs["people"].sum()), int(runs["samples"].sum())
    assert people < samples  # videos and live sessions leave many samples per person
    at = open_page()
    assert not at.exception, at.exception
    seen = next(m for m in at.metric if m.label == "People seen")
    assert seen.value == f"{people:,}" and f"{samples:,} samples (face rows and live face-seconds)" in seen.help
    busiest = next(m for m in at.metric if m.label == "Busiest campaign")
    by_campaign = runs.groupby("campaign")["people"].sum()
    assert busiest.value == markdown_literal(by_campaign.idxmax())
    assert busiest.proto.delta == f"{by_campaign.max():,} people"
    assert busiest.help == "The campaign with the most people seen, all time."
    this_week = person_tallies(demo_store)["hour"] >= trends.iso_week_start(datetime.now(UTC))
    if this_week.any():  # the demo's last week may have ended before this ISO week began
        caption = texts(at.caption)
        assert "Positive this week, corrected for the mix-ups" in caption and "19 times in 20" in caption


def test_history_counts_people_and_shows_corrected_shares_and_a_people_based_verdict(populated, demo_store):
    from src.analytics import trends
    from src.analytics.store import open_store
    from src.app import shares
    from src.training.error_model import load_error_model

    at = open_page(PAGES[1])
    assert not at.exception, at.exception
    # The demo's Loyalty week live session: 16 people seen in 442 face-seconds (whatever the time of day).
    live = open_store(demo_store).runs(campaign="Loyalty week", source="live").iloc[0]
    assert live["people"] == 16 and live["samples"] == 442
    at.multiselect(key="history_campaigns").set_value(["Loyalty week"]).run()
    at.multiselect(key="history_sources").set_value(["live"]).run()
    assert metric(at, "People") == "16" and metric(at, "Samples") == "442"
    runs = at.selectbox(key="history_run").options  # the runs to delete, each with its people and samples
    live_run = next(o for o in runs if "Live camera · Loyalty week" in o)
    assert live_run.endswith(" · 16 people · 442 samples"), live_run
    at.multiselect(key="history_campaigns").set_value([]).run()
    at.multiselect(key="history_sources").set_value([]).run()
    assert not at.exception, at.exception

    # Corrected shares beside the shares as read, with their ranges, in one plain sentence.
    assert shares.CORRECTION_SENTENCE in texts(at.caption)
    charts = chart_specs(at)
    corrected = [c for c in charts if "corrected (95% range)" in c]
    assert len(corrected) == 2 and all('"as read"' in c and "error_y" in c for c in corrected)
    provenance = texts(details(at, "Error model").markdown)
    assert "held-back ExpW photos" in provenance and "fer_cnn.keras" in provenance
    tables = [d.value for d in details(at, "Error model").dataframe]
    assert {"label", "as read", "corrected", "from", "to"} <= set(tables[0].columns)
    assert set(tables[1]["label"]) == {"positive", "neutral", "negative"}
    assert (tables[0]["from"] <= tables[0]["corrected"]).all() and (tables[0]["corrected"] <= tables[0]["to"]).all()

    # The photo campaigns, each pair tested with people (and photos) as the unit, in plain words.
    at.segmented_control(key="history_compare_kind").set_value("photo").run()
    chosen = at.multiselect(key="history_compare_photo").value
    assert len(chosen) == 3
    tallies, grouping = person_tallies(demo_store), trends.sentiment_grouping()
    counts = trends.campaign_label_counts(tallies[tallies["source"] == "batch"], chosen)
    model = load_error_model()
    expected = [
        shares.plain_test_verdict(
            shares.compare_pair(counts[a], counts[b], (a, b), shares.compared_buckets(grouping), model), grouping
        )
        for a, b in shares.pairs(chosen)
    ]
    shown = texts(at.success) + texts(at.info)
    for sentence in expected:
        assert markdown_literal(sentence) in shown
    assert markdown_literal("Pearson chi-square =") in texts(details(at, "Verdict as computed").markdown)


def test_a_grouping_with_a_confidence_threshold_says_what_cannot_be_corrected(populated, demo_store):
    at = open_page(PAGES[1])
    custom = next(o for o in at.selectbox(key="history_grouping").options if o.startswith("Groups: custom"))
    at.selectbox(key="history_grouping").set_value(custom).run()
    assert not at.exception, at.exception
    caption = texts(at.caption)
    assert markdown_literal("“delighted” counts only faces at least 70% sure") in caption
    assert "cannot be corrected" in caption
    groups_chart = next(c for c in chart_specs(at) if "Groups: custom" in c)
    assert "frustrated" in groups_chart and "delighted" not in groups_chart


def test_without_an_error_model_shares_say_they_are_not_corrected(populated, demo_store, tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    for path in config.MODEL_FILE.parent.glob(f"{config.MODEL_FILE.stem}.*"):
        if not path.name.endswith(".error_model.json"):  # the model and its twins, without its error model
            shutil.copy(path, models)
    monkeypatch.setattr(config, "MODELS_DIR", models)
    monkeypatch.setattr(config, "MODEL_FILE", models / config.MODEL_FILE.name)
    at = open_page()
    assert "not corrected for its known mix-ups" in texts(at.caption)
    at.switch_page(PAGES[1]).run()
    assert not at.exception, at.exception
    reason = "not corrected for its known mix-ups: the file that measures them (fer_cnn.error_model.json) is missing"
    assert reason in texts(at.info)
    assert not any("corrected (95% range)" in c for c in chart_specs(at))
    assert any('"as read"' in c for c in chart_specs(at))  # the shares as read, still shown
