"""The dashboard's "Adapt to your faces" flow (src/app/adapt_view.py, issue #18 part 3): adapting
through Model Performance on a zip of labelled crops, the adapted model in the pickers with its
own report, and the errors an analyst can meet (bad zip, too few faces, no emotion folders, a
name already taken). Runs under ``AppTest`` on the fast bundled model, without TensorFlow."""

from __future__ import annotations

# Before anything imports TensorFlow: importing pylibsrtp (streamlit-webrtc) after it segfaults.
import streamlit_webrtc  # noqa: F401  isort: skip

import io
import zipfile
from pathlib import Path

import fake_outputs
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from src import config
from src.app import adapt_view, cache
from src.training import outputs
from src.training.adapt import AdaptError

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
PERFORMANCE = "pages/4_model_performance.py"
BASE = ROOT / "models" / "fer_compact.keras"  # three times faster than the deployed model
TIMEOUT = 240

pytestmark = [
    pytest.mark.skipif(not BASE.exists(), reason="no bundled model"),
    pytest.mark.usefixtures("navigation_mode"),
]


@pytest.fixture
def models(tmp_path, monkeypatch) -> Path:
    """A models folder holding the fast bundled model (and its ONNX twins) as the deployed one,
    the fake outputs as outputs/v1, no dataset on disk."""
    folder = tmp_path / "models"
    folder.mkdir()
    for source in BASE.parent.glob(f"{BASE.stem}.*"):
        (folder / source.name).symlink_to(source)
    monkeypatch.setattr(config, "MODELS_DIR", folder)
    monkeypatch.setattr(config, "MODEL_FILE", folder / BASE.name)
    out = tmp_path / "outputs"
    fake_outputs.write_fake_outputs(out / "v1")
    monkeypatch.setattr(config, "OUTPUTS_DIR", out)
    monkeypatch.setenv("FER_OUTPUTS_DIR", str(out))
    monkeypatch.setattr(config, "OUTPUT_VERSION", "")
    monkeypatch.delenv("FER_OUTPUT_VERSION", raising=False)
    monkeypatch.setattr(config, "DATASETS_DIR", tmp_path / "no_datasets")
    return folder


def crop(kind: int, rng: np.random.Generator) -> bytes:
    """A noisy 48x48 face-sized PNG of one of three shadings: lit from the top, from the left, or a dark ring."""
    yy, xx = np.mgrid[0:48, 0:48] / 47.0
    shade = (1 - yy, 1 - xx, np.clip(np.hypot(yy - 0.5, xx - 0.5) * 2.5, 0, 1))[kind]
    pixels = np.clip(255 * shade + rng.normal(0, 25, shade.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def crops_zip(per_class: int = 12, top: str = "") -> bytes:
    """happy/, sadness/ and surprise/ crops named after four people (P0_..P3_), plus entries to skip."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for kind, folder in enumerate(("happy", "sadness", "surprise")):
            for i in range(per_class):
                archive.writestr(f"{top}{folder}/P{i % 4}_{i:02d}.png", crop(kind, rng))
        archive.writestr(f"{top}contempt/c.png", crop(0, rng))
        archive.writestr(f"{top}happy/notes.txt", "not a photo")
        archive.writestr("__MACOSX/._happy", "metadata")
    return buffer.getvalue()


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def open_performance() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(PERFORMANCE).run()
    assert not at.exception, at.exception
    return at


def fill(at: AppTest, data: bytes, name: str, crops: bool = True, pattern: str = "") -> AppTest:
    at.file_uploader(key="adapt_upload_0").set_value(("faces.zip", data, "application/zip"))
    at.text_input(key="adapt_name_0").input(name)
    at.checkbox(key="adapt_crops").set_value(crops)
    at.text_input(key="adapt_pattern").input(pattern)
    at.run()
    assert not at.exception, at.exception
    return at


def test_adapt_through_the_page_then_pick_and_use_the_model(models):
    at = fill(open_performance(), crops_zip(), "acme", pattern=r"^(P\d)_")
    assert not at.button(key="adapt_run").disabled
    at.button(key="adapt_run").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)

    # Before and after on the held-back photos, in plain words, and where the model went.
    model = models / "acme.onnx"
    assert model.is_file() and model.with_suffix(".json").is_file()
    success = texts(at.success)
    assert "acme" in success and "happy, sad, surprise" in success and "model picker" in success
    values = {m.label: m.value for m in at.metric}
    after = float(values["Accuracy after adapting"].rstrip("%"))
    assert after >= 90 and after >= float(values["Accuracy before adapting"].rstrip("%"))
    assert values["Faces it learnt from"] == "36"
    assert "held back from the fitting" in texts(at.markdown)
    recall = next(d.value for d in at.dataframe if "emotion" in d.value.columns)
    assert list(recall["emotion"]) == ["happy", "sad", "surprise"]
    skipped = next(d.value for d in at.dataframe if "photo" in d.value.columns)
    reasons = dict(zip(skipped["photo"], skipped["reason"]))
    assert reasons["contempt/"].startswith("not an emotion of this model")
    assert reasons["happy/notes.txt"].startswith("not an image file")
    # The uploader and the name start afresh; the name is now taken.
    assert at.text_input(key="adapt_name_1").value == ""
    assert adapt_view.name_problem("acme") and "already exists" in adapt_view.name_problem("acme")

    # The model picker offers it, in plain words, and shows its adaptation report.
    assert at.selectbox(key="perf_model").options == [
        "deployed model (fer_compact.keras)",
        "acme (adapted to your faces)",
    ]
    at.button(key="adapt_report").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="perf_model").value == str(model)
    captions = texts(at.caption)
    assert "acme (adapted to your faces)" in captions and "adapted from" in captions and "fer_compact.keras" in captions
    assert not at.tabs, "no FER2013 reports for an adapted model"
    infos = texts(at.info)
    assert "not measured for it" in infos and "not available for adapted models" in infos
    assert {"Accuracy before adapting", "Accuracy after adapting"} <= {m.label for m in at.metric}

    # The sidebar's selector picks it for Emotion Detection, and says how good it is.
    selector = at.sidebar.selectbox(key=cache.MODEL_CHOICE)
    assert selector.options == ["Deployed model", "acme (adapted)"]
    assert selector.value == str(models / BASE.name)
    at.button(key="adapt_use").click().run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key=cache.MODEL_CHOICE).value == str(model)
    assert any(m.label == "Accuracy on your held-back photos" for m in at.sidebar.metric)
    assert "acme (adapted to your faces)" in texts(at.sidebar.markdown)

    # What the Emotion Detection tabs get once they pass the choice: the adapted model, served by ONNX Runtime.
    rec, error = cache.load_recognizer(str(model))
    assert error is None and rec.class_names == ("happy", "sad", "surprise") and rec.info.runtime == "onnx"
    deployed, error = cache.load_recognizer()
    assert error is None and len(deployed.class_names) == 7


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not a zip archive", "not a readable zip archive"),
        (crops_zip(per_class=3), "at least two emotions with 4 or more usable faces each"),
    ],
    ids=["bad-zip", "too-few-faces"],
)
def test_a_bad_upload_is_one_clear_error(models, data, message):
    at = fill(open_performance(), data, "acme")
    at.button(key="adapt_run").click().run()
    assert not at.exception, at.exception
    assert len(at.error) == 1 and message in at.error[0].value and "Not adapted" in at.error[0].value
    assert "/tmp" not in at.error[0].value  # the temporary folder is no business of the analyst
    assert not (models / "acme.onnx").exists() and not (models / "acme.json").exists()
    assert outputs.adapted_model_files() == []


def test_an_archive_without_emotion_folders_says_how_to_lay_it_out(models):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("holiday/a.png", crop(0, np.random.default_rng(1)))
        archive.writestr("b.png", crop(1, np.random.default_rng(2)))
    at = fill(open_performance(), buffer.getvalue(), "acme")
    at.button(key="adapt_run").click().run()
    assert not at.exception, at.exception
    assert (
        len(at.error) == 1
        and "no emotion folders" in at.error[0].value
        and "one folder per emotion" in (at.error[0].value)
    )


def test_a_taken_or_malformed_name_is_refused(models):
    at = fill(open_performance(), crops_zip(), BASE.stem)  # the bundled model's name
    assert "already exists" in texts(at.error) and "never overwritten" in texts(at.error)
    assert at.button(key="adapt_run").disabled
    at.text_input(key="adapt_name_0").input("acme/../x").run()
    assert "Use only letters, digits, - and _" in texts(at.error)
    assert at.button(key="adapt_run").disabled
    # Also refused past the page, e.g. when another session took the name meanwhile.
    with pytest.raises(AdaptError, match="already exists"):
        adapt_view.adapt_upload(crops_zip(), BASE.stem, crops=True)
    assert (models / BASE.name).is_symlink()


def test_a_zipped_folder_is_unpacked_to_its_emotion_folders(tmp_path):
    root, skipped = adapt_view.unpack(crops_zip(per_class=2, top="faces/"), tmp_path, config.EMOTIONS)
    assert root == tmp_path / "faces"
    assert sorted(p.name for p in root.iterdir()) == ["contempt", "happy", "sadness", "surprise"]
    assert ("__MACOSX/._happy", "hidden or macOS metadata file") in skipped
    assert any(name == "faces/happy/notes.txt" for name, _ in skipped)


def test_a_person_id_pattern_that_cannot_split_is_explained(models):
    with pytest.raises(AdaptError, match="not a valid regular expression"):
        adapt_view.adapt_upload(crops_zip(), "acme", crops=True, group_pattern="^(P")
    with pytest.raises(AdaptError, match="the person pattern found 2"):  # two "people": 0x and 1x
        adapt_view.adapt_upload(crops_zip(), "acme", crops=True, group_pattern=r"_(\d)\d")
    assert outputs.adapted_model_files() == []
