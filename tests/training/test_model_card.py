"""Headline KPIs, model card and classification report without Keras."""

from __future__ import annotations

import fake_outputs as fake
import numpy as np
import pytest

from src import config
from src.app import dataset_view
from src.training import model_card
from src.training.data import FerData

# cross_dataset.json as bench/score_wild.py writes it (the v3 figures).
CROSS = {
    "model": "fer_cnn.keras",
    "rows": [
        {"dataset": "ExpW held-back photos (scaled to 400-800 px)", "faces": 1040, "accuracy": 0.4154},
        {"dataset": "ExpW held-back photos", "faces": 1040, "photos": 1040, "accuracy": 0.425, "macro_f1": 0.4094},
        {"dataset": "CK+ (48x48 posed crops, 6 shared classes)", "faces": 927, "accuracy": 0.7163},
    ],
}
# The manifest's calibration on real photos (src.training.wild_calibration), trimmed.
WILD = {
    "dataset": "ExpW",
    "faces": 1013,
    "accuracy": 0.4363,
    "mean_confidence": 0.551,
    "right_at_70": {"confidence": [0.65, 0.75], "faces": 112, "accuracy": 0.5357},
    "ece": 0.1147,
    "temperature_wild": 1.1564,
    "ece_after": 0.0389,
}


def test_kpis_measured_and_missing():
    kpis = model_card.headline_kpis(fake.metrics(), fake.dataset_stats(), fake.benchmark(), CROSS)
    assert [k.label for k in kpis] == [
        "Accuracy on lab photos (FER2013)",
        "Accuracy on real photos (ExpW)",
        "Dataset size",
        "Median latency",
    ]
    assert all(k.measured for k in kpis)
    assert kpis[2].value == "35,887 faces" and kpis[3].value == "42 ms / photo"
    missing = model_card.headline_kpis(None, None, None)
    assert all(k.value == model_card.MISSING and not k.measured for k in missing)
    assert all(k.help.lower().startswith(model_card.NOT_MEASURED) for k in missing)


def test_the_real_photo_accuracy_stands_beside_the_lab_one():
    """Issue #17, part 4: wherever an accuracy is shown, the held-back in-the-wild figure
    (whole pipeline) stands beside FER2013's, in words a manager reads."""
    metrics = fake.metrics()
    metrics["splits"]["PrivateTest"]["accuracy"] = 0.6620
    lab, real = model_card.accuracy_kpis(metrics, CROSS)
    assert (lab.label, lab.value) == ("Accuracy on lab photos (FER2013)", "66%")
    assert (real.label, real.value) == ("Accuracy on real photos (ExpW)", "43%")
    assert "66.2%" in lab.help and "Macro-F1" in lab.help and "48x48" in lab.help
    assert "42.5%" in real.help and "1,040" in real.help and "whole pipeline" in real.help
    assert "counts as wrong" in real.help and "customer photos" in real.help
    # The headline KPIs and the sidebar show the very same two.
    assert model_card.headline_kpis(metrics, None, None, CROSS)[:2] == [lab, real]
    # The photos as they are, not the rescaled variant; that one only when it is all there is.
    assert model_card.real_photo_scores(CROSS)["accuracy"] == 0.425
    scaled = {"rows": CROSS["rows"][:1]}
    assert model_card.real_photo_scores(scaled)["accuracy"] == 0.4154
    assert model_card.real_photo_scores({"rows": CROSS["rows"][2:]}) == {}
    # Not measured yet: a dash, and the help says so.
    _, unmeasured = model_card.accuracy_kpis(metrics, None)
    assert unmeasured.value == model_card.MISSING and unmeasured.help.startswith("Not yet measured")
    caption = model_card.real_photo_caption(CROSS)
    assert "42.5% of 1,040 faces" in caption and "real web photos" in caption
    assert model_card.real_photo_caption(None) is None


def test_whole_percentages_round_halves_up():
    assert [model_card.whole_percent(v) for v in (0.425, 0.145, 0.662, 0.0, 1.0)] == ["43%", "15%", "66%", "0%", "100%"]


def test_the_calibration_sentence_says_which_data_it_holds_for():
    """Issue #17, part 3: "a face labelled 70% is right about 70% of the time" holds on FER2013's
    crops; on real photos the model is over-confident, and the card says so with both ECEs."""
    manifest = {"temperature": 0.78, "metrics": {"ece_after": 0.0227}, "calibration_wild": WILD}
    lab, wild = model_card.calibration_sentences(manifest, None)
    assert "lab photos (FER2013" in lab and "70% of the time" in lab and "ECE 2.3%" in lab
    assert "real web photos (ExpW, held back)" in wild and "over-confident" in wild
    assert "right about 54% of the time" in wild and "ECE 11.5%" in wild
    assert "marked doubtful" in wild  # src.engine.doubt rescales with temperature_wild
    # metrics.json's ECE is the one evaluation wrote; the manifest's copy is the fallback.
    assert "ECE 3.0%" in model_card.calibration_sentences(manifest, fake.metrics())[0]
    # Without the measurement on real photos, the card says it is missing rather than implying it holds.
    (lab_only, missing) = model_card.calibration_sentences({"temperature": 0.78}, fake.metrics())
    assert "FER2013" in lab_only and model_card.NOT_MEASURED in missing
    # Well calibrated there too: no over-confidence claimed.
    fine = {**WILD, "mean_confidence": 0.44, "ece": 0.02}
    (sentence,) = model_card.calibration_sentences({"calibration_wild": fine}, None)
    assert "hold too" in sentence and "over-confident" not in sentence
    # The card, its data scientists' tables and details carry both.
    card = model_card.model_card({**manifest, "version": "v3"}, fake.metrics())
    performance, facts = dict(card.performance), dict(card.facts)
    assert performance["Calibration error (ECE) as served, ExpW held-back photos"] == "11.5%"
    assert performance["Calibration error (ECE) after scaling, FER2013 PrivateTest"] == "3.0%"
    assert facts["Temperature fitted on ExpW (not served)"].startswith("1.16")
    details = " ".join(model_card.technical_details(manifest, None))
    assert "calibration_wild" in details and "not served" in details
    assert "not served" not in " ".join(model_card.technical_details({}, None))


def test_version_and_sha_match():
    metrics = fake.metrics(sha256="abc", version="m1")
    assert model_card.model_version({"version": "v2"}, metrics) == "v2"
    assert model_card.model_version({}, metrics) == "unversioned"
    assert model_card.model_version(None, metrics) == "m1"
    assert model_card.model_version(None, None) == "no model"
    assert model_card.metrics_match_model({"sha256": "abc"}, metrics)
    assert not model_card.metrics_match_model({"sha256": "def"}, metrics)
    assert model_card.test_accuracy(None) is None


def test_model_card_sections():
    manifest = {
        "version": "v1",
        "sha256": "f" * 64,
        "class_names": list(config.EMOTIONS),
        "input_size": 48,
        "training": {
            "config": {"arch": "compact", "width": 24, "epochs": 60},
            "parameters": 338083,
            "train_rows": 28709,
            "val_rows": 3589,
        },
    }
    card = model_card.model_card(manifest, fake.metrics())
    facts = dict(card.facts)
    assert facts["Architecture"] == "compact CNN, width 24" and facts["Parameters"] == "338,083"
    assert facts["Training data"] == "FER2013 Training (28,709 faces)"
    assert facts["Test-time views"] == "the face and its mirror image, averaged"  # none named: the default
    manifest["test_time_views"] = "zoom"
    assert dict(model_card.model_card(manifest, fake.metrics()).facts)["Test-time views"].endswith("six views averaged")
    assert card.training["epochs"] == 60
    assert any("EU AI Act" in line for line in card.limitations)
    performance = dict(card.performance)
    assert performance["Accuracy vs FER+ majority labels"] == "71.0%"
    empty = model_card.model_card(None, None)
    assert dict(empty.performance)["PrivateTest accuracy (test)"] == model_card.NOT_MEASURED


def test_an_ensembles_card_names_its_members_and_their_data():
    wild = {
        "config": {"arch": "compact", "width": 24, "ferplus_weight": 0.3, "expw_repeat": 3},
        "data": {"expw": {"train_faces": 3965}},
    }
    teacher = {"config": {"arch": "compact", "width": 48, "ferplus_weight": 0.3, "expw_repeat": 3}}
    manifest = {
        "version": "v3",
        "training": {
            "config": {"arch": "ensemble", "members": ["compact w24", "compact w48"]},
            "data": wild["data"],
            "val_rows": {"fer": 3589, "expw": 1040},
            "parameters": 1682978,
            "members": [{"name": "v2-wild", "training": wild}, {"name": "teacher", "training": teacher}],
        },
    }
    card = model_card.model_card(manifest, None)
    facts = dict(card.facts)
    assert facts["Architecture"] == "mean of 2 CNNs: compact w24 + compact w48"
    assert facts["Parameters"] == "1,682,978"
    assert facts["Training data"] == "FER2013 Training + ExpW in-the-wild photos (3,965 faces, 3x an epoch)"
    assert "ExpW held-back photos (1,040 faces)" in facts["Model selection"]
    assert card.training == {"v2-wild": wild["config"], "teacher": teacher["config"]}


def test_report_table_and_split_order():
    metrics = fake.metrics()
    table = model_card.report_table(metrics["splits"]["PrivateTest"], fake.CLASSES)
    assert table["class"].tolist()[-2:] == ["macro avg", "weighted avg"]
    assert table.iloc[-1]["support"] == metrics["splits"]["PrivateTest"]["n"]
    assert table.iloc[-2]["f1"] == pytest.approx(metrics["splits"]["PrivateTest"]["macro_f1"])
    assert model_card.report_table(None).empty
    assert model_card.split_names(metrics) == ["PrivateTest", "PublicTest"]


def test_dataset_views():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(7), 3)
    labels = labels[labels != 1]  # no disgust faces at all
    data = FerData(
        images=rng.integers(0, 255, (len(labels), 48, 48), dtype=np.uint8),
        labels=labels,
        usage=np.array(["Training"] * len(labels)),
    )
    grid = dataset_view.sample_grid(data, per_class=4)
    assert grid.shape == (7 * 50 - 2, 4 * 50 - 2)
    rows = dataset_view.grid_rows(grid, 7)
    assert len(rows) == 7 and rows[1].shape == (48, 198)
    assert (rows[1][:, :48] == 128).all()  # the empty class shows grey tiles
    tiles = dataset_view.strip_tiles(np.zeros((96, 96 * 7), np.uint8), 7)
    assert len(tiles) == 7 and tiles[0].shape == (96, 96)
    text = " ".join(dataset_view.insights(fake.dataset_stats()))
    assert "disgust" in text and "FER+" in text
    assert dataset_view.insights({}) == []


def test_card_of_a_model_trained_in_the_wild():
    """A v2 manifest (FER2013 + ExpW, selected on two validation sets) reads as such."""
    manifest = {
        "class_names": list(config.EMOTIONS),
        "training": {
            "config": {"arch": "compact", "width": 24, "expw_repeat": 3, "ferplus_weight": 0.3},
            "data": {"fer2013": {"fer2013.csv.gz": "e1e8"}, "expw": {"train_faces": 3965, "val_faces": 1040}},
            "train_rows": 40604,
            "val_rows": {"fer": 3589, "expw": 1040},
        },
    }
    facts = dict(model_card.model_card(manifest, None).facts)
    assert facts["Training data"] == "FER2013 Training + ExpW in-the-wild photos (3,965 faces, 3x an epoch)"
    assert facts["Model selection"] == (
        "mean accuracy of FER2013 PublicTest (3,589 faces) and ExpW held-back photos (1,040 faces)"
    )
    manifest["training"]["config"]["ferplus_weight"] = 1.0
    manifest["training"]["data"].pop("expw")
    manifest["training"]["val_rows"] = {"ferplus": 3000}
    facts = dict(model_card.model_card(manifest, None).facts)
    assert facts["Training data"] == "FER2013 Training (40,604 faces) (FER+ vote distributions as targets)"
    assert facts["Model selection"] == "FER+ majority, PublicTest (3,000 faces)"


def test_calibration_error_is_the_served_one_where_it_was_measured():
    metrics = {
        "splits": {"PrivateTest": {"ece": 0.076}, "PublicTest": {"ece": 0.067}},
        "calibration": {"reported_on": "PrivateTest", "ece_after": 0.023},
    }
    value, note = model_card.calibration_error(metrics, "PrivateTest")
    assert value == 0.023 and note.startswith("As served") and "7.6% before" in note
    value, note = model_card.calibration_error(metrics, "PublicTest")
    assert value == 0.067 and note.startswith("Of the raw model")
    assert model_card.calibration_error(None, "PrivateTest")[0] is None


def test_model_labels_name_the_deployed_the_ferplus_and_the_fast_model():
    models = config.MODELS_DIR
    assert model_card.model_label(str(config.MODEL_FILE)) == f"deployed model ({config.MODEL_FILE.name})"
    assert model_card.model_label(str(models / "fer_plus.keras")) == "FER+ model (fer_plus.keras)"
    assert model_card.model_label(str(models / "fer_compact.keras")) == "fast model (fer_compact.keras)"
    assert model_card.model_label(str(models / "scratch.keras")) == "scratch.keras"


def test_tables_show_numbers_in_one_format_and_missing_ones_as_none():
    cross = {
        "rows": [
            {"dataset": "ExpW", "faces": 1040, "accuracy": 0.425, "macro_f1": 0.409, "faces_found": 0.975},
            {"dataset": "CK+", "faces": 927, "accuracy": 0.716, "macro_f1": float("nan")},
        ]
    }
    raw = model_card.cross_dataset_table(fake.metrics(), cross)
    assert raw["faces_found"].tolist() == [None, None, 0.975, None], "crops: not measured, never NaN"
    table = model_card.display_table(raw, model_card.CROSS_DATASET_COLUMNS)
    assert list(table.columns) == [c.key for c in model_card.CROSS_DATASET_COLUMNS]
    assert table["accuracy"].tolist()[2:] == pytest.approx([42.5, 71.6])
    assert table["faces_found"].isna().tolist() == [True, True, False, True]
    assert table["macro_f1"].isna().tolist() == [False, False, False, True]
    assert not any("_" in c.label for c in model_card.CROSS_DATASET_COLUMNS + model_card.COMPARISON_COLUMNS)
    assert model_card.cross_dataset_table(None, None).empty


def test_comparison_table_best_first_with_plain_names_in_the_notes():
    frame = fake.model_comparison()
    frame.loc[2, "notes"] = "version v3-ensemble-w24-w48; selected on PublicTest"
    table = model_card.comparison_table(frame, {"v3-ensemble-w24-w48": "Emotion model v3 (two averaged CNNs)"})
    assert table["model"].tolist()[0] == "compact CNN" and table["private_test_accuracy"][0] == pytest.approx(66.0)
    assert table["notes"][0] == "Emotion model v3 (two averaged CNNs); selected on PublicTest"
    assert table["macro_f1"].isna().sum() == 1  # the human figure has none: shown as "—"
    assert model_card.comparison_table(None).empty


def test_plain_names_and_a_readable_card():
    assert model_card.plain_name(None) == "no model"
    assert model_card.plain_name({"version": "v3-ensemble-w24-w48", "training": {"members": [{}, {}]}}) == (
        "Emotion model v3 (two averaged CNNs)"
    )
    plus = {"version": "v2-ferplus-compact-w24", "training": {"config": {"arch": "compact", "ferplus_weight": 1.0}}}
    assert model_card.plain_name(plus) == "Emotion model v2 (one compact CNN, fitted to FER+ votes)"
    assert model_card.plain_name({"version": "custom"}) == "Emotion model"
    balanced = {"version": "v3.1-ensemble-w24-w48-balanced", "training": {"members": [{}, {}]}}
    assert model_card.plain_name(balanced) == "Emotion model v3.1 (two averaged CNNs)"
    manifest = {
        "version": "v3-ensemble-w24-w48",
        "temperature": 0.78,
        "training": {"members": [{}, {}], "parameters": 1682978, "data": {"expw": {"train_faces": 3965}}},
    }
    sections = model_card.readable_card(manifest, fake.metrics(), CROSS)
    assert [s.title for s in sections] == ["What it is", "Intended use", "Data", "Training", "Metrics", "Limitations"]
    text = " ".join(line for s in sections for line in s.lines)
    metrics_lines = next(s for s in sections if s.title == "Metrics").lines
    assert "lab crops" in metrics_lines[0] and "42.5% of 1,040 faces" in metrics_lines[1]
    assert "Emotion model v3 (two averaged CNNs)" in text and "v3-ensemble" not in text
    assert "3,965 faces from real web photos" in text and "1.7 million" in text and "calibrated" in text
    assert "counts every emotion equally" in text
    empty = model_card.readable_card(None, None)
    assert model_card.NOT_MEASURED in next(s for s in empty if s.title == "Metrics").lines[0]
    details = " ".join(model_card.technical_details(manifest, None, "outputs/v3"))
    assert "`v3-ensemble-w24-w48`" in details and "`outputs/v3`" in details and "Macro-F1:" in details


def test_the_card_lists_the_class_shifts_folded_into_the_model():
    shifts = {"angry": -0.2, "disgust": 0.3, "fear": 0.2, "happy": 0.0, "sad": -0.1, "surprise": 0.1, "neutral": -0.3}
    training = {"config": {"arch": "compact", "width": 24}}
    manifest = {
        "version": "v3.1",
        "training": training
        | {"class_bias": {"bias": shifts, "fitted_on": {"PublicTest": 3589, "ExpW held-back": 1040}}},
    }
    facts = dict(model_card.model_card(manifest, fake.metrics()).facts)
    assert facts["Class shifts (logits)"] == (
        "angry -0.20, disgust +0.30, fear +0.20, happy +0.00, sad -0.10, surprise +0.10, neutral -0.30 "
        "(fitted on PublicTest and ExpW held-back for accuracy and macro-F1)"
    )
    assert "Class shifts (logits)" not in dict(model_card.model_card({"training": training}, None).facts)


def test_confusion_tables_of_every_dataset_and_the_open_mouth_confusions_in_words():
    metrics = fake.metrics()
    ck = {
        "true": ["angry", "fear", "surprise"],
        "predicted": [*config.EMOTIONS, "(no face)"],
        "counts": [[5, 0, 1, 0, 0, 4, 0, 0], [0, 0, 2, 0, 0, 8, 0, 0], [0, 0, 0, 0, 0, 10, 0, 0]],
    }
    broken = {"true": ["angry"], "predicted": ["angry", "fear"], "counts": [[1, 2, 3]]}  # shape does not match
    cross = {
        "rows": [
            {"dataset": "CK+ crops", "confusion": ck},
            {"dataset": "ExpW held-back photos", "confusion": broken},
            {"dataset": "CK+ (older run, no table)"},
        ]
    }
    tables = model_card.confusion_tables(metrics, cross)
    assert list(tables) == ["FER2013 PrivateTest (48x48 crops)", "CK+ crops"]
    fer = tables["FER2013 PrivateTest (48x48 crops)"]
    assert fer["true"] == fer["predicted"] == metrics["class_names"]
    assert fer["counts"] == metrics["splits"]["PrivateTest"]["confusion_matrix"]
    assert model_card.open_mouth_sentence(ck) == (
        "Among open-mouth expressions, fear is read as surprise 80% of the time, angry is read as surprise 40% "
        "of the time, angry is read as fear 10% of the time."
    )
    assert model_card.open_mouth_sentence(ck, most=1).endswith("fear is read as surprise 80% of the time.")
    # Fewer than two open-mouth labels: nothing to say.
    happy_only = {"true": ["happy"], "predicted": ["happy", "sad"], "counts": [[3, 1]]}
    assert model_card.open_mouth_sentence(happy_only) == ""
    clean = {"true": ["fear", "surprise"], "predicted": ["fear", "surprise"], "counts": [[9, 0], [0, 9]]}
    assert model_card.open_mouth_sentence(clean) == ""  # no 0% confusions listed
    assert model_card.confusion_tables(None, None) == {}
