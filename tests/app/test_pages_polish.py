"""What a first-time analyst meets on Project Summary, Data Analysis and Model Performance (issue #20).

Each test pins one thing the issue found: "nan%" and code-name headers in the model tables,
"None" cells, a model card shown as raw JSON, engineers' words (version ids, outputs/ paths,
Macro-F1) as headlines, the developer toolbar, an empty example-faces section, and an empty
summary with no way to see it filled in. The pages run under ``AppTest`` on the fake outputs.
"""

from __future__ import annotations

# Before anything imports TensorFlow: importing pylibsrtp (streamlit-webrtc) after it segfaults.
import streamlit_webrtc  # noqa: F401  isort: skip

import json
import os
import subprocess
import tomllib
from pathlib import Path

import fake_outputs
import pytest
from streamlit.testing.v1 import AppTest

from src import config
from src.engine.manifest import read_manifest
from src.training import model_card

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
SUMMARY, DATA_ANALYSIS, PERFORMANCE = (
    "pages/1_project_summary.py",
    "pages/3_data_analysis.py",
    "pages/4_model_performance.py",
)
DETAILS = "Details for data scientists"
TIMEOUT = 120

pytestmark = [
    pytest.mark.skipif(not config.MODEL_FILE.exists(), reason="no bundled model"),
    pytest.mark.usefixtures("navigation_mode"),
]


@pytest.fixture
def populated(tmp_path, monkeypatch) -> Path:
    """The fake outputs as outputs/v1, no dataset on disk, a fresh results store."""
    folder = tmp_path / "outputs"
    fake_outputs.write_fake_outputs(folder / "v1")
    monkeypatch.setattr(config, "OUTPUTS_DIR", folder)
    monkeypatch.setenv("FER_OUTPUTS_DIR", str(folder))
    monkeypatch.setattr(config, "OUTPUT_VERSION", "")
    monkeypatch.delenv("FER_OUTPUT_VERSION", raising=False)
    monkeypatch.setattr(config, "DATASETS_DIR", tmp_path / "no_datasets")
    url = f"sqlite:///{(tmp_path / 'results.db').as_posix()}"
    monkeypatch.setattr(config, "DATABASE_URL", url)
    monkeypatch.setenv("FER_DATABASE_URL", url)
    return folder


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    if page != SUMMARY:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def outside_expanders(node) -> str:
    """The text of every markdown, caption and alert shown without opening an expander."""
    if getattr(node, "type", "") == "expander":
        return ""
    shown = {"markdown", "caption", "info", "warning", "error", "success"}
    own = str(node.value) if getattr(node, "type", "") in shown else ""
    return " ".join([own, *(outside_expanders(child) for child in getattr(node, "children", {}).values())])


def expander(at: AppTest, label: str = DETAILS, index: int = 0):
    return [e for e in at.expander if e.label == label][index]


def headers(frame) -> dict[str, str]:
    """Column key -> the header shown (from the column configuration)."""
    settings = json.loads(frame.proto.columns or "{}")
    return {key: value.get("label", key) for key, value in settings.items() if not key.startswith("_")}


def table_with(at: AppTest, column: str):
    return next(d for d in at.dataframe if column in d.value.columns)


# --- Model Performance -------------------------------------------------------------------------


def test_cross_dataset_table_has_one_format_no_nan_and_plain_headers(populated):
    cross = {
        "rows": [
            {
                "dataset": "ExpW held-back photos",
                "faces": 1040,
                "accuracy": 0.425,
                "macro_f1": 0.409,
                "faces_found": 0.975,
            },
            {"dataset": "CK+ posed crops", "faces": 927, "accuracy": 0.7163, "macro_f1": 0.6772},
        ]
    }
    (populated / "v1" / "cross_dataset.json").write_text(json.dumps(cross))
    at = open_page(PERFORMANCE)
    table = table_with(at, "faces_found")
    frame = table.value.set_index("dataset")
    # Crops need no detection: not measured, shown as "—" (the placeholder), never "nan%".
    assert frame["faces_found"].isna().tolist() == [True, True, False, True]
    assert table.proto.placeholder == model_card.NOT_MEASURED_CELL
    assert not any("nan" in str(v) for v in frame.to_numpy().ravel() if isinstance(v, str))
    # One format: shares as percentages (0-100, one decimal shown), Macro-F1 as a 0-1 score said so.
    assert frame.loc["ExpW held-back photos", "accuracy"] == pytest.approx(42.5)
    assert frame.loc["ExpW held-back photos", "faces_found"] == pytest.approx(97.5)
    shown = headers(table)
    assert shown["accuracy"] == "Accuracy" and shown["faces_found"] == "Faces found"
    assert shown["macro_f1"] == "Macro-F1 (0-1, balanced over emotions)"
    settings = json.loads(table.proto.columns)
    assert settings["accuracy"]["type_config"]["format"] == "%.1f%%"
    # A bar cell would stay blank: the column with gaps is a number column, which shows "—".
    assert settings["faces_found"]["type_config"]["type"] == "number"
    assert not [label for label in shown.values() if "_" in label], shown


def test_model_comparison_shows_dashes_not_none_and_words_not_code_names(populated):
    at = open_page(PERFORMANCE)
    table = table_with(at, "private_test_accuracy")
    shown = headers(table)
    assert shown["private_test_accuracy"] == "Accuracy (FER2013 test)"
    assert "macro_f1" not in shown.values() and "private_test_accuracy" not in shown.values()
    assert table.proto.placeholder == model_card.NOT_MEASURED_CELL  # the Human row has no macro-F1
    frame = table.value
    assert frame["macro_f1"].isna().sum() == 1 and "None" not in frame.astype(str).to_numpy()
    assert frame["private_test_accuracy"].max() == pytest.approx(66.0)  # best first, as a percentage


def test_every_table_on_model_performance_has_plain_headers(populated):
    at = open_page(PERFORMANCE)
    for table in at.dataframe:
        shown = headers(table)
        if shown:
            assert not {"macro_f1", "private_test_accuracy", "f1", "faces_found"} & set(shown.values())


def test_model_card_reads_as_sections_with_the_raw_json_for_data_scientists(populated):
    at = open_page(PERFORMANCE)
    titles = {str(m.value).strip("*") for m in at.markdown}
    assert {"What it is", "Intended use", "Data", "Training", "Metrics", "Limitations"} <= titles
    assert len(at.json) == 1, "the raw manifest is the only JSON on the page"
    details = [e for e in at.expander if e.label == DETAILS]
    assert any(len(e.json) == 1 for e in details), "the raw JSON sits in the data scientists' expander"
    body = outside_expanders(at.main)
    assert "EU AI Act" in body and "65%" in body


def test_version_ids_and_paths_are_details_not_headlines(populated):
    manifest = read_manifest(config.MODEL_FILE, strict=False)
    version = model_card.model_version(manifest)
    at = open_page(PERFORMANCE)
    body = outside_expanders(at.main)
    assert model_card.plain_name(manifest) in body and "Emotion model" in body
    assert version not in body and "outputs/" not in body
    details = " ".join(str(m.value) for m in expander(at).markdown)
    assert version in details and "outputs/v1" in details and "Macro-F1: the unweighted mean" in details


def test_macro_f1_is_explained_in_plain_words(populated):
    at = open_page(PERFORMANCE)
    metric = next(m for m in at.metric if m.label == "Macro-F1")
    assert "every emotion equally" in metric.proto.help
    assert any("counts every emotion equally" in str(c.value) for c in at.caption)


def test_plain_model_names():
    manifest = read_manifest(config.MODEL_FILE, strict=False)
    assert model_card.plain_name(manifest).startswith("Emotion model")
    assert model_card.plain_name({"version": "v3-ensemble-w24-w48", "training": {"members": [{}, {}]}}) == (
        "Emotion model v3 (two averaged CNNs)"
    )


# --- Honest headlines (issue #17, parts 3 and 4) ------------------------------------------------

REAL_PHOTOS = {
    "model": "fer_cnn.keras",
    "rows": [{"dataset": "ExpW held-back photos", "faces": 1040, "photos": 1040, "accuracy": 0.425}],
}


def test_every_accuracy_shown_has_the_real_photo_one_beside_it(populated):
    """The KPIs and the sidebar show the accuracy on lab photos (FER2013) and on real web photos
    (ExpW, held back) side by side; Model Performance puts the real-photo figure under FER2013's."""
    (populated / "v1" / "cross_dataset.json").write_text(json.dumps(REAL_PHOTOS))
    lab = model_card.whole_percent(fake_outputs.metrics()["splits"]["PrivateTest"]["accuracy"])
    at = open_page(SUMMARY)
    for where in (at.main, at.sidebar):
        shown = {m.label: m.value for m in where.metric}
        assert shown["Accuracy on lab photos (FER2013)"] == lab
        assert shown["Accuracy on real photos (ExpW)"] == "43%"
    assert not any("Test accuracy" in m.label for m in at.metric)
    at.switch_page(PERFORMANCE).run()
    assert not at.exception, at.exception
    captions = " ".join(str(c.value) for c in at.caption)
    assert "On real web photos (ExpW, held back), through the whole pipeline: 42.5% of 1,040 faces" in captions
    body = outside_expanders(at.main)
    assert "it labels 42.5% of 1,040 faces correctly" in body  # the model card's Metrics


def test_the_calibration_sentence_says_which_data_it_holds_for(populated):
    """The sentence "a face labelled 70% is right about 70% of the time" holds on FER2013's crops:
    the page says so, and shows the calibration on real web photos beside it (ECE and reliability)."""
    manifest = read_manifest(config.MODEL_FILE, strict=False)
    wild = model_card.wild_calibration(manifest)
    assert wild, "the bundled model's manifest holds its calibration on real photos"
    at = open_page(PERFORMANCE)
    metric = next(m for m in at.metric if m.label == "ECE on real web photos")
    assert metric.value == f"{wild['ece']:.1%}" and "not served" in metric.proto.help
    captions = " ".join(str(c.value) for c in at.caption)
    assert "On lab photos (FER2013's test crops)" in captions and "70% of the time" in captions
    assert "On real web photos (ExpW, held back) it is over-confident" in captions
    assert "The app shows calibrated probabilities" not in captions
    titles = {chart.proto.spec for chart in at.get("plotly_chart")}
    assert any("Reliability on real web photos" in spec for spec in titles)
    assert any("Reliability on lab photos" in spec for spec in titles)


# --- Data Analysis ------------------------------------------------------------------------------


def test_data_analysis_without_a_dataset_says_what_the_example_faces_would_be(populated):
    at = open_page(DATA_ANALYSIS)
    infos = " ".join(str(i.value) for i in at.info)
    assert "example faces" in infos and "src.cli collect" in infos and "Kaggle" in infos
    body = outside_expanders(at.main)
    assert "outputs/" not in body, "the statistics file's path is a detail, not a caption"
    assert "dataset_stats.json" in " ".join(str(m.value) for m in expander(at).markdown)


# --- Project Summary: demo data -----------------------------------------------------------------


def demo_warning(at: AppTest) -> bool:
    return any("Demo data" in str(w.value) for w in at.warning)


def store_runs():
    from src.analytics.store import open_store

    return open_store(config.DATABASE_URL).runs()


def test_empty_summary_loads_demo_data_marked_as_demo_and_removes_only_it(populated):
    from src.analytics.store import open_store

    at = open_page(SUMMARY)
    assert "No results saved yet" in " ".join(str(c.value) for c in at.caption)
    assert not demo_warning(at)
    at.button(key="demo_load").click().run()
    assert not at.exception, at.exception
    demo_runs = store_runs()
    assert len(demo_runs) > 10 and all("demo" in tags for tags in demo_runs["tags"])
    assert any(m.label == "People seen" for m in at.metric)
    assert demo_warning(at), "demo numbers are marked as such"

    rows = [dict(file="mine.jpg", face=0, emotion="happy", confidence=0.9, **dict.fromkeys(config.EMOTIONS, 0.1))]
    mine = open_store(config.DATABASE_URL).save_rows("batch", rows, campaign="Mine", tags=["demo"])
    at = open_page(SUMMARY)
    assert not any(b.key == "demo_load" for b in at.button), "demo data is offered on an empty store only"
    at.button(key="demo_remove").click().run()
    assert not at.exception, at.exception
    assert store_runs()["run_id"].tolist() == [mine], "only the demo runs go, even a real run tagged demo stays"
    assert not demo_warning(at) and not any(b.key == "demo_remove" for b in at.button)


# --- the toolbar ----------------------------------------------------------------------------------


def test_viewers_get_no_developer_toolbar_or_deploy_button(tmp_path):
    from streamlit import config as st_config

    option = "client.toolbarMode"
    assert option in st_config._config_options, "the option exists in this Streamlit"
    project = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert project["client"]["toolbarMode"] == "viewer"
    env = {**os.environ, "HOME": str(tmp_path), "PORT": "9123"}
    subprocess.run(["sh", str(ROOT / "setup.sh")], check=True, env=env, cwd=tmp_path)
    written = tomllib.loads((tmp_path / ".streamlit" / "config.toml").read_text())
    assert written["client"]["toolbarMode"] == "viewer" and written["server"]["port"] == 9123
