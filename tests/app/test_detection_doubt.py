"""Doubtful faces in the Photos and Batch tabs (src/app/detection/photos.py, batch.py, common.py):
the marker beside the label, the table's columns, and leaving them out of the tab's shares.

A sharp photo of the astronaut and the same photo blurred, through the bundled model.
"""

from __future__ import annotations

from pathlib import Path

# Before anything imports TensorFlow: importing pylibsrtp (streamlit-webrtc) after it segfaults.
import streamlit_webrtc  # noqa: F401  isort: skip

import cv2
import fake_outputs
import pytest
from skimage import data
from streamlit.testing.v1 import AppTest
from support import jpeg_bytes

from src import config

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
DETECTION = "pages/2_emotion_detection.py"
TIMEOUT = 240

pytestmark = pytest.mark.skipif(not config.MODEL_FILE.exists(), reason="no bundled model")


@pytest.fixture(autouse=True)
def app_test_mode(monkeypatch, tmp_path, no_webrtc_session, navigation_mode):
    """AppTest without a browser session for streamlit-webrtc, kept in st.navigation mode
    (tests/conftest.py), on fake evaluation outputs and no dataset."""
    folder = tmp_path / "outputs"
    fake_outputs.write_fake_outputs(folder / "v1")
    monkeypatch.setattr(config, "OUTPUTS_DIR", folder)
    monkeypatch.setenv("FER_OUTPUTS_DIR", str(folder))
    monkeypatch.setattr(config, "OUTPUT_VERSION", "")
    monkeypatch.delenv("FER_OUTPUT_VERSION", raising=False)
    monkeypatch.setattr(config, "DATASETS_DIR", tmp_path / "no_datasets")


@pytest.fixture(scope="module")
def photos() -> list[tuple[str, bytes, str]]:
    sharp = data.astronaut()
    return [
        ("sharp.jpg", jpeg_bytes(sharp), "image/jpeg"),
        ("blurred.jpg", jpeg_bytes(cv2.GaussianBlur(sharp, (0, 0), 6)), "image/jpeg"),
    ]


def _detection_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(DETECTION).run()
    assert not at.exception, at.exception
    return at


def _texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def test_photos_mark_the_doubtful_face_and_can_leave_it_out_of_the_summary(photos):
    at = _detection_page()
    at.file_uploader(key="photos_upload").set_value(photos).run()
    assert not at.exception, at.exception
    marks = [str(t.value) for t in at.text if str(t.value).startswith("⚠ doubtful:")]
    assert len(marks) == 1 and "blurred" in marks[0]  # the blurred photo's face only
    box = at.checkbox(key="photos_leave_out_doubtful")
    assert box.label == "Leave out doubtful faces (1)" and not box.value
    assert "**2 faces in 2 photos**" in _texts(at.markdown)
    box.check().run()
    assert not at.exception, at.exception
    assert "1 doubtful face left out of these shares (blurred" in _texts(at.caption)
    assert "**1 face in 2 photos**" in _texts(at.markdown)


def test_batch_table_has_the_doubt_and_the_kpis_can_leave_it_out(photos):
    at = _detection_page()
    uploader = next(u for u in at.get("file_uploader") if (u.key or "").startswith("batch_upload"))
    uploader.set_value(photos).run()
    at.button(key="batch_run").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    flags = dict(zip(table["file"], table["uncertain"]))
    assert flags == {"sharp.jpg": False, "blurred.jpg": True}
    assert "blurred" in table.set_index("file").loc["blurred.jpg", "doubt"]
    faces = next(m for m in at.metric if m.label == "Faces")
    assert faces.value == "2"
    at.checkbox(key="batch_leave_out_doubtful").check().run()
    assert not at.exception, at.exception
    assert next(m for m in at.metric if m.label == "Faces").value == "1"
    assert next(m for m in at.metric if m.label == "Photos").value == "2"  # files are not left out
    assert len(at.dataframe[0].value) == 2  # the table keeps every face
