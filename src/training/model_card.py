"""What the dashboard says about the model: manifest facts, headline KPIs, the model card and its tables.

Each comes in a manager's words first (``plain_name``, ``readable_card``, the tables' headers
in ``TableColumn``), with the exact terms kept for data scientists (``model_version``,
``model_card``, ``technical_details``).

Works from the model's JSON manifest (``src.engine.manifest``, no Keras import), so the
summary pages and the sidebar render without loading TensorFlow. Missing numbers become
"not yet measured" rather than errors (a headline KPI shows "—" and says so in its help).

Honest headlines: wherever an accuracy is shown, the one on real photos stands beside the
FER2013 one (``accuracy_kpis``: lab crops, and ExpW's held-back in-the-wild photos through
the whole pipeline, from ``cross_dataset.json``), and the calibration sentence says which
data it holds for (``calibration_sentences``: FER2013's, and the manifest's
``calibration_wild`` measured by ``src.training.wild_calibration``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from src import config
from src.engine.classifier import model_views

NOT_MEASURED = "not yet measured"
MISSING = "—"  # a headline KPI without a number: short enough for st.metric
TEST_SPLIT = "PrivateTest"
VAL_SPLIT = "PublicTest"
MACRO_F1_HELP = (
    "A 0-1 score that counts every emotion equally (1 is perfect), so the rare ones such as "
    "disgust weigh as much as happy: it drops when the model neglects a rare emotion, which "
    "accuracy alone hides."
)
MACRO_F1_DEFINITION = "Macro-F1: the unweighted mean over the classes of F1, the harmonic mean of precision and recall."
LAB_ACCURACY = "Accuracy on lab photos (FER2013)"
REAL_ACCURACY = "Accuracy on real photos (ExpW)"  # short enough for a KPI or the sidebar; the help says "held back"
REAL_PHOTOS = "ExpW held-back photos"  # the cross_dataset.json row of the whole pipeline on real photos


def _split(metrics: dict | None, split: str = TEST_SPLIT) -> dict:
    if not metrics:
        return {}
    value = (metrics.get("splits") or {}).get(split)
    return value if isinstance(value, dict) else {}


def _pct(value: Any) -> str:
    return f"{float(value):.1%}" if isinstance(value, (int, float)) else NOT_MEASURED


def test_accuracy(metrics: dict | None) -> float | None:
    value = _split(metrics).get("accuracy")
    return float(value) if isinstance(value, (int, float)) else None


def model_version(manifest: dict | None, metrics: dict | None = None) -> str:
    """The deployed model's version; the metrics' only when there is no manifest at all."""
    if manifest is not None:
        return str(manifest.get("version") or "unversioned")
    if metrics and isinstance(metrics.get("model"), dict) and metrics["model"].get("version"):
        return str(metrics["model"]["version"])
    return "no model"


def metrics_match_model(manifest: dict | None, metrics: dict | None) -> bool:
    """Whether the metrics were computed on the model file that is deployed (same sha256)."""
    if not manifest or not metrics:
        return False
    model = metrics.get("model") or {}
    return bool(model.get("sha256")) and model.get("sha256") == manifest.get("sha256")


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    help: str
    measured: bool


def _kpi(label: str, value: str | None, help: str) -> Kpi:
    """A measured KPI, or one showing ``MISSING`` whose help starts with "Not yet measured"."""
    if value is None:
        return Kpi(label, MISSING, f"{NOT_MEASURED.capitalize()}. {help}", False)
    return Kpi(label, value, help, True)


def real_photo_scores(cross: dict | None) -> dict:
    """The scores on real photos: the ``ExpW held-back photos`` row of cross_dataset.json ({} without one).

    That row is the whole pipeline on the photos as they are (a missed face counts as wrong);
    a variant row (``... (scaled to 400-800 px)``) is used only when it is the only one.
    """
    rows = [r for r in (cross or {}).get("rows") or [] if isinstance(r, dict)]
    for exact in (True, False):
        for row in rows:
            name = str(row.get("dataset") or "")
            if (name == REAL_PHOTOS if exact else name.startswith(REAL_PHOTOS)) and _number(row.get("accuracy")):
                return row
    return {}


def whole_percent(value: float) -> str:
    """A 0-1 share as a whole percentage, halves rounded up (0.425 -> "43%", as a reader rounds)."""
    return f"{(Decimal(repr(float(value))) * 100).quantize(Decimal(1), ROUND_HALF_UP)}%"


def accuracy_kpis(metrics: dict | None, cross: dict | None) -> list[Kpi]:
    """The model's accuracy in a manager's words, always in two: on FER2013's lab crops and on
    real web photos (ExpW's held-back photos, whole pipeline). The Project Summary's KPIs and
    the sidebar show these; the exact figures are in their help."""
    test = _split(metrics)
    acc, f1, n = _number(test.get("accuracy")), _number(test.get("macro_f1")), test.get("n")
    lab_help = (
        f"Share of the {n:,} FER2013 test faces (small 48x48 grayscale crops, held out from training) "
        if isinstance(n, int)
        else "Share of the FER2013 test faces (small 48x48 grayscale crops, held out from training) "
    )
    lab_help += "labelled correctly" + (f": {acc:.1%}" if acc is not None else "") + "."
    lab_help += " People agree with these labels about 65% of the time."
    if f1 is not None:
        lab_help += f" Macro-F1 {f1:.3f} (0-1, every emotion counted equally, so rare ones such as disgust weigh as much as happy)."
    real = real_photo_scores(cross)
    real_acc = _number(real.get("accuracy"))
    faces = real.get("faces")
    counted = f"the {faces:,} labelled faces" if isinstance(faces, int) else "the labelled faces"
    real_help = (
        f"Share of {counted} in held-back in-the-wild web photos (ExpW, never trained on) labelled correctly "
        "through the whole pipeline, finding the face included (a face it misses counts as wrong)"
        + (f": {real_acc:.1%}." if real_acc is not None else ".")
        + " Expect this level on real customer photos, not the lab figure. These photos helped pick the "
        "best training round, so read it as a validation figure."
    )
    return [
        _kpi(LAB_ACCURACY, whole_percent(acc) if acc is not None else None, lab_help),
        _kpi(REAL_ACCURACY, whole_percent(real_acc) if real_acc is not None else None, real_help),
    ]


def real_photo_caption(cross: dict | None) -> str | None:
    """One line for beside a FER2013 accuracy: the real-photo figure, or None when not measured."""
    real = real_photo_scores(cross)
    acc = _number(real.get("accuracy"))
    if acc is None:
        return None
    faces = real.get("faces")
    of = f" of {faces:,} faces" if isinstance(faces, int) else ""
    return (
        f"On real web photos (ExpW, held back), through the whole pipeline: {acc:.1%}{of} labelled correctly "
        "(a missed face counts as wrong). The FER2013 figures above are on small lab crops; see Cross-dataset."
    )


def headline_kpis(
    metrics: dict | None, stats: dict | None, benchmark: dict | None, cross: dict | None = None
) -> list[Kpi]:
    """The four numbers on the Project Summary: accuracy on lab photos and on real photos
    (``accuracy_kpis``; macro-F1 is in the first one's help), dataset size, latency."""
    total = (stats or {}).get("total")
    latency = (benchmark or {}).get("median_photo_ms")

    def number(value: Any, fmt: str) -> str | None:
        return fmt.format(float(value)) if isinstance(value, (int, float)) else None

    return [
        *accuracy_kpis(metrics, cross),
        _kpi(
            "Dataset size",
            number(total, "{:,.0f} faces"),
            "48x48 grayscale faces in FER2013 (Training + PublicTest + PrivateTest).",
        ),
        _kpi(
            "Median latency",
            number(latency, "{:.0f} ms / photo"),
            "Median time to find and classify the faces of one photo on CPU.",
        ),
    ]


@dataclass
class ModelCard:
    facts: list[tuple[str, str]] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    performance: list[tuple[str, str]] = field(default_factory=list)
    intended_use: tuple[str, ...] = ()
    limitations: tuple[str, ...] = ()


INTENDED_USE = (
    "Aggregate customer-sentiment analytics: the mix of facial expressions across many photos "
    "or video frames (service feedback, campaign tests, UX research sessions).",
    "People are told that expression analysis runs (signage, consent form or study brief).",
    "Decisions use trends over many faces, never the label of one person.",
)
LIMITATIONS = (
    "It estimates a facial expression, not an inner emotional state; posed and cultural "
    "differences in expression are not accounted for.",
    "Trained on 48x48 grayscale web images (FER2013): low light, strong head pose, masks, "
    "glasses and small faces lower accuracy.",
    "Rare classes (disgust, fear) are recognised worst; see the per-class recall.",
    "Not for use on employees or students, or for any decision about an individual "
    "(emotion recognition at work and in education is banned in the EU AI Act since February 2025).",
    "FER2013 labels are noisy: FER+ re-annotators disagree with about a third of them, most of all "
    "on fear and disgust (see Data Analysis).",
)


# What each test-time view mode (src.engine.classifier) averages, for the card.
VIEWS_TEXT = {
    "none": "the face as seen",
    "flip": "the face and its mirror image, averaged",
    "zoom": "the face and its mirror image, each also zoomed 10% in and out: six views averaged",
    "scale": "the face and its mirror image, each zoomed 10% in and 10% out: four views averaged",
}


def model_card(manifest: dict | None, metrics: dict | None) -> ModelCard:
    """Model card sections built from the manifest (training config) and metrics (scores)."""
    manifest = manifest or {}
    training = manifest.get("training") or {}
    cfg = dict(training.get("config") or {})
    members = [m for m in training.get("members") or [] if isinstance(m, dict)]
    if members:  # an ensemble (src.engine.model.build_ensemble): its members were trained on the same data
        architecture = f"mean of {len(members)} CNNs: " + " + ".join(str(a) for a in cfg.get("members") or [])
        cfg = {str(m.get("name", i)): (m.get("training") or {}).get("config") or {} for i, m in enumerate(members)}
        data_cfg = next(iter(cfg.values()))
    else:
        architecture = f"{cfg.get('arch', '—')} CNN" + (f", width {cfg['width']}" if "width" in cfg else "")
        data_cfg = cfg
    facts: list[tuple[str, str]] = [
        ("Version", model_version(manifest or None, metrics)),
        ("File", str(manifest.get("file", "—"))),
        ("SHA-256", str(manifest.get("sha256", "—"))[:16] + ("…" if manifest.get("sha256") else "")),
        ("Created", str(manifest.get("created", "—"))),
        ("Architecture", architecture),
        ("Parameters", f"{training['parameters']:,}" if isinstance(training.get("parameters"), int) else "—"),
        (
            "Input",
            f"{manifest.get('input_size', config.IMAGE_SIZE)}x{manifest.get('input_size', config.IMAGE_SIZE)} "
            "grayscale face crop",
        ),
        ("Labels", ", ".join(manifest.get("class_names") or config.EMOTIONS)),
        ("Training data", _training_data(training, data_cfg)),
        ("Model selection", selection_text(training)),
        ("Framework", f"Keras {manifest.get('keras_version', '?')} ({manifest.get('backend', '?')})"),
        ("Softmax temperature", f"{float(manifest.get('temperature', 1.0)):.2f} (fitted on FER2013 PublicTest)"),
        ("Test-time views", VIEWS_TEXT.get(model_views(manifest), model_views(manifest))),
    ]
    shifts = (training.get("class_bias") or {}).get("bias") or {}
    if shifts:  # src.training.class_bias, folded into the output layers
        on = " and ".join((training["class_bias"].get("fitted_on") or {}).keys()) or "the validation faces"
        listed = ", ".join(f"{name} {float(value):+.2f}" for name, value in shifts.items())
        facts.append(("Class shifts (logits)", f"{listed} (fitted on {on} for accuracy and macro-F1)"))
    wild = wild_calibration(manifest)
    if _number(wild.get("temperature_wild")) is not None:
        facts.append(
            (
                "Temperature fitted on ExpW (not served)",
                f"{float(wild['temperature_wild']):.2f} (ECE on ExpW {_pct(wild.get('ece_after'))}, cross-fitted)",
            )
        )
    test, val = _split(metrics, TEST_SPLIT), _split(metrics, VAL_SPLIT)
    plus = ((metrics or {}).get("ferplus") or {}).get(TEST_SPLIT) or {}
    calibration = (metrics or {}).get("calibration") or {}
    performance = [
        ("PrivateTest accuracy (test)", _pct(test.get("accuracy"))),
        (
            "PrivateTest macro-F1",
            f"{test['macro_f1']:.3f}" if isinstance(test.get("macro_f1"), float) else NOT_MEASURED,
        ),
        ("PublicTest accuracy (validation)", _pct(val.get("accuracy"))),
        ("Accuracy vs FER+ majority labels", _pct(plus.get("accuracy"))),
        ("Calibration error (ECE) after scaling, FER2013 PrivateTest", _pct(calibration.get("ece_after"))),
        ("Calibration error (ECE) as served, ExpW held-back photos", _pct(wild.get("ece"))),
    ]
    return ModelCard(
        facts=facts, training=cfg, performance=performance, intended_use=INTENDED_USE, limitations=LIMITATIONS
    )


def _training_data(training: dict, cfg: dict) -> str:
    """What the model was fitted on, from the manifest's training record."""
    sources = training.get("data") if isinstance(training.get("data"), dict) else {}
    expw = sources.get("expw") if isinstance(sources.get("expw"), dict) else None
    target = " (FER+ vote distributions as targets)" if float(cfg.get("ferplus_weight") or 0) >= 1 else ""
    if expw:
        return (
            f"FER2013 Training{target} + ExpW in-the-wild photos ({expw.get('train_faces', '?'):,} faces, "
            f"{cfg.get('expw_repeat', 1)}x an epoch)"
        )
    rows = training.get("train_rows")
    return f"FER2013 Training ({rows:,} faces){target}" if isinstance(rows, int) else f"FER2013 Training{target}"


def _plain_training_data(training: dict) -> str:
    """What the model learned from, in a manager's words (``_training_data`` has the exact counts)."""
    members = [m for m in training.get("members") or [] if isinstance(m, dict)]
    cfg = (members[0].get("training") or {}).get("config") or {} if members else training.get("config") or {}
    sources = training.get("data") if isinstance(training.get("data"), dict) else {}
    expw = sources.get("expw") if isinstance(sources.get("expw"), dict) else None
    text = "Learned from FER2013's training faces (small 48x48 grayscale web images)"
    if expw and isinstance(expw.get("train_faces"), int):
        text += f" and {expw['train_faces']:,} faces from real web photos (ExpW)"
    weight = float(cfg.get("ferplus_weight") or 0)
    if weight >= 1:
        text += ", aiming at the votes of 10 human annotators per face (FER+) rather than one label"
    elif weight > 0:
        text += ", with the votes of 10 human annotators per face (FER+) as a second opinion"
    return text + "."


def selection_text(training: dict) -> str:
    """How the checkpoint was chosen: PublicTest alone, or with ExpW's held-back photos, or FER+."""
    val = training.get("val_rows")
    if isinstance(val, int):
        return f"FER2013 PublicTest ({val:,} faces)"
    if isinstance(val, dict) and val:
        names = {"fer": "FER2013 PublicTest", "expw": "ExpW held-back photos", "ferplus": "FER+ majority, PublicTest"}
        parts = [f"{names.get(k, k)} ({n:,} faces)" for k, n in val.items()]
        return ("mean accuracy of " if len(parts) > 1 else "") + " and ".join(parts)
    return "FER2013 PublicTest"


def report_table(split: dict | None, class_names: list[str] | tuple[str, ...] | None = None) -> pd.DataFrame:
    """The classification report of one split: precision, recall, F1, support per class, then averages."""
    split = split or {}
    per_class = split.get("per_class") or {}
    names = list(class_names or per_class)
    rows = []
    for name in names:
        scores = per_class.get(name) or {}
        rows.append({"class": name, **{k: scores.get(k) for k in ("precision", "recall", "f1", "support")}})
    table = pd.DataFrame(rows, columns=["class", "precision", "recall", "f1", "support"])
    if rows:
        support = pd.to_numeric(table["support"], errors="coerce").fillna(0)
        extra = [
            {
                "class": "macro avg",
                "precision": table["precision"].mean(),
                "recall": table["recall"].mean(),
                "f1": split.get("macro_f1", table["f1"].mean()),
                "support": int(support.sum()),
            },
            {
                "class": "weighted avg",
                "precision": (table["precision"] * support).sum() / max(1, support.sum()),
                "recall": (table["recall"] * support).sum() / max(1, support.sum()),
                "f1": split.get("weighted_f1", (table["f1"] * support).sum() / max(1, support.sum())),
                "support": int(support.sum()),
            },
        ]
        table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True)
    return table


def calibration_error(metrics: dict | None, split: str) -> tuple[float | None, str]:
    """A split's ECE as the app serves probabilities, and a note saying which it is.

    The app applies the temperature fitted on PublicTest, so the split it is reported on
    (PrivateTest) shows the ECE after scaling; other splits show the raw model's.
    """
    calibration = (metrics or {}).get("calibration") or {}
    raw = _split(metrics, split).get("ece")
    if calibration.get("reported_on") == split and calibration.get("ece_after") is not None:
        return calibration["ece_after"], (
            f"As served: after the temperature scaling fitted on PublicTest ({_pct(raw)} before). "
            "Average gap between confidence and accuracy; lower is better."
        )
    return raw, "Of the raw model, before temperature scaling. Average gap between confidence and accuracy."


def split_names(metrics: dict | None) -> list[str]:
    """Splits with scores, the test split first."""
    splits = list((metrics or {}).get("splits") or {})
    return sorted(splits, key=lambda s: (s != TEST_SPLIT, s))


def model_label(model_file: str) -> str:
    """How a model file is named in the dashboard: the deployed one, the FER+ one, the fast one, or its file name."""
    from pathlib import Path

    name = Path(model_file).name if model_file else ""
    if not name or Path(model_file).resolve() == Path(config.MODEL_FILE).resolve():
        return f"deployed model ({name or config.MODEL_FILE.name})"
    if "plus" in Path(name).stem:
        return f"FER+ model ({name})"
    if "compact" in Path(name).stem:
        return f"fast model ({name})"
    return name


@dataclass(frozen=True)
class TableColumn:
    """How one column of a dashboard table is headed and shown.

    ``kind`` is "text", "count", "percent" (the table holds 0-100, shown with one decimal)
    or "score" (a 0-1 score, shown with three decimals and said so in its header).
    """

    key: str
    label: str
    help: str
    kind: str = "text"


NOT_MEASURED_CELL = "—"  # what a table shows for a number that was not measured
FACES_FOUND_HELP = (
    "Share of the labelled faces the face detector found in the photos. "
    f"{NOT_MEASURED_CELL} means not measured: those faces were given as ready-cut crops."
)
CROSS_DATASET_COLUMNS = (
    TableColumn("dataset", "Dataset", "Which faces were scored."),
    TableColumn("faces", "Faces", "How many labelled faces were scored.", "count"),
    TableColumn(
        "accuracy", "Accuracy", "Share of the faces labelled correctly (a missed face counts as wrong).", "percent"
    ),
    TableColumn("macro_f1", "Macro-F1 (0-1, balanced over emotions)", MACRO_F1_HELP, "score"),
    TableColumn("faces_found", "Faces found", FACES_FOUND_HELP, "percent"),
)
COMPARISON_COLUMNS = (
    TableColumn("model", "Model", "A published model, a baseline or this project's."),
    TableColumn(
        "private_test_accuracy",
        "Accuracy (FER2013 test)",
        "Share of the held-out FER2013 test faces (PrivateTest) labelled correctly.",
        "percent",
    ),
    TableColumn("macro_f1", "Macro-F1 (0-1, balanced over emotions)", MACRO_F1_HELP, "score"),
    TableColumn("source", "Source", "Where the figure comes from."),
    TableColumn("notes", "Notes", "How the figure was obtained."),
)
REPORT_COLUMNS = (
    TableColumn("class", "Emotion", "The true label; the last two rows average over the emotions."),
    TableColumn("precision", "Precision", "When the model says this emotion, how often it is right.", "percent"),
    TableColumn("recall", "Recall", "Of the faces showing this emotion, the share the model recognises.", "percent"),
    TableColumn("f1", "F1 (0-1)", "Precision and recall in one 0-1 score (their harmonic mean).", "score"),
    TableColumn("support", "Faces", "Test faces with this label.", "count"),
)


def _number(value: Any) -> float | None:
    """A finite float, or None (missing, text, NaN): a table shows None as ``NOT_MEASURED_CELL``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def display_table(table: pd.DataFrame, columns: tuple[TableColumn, ...]) -> pd.DataFrame:
    """``table`` with the given columns in order and its numbers ready to show.

    Percent columns go from 0-1 to 0-100 (shown as "66.2%"); every missing or non-finite
    number becomes None (shown as ``NOT_MEASURED_CELL``, never "nan%" or "None"). The column
    keys stay; the headers come from ``TableColumn.label``.
    """
    out = pd.DataFrame(index=table.index)
    for column in columns:
        values = table[column.key] if column.key in table else pd.Series([None] * len(table), index=table.index)
        if column.kind == "text":
            out[column.key] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]
        else:
            scale = 100.0 if column.kind == "percent" else 1.0
            numbers = [_number(v) for v in values]
            out[column.key] = pd.array([None if n is None else n * scale for n in numbers], dtype="Float64")
    return out.reset_index(drop=True)


def cross_dataset_table(metrics: dict | None, cross: dict | None) -> pd.DataFrame:
    """One row per dataset: FER2013 and FER+ (from metrics.json), then ExpW and CK+ (cross_dataset.json).

    Shares are 0-1 and missing numbers None (``faces_found`` is None for crops, which need
    no detection); ``display_table(table, CROSS_DATASET_COLUMNS)`` readies it for the page.
    """
    rows = []
    test = _split(metrics)
    if test.get("accuracy") is not None:
        rows.append(
            {
                "dataset": "FER2013 PrivateTest (48x48 crops)",
                "faces": test.get("n"),
                "accuracy": test.get("accuracy"),
                "macro_f1": test.get("macro_f1"),
                "faces_found": None,
            }
        )
    plus = ((metrics or {}).get("ferplus") or {}).get(TEST_SPLIT) or {}
    if plus.get("accuracy") is not None:
        rows.append(
            {
                "dataset": "FER+ majority vote, PrivateTest",
                "faces": plus.get("n"),
                "accuracy": plus.get("accuracy"),
                "macro_f1": plus.get("macro_f1"),
                "faces_found": None,
            }
        )
    for row in (cross or {}).get("rows") or []:
        rows.append({key: row.get(key) for key in ("dataset", "faces", "accuracy", "macro_f1", "faces_found")})
    table = pd.DataFrame(rows, columns=["dataset", "faces", "accuracy", "macro_f1", "faces_found"], dtype=object)
    return table.astype(object).where(table.notna(), None)


OPEN_MOUTH = ("angry", "fear", "surprise")  # expressions that all open the mouth, often mistaken for each other


def confusion_tables(metrics: dict | None, cross: dict | None) -> dict[str, dict]:
    """The confusion tables to compare across datasets, by dataset name: FER2013's test split
    (metrics.json) and each cross_dataset.json row that holds one. Each is ``{"true": labels,
    "predicted": labels, "counts": rows}`` (rows are true labels; cross-dataset tables end with a
    ``(no face)`` column). A malformed table is left out rather than shown wrong."""
    tables = {}
    test = _split(metrics)
    names = list((metrics or {}).get("class_names") or [])
    if test.get("confusion_matrix") and names:
        tables["FER2013 PrivateTest (48x48 crops)"] = {
            "true": names,
            "predicted": names,
            "counts": test["confusion_matrix"],
        }
    for row in (cross or {}).get("rows") or []:
        if isinstance(row, dict) and isinstance(row.get("confusion"), dict) and row.get("dataset"):
            tables[str(row["dataset"])] = row["confusion"]
    return {name: t for name, t in tables.items() if _well_formed(t)}


def _well_formed(table: dict) -> bool:
    try:
        counts = np.asarray(table["counts"], float)
        return counts.shape == (len(table["true"]), len(table["predicted"])) and counts.size > 0
    except (KeyError, TypeError, ValueError):
        return False


def open_mouth_sentence(table: dict, most: int = 3) -> str:
    """The largest confusions among the open-mouth expressions in a confusion ``table``, in
    words ("" when it holds fewer than two of them or none is confused), e.g. "Among open-mouth expressions, fear
    is read as surprise 21% of the time, ...". Shares are of each true label's faces."""
    counts = np.asarray(table["counts"], float)
    true, predicted = list(table["true"]), list(table["predicted"])
    pairs = []
    for t in OPEN_MOUTH:
        if t not in true:
            continue
        total = counts[true.index(t)].sum()
        for p in OPEN_MOUTH:
            if p != t and p in predicted and total > 0:
                pairs.append((counts[true.index(t), predicted.index(p)] / total, t, p))
    pairs = [pair for pair in pairs if pair[0] >= 0.005]  # what rounds to 0% is no confusion
    if not pairs:
        return ""
    pairs.sort(key=lambda x: -x[0])
    words = [f"{t} is read as {p} {share:.0%} of the time" for share, t, p in pairs[:most]]
    return "Among open-mouth expressions, " + ", ".join(words) + "."


def comparison_table(comparison: pd.DataFrame | None, names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """model_comparison.csv ready to show: best accuracy first, missing numbers None.

    ``names`` maps version ids (such as ``v3-ensemble-w24-w48``) to plain names, which
    replace them in the notes.
    """
    if comparison is None or comparison.empty:
        return display_table(pd.DataFrame(), COMPARISON_COLUMNS)
    table = comparison.sort_values("private_test_accuracy", ascending=False, na_position="last")
    if names and "notes" in table:
        notes = table["notes"].astype(object)

        def plain(note: Any) -> Any:
            if not isinstance(note, str):
                return note
            for version, name in names.items():
                note = note.replace(f"version {version}", name).replace(version, name)
            return note

        table = table.assign(notes=[plain(n) for n in notes])
    return display_table(table, COMPARISON_COLUMNS)


# --- plain words -------------------------------------------------------------------------

_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def plain_name(manifest: dict | None) -> str:
    """A name a manager reads for a model, e.g. "Emotion model v3 (two averaged CNNs)".

    Built from the manifest's version (its leading ``vN``) and training record; the exact
    version id (``model_version``) belongs with the details for data scientists.
    """
    if manifest is None:
        return "no model"
    match = re.match(r"v(\d+(?:\.\d+)?)", str(manifest.get("version") or ""))
    name = f"Emotion model v{match.group(1)}" if match else "Emotion model"
    training = manifest.get("training") or {}
    cfg = training.get("config") or {}
    members = [m for m in training.get("members") or [] if isinstance(m, dict)]
    if members:
        kind = f"{_COUNT_WORDS.get(len(members), str(len(members)))} averaged CNNs"
    elif cfg.get("arch"):
        kind = "one compact CNN" if cfg.get("arch") == "compact" else "one CNN"
    else:
        return name
    if float(cfg.get("ferplus_weight") or 0) >= 1:
        kind += ", fitted to FER+ votes"
    return f"{name} ({kind})"


@dataclass(frozen=True)
class CardSection:
    title: str
    lines: tuple[str, ...]


def wild_calibration(manifest: dict | None) -> dict:
    """The manifest's calibration on real photos (``src.training.wild_calibration``), {} without one."""
    block = (manifest or {}).get("calibration_wild")
    return block if isinstance(block, dict) and _number(block.get("ece")) is not None else {}


def lab_ece(manifest: dict | None, metrics: dict | None) -> float | None:
    """The served ECE on FER2013's test crops: metrics.json's, else the manifest's copy."""
    value = _number(((metrics or {}).get("calibration") or {}).get("ece_after"))
    return value if value is not None else _number(((manifest or {}).get("metrics") or {}).get("ece_after"))


def calibration_sentences(manifest: dict | None, metrics: dict | None) -> list[str]:
    """What the confidence figures mean, said for the data each holds on: FER2013's lab crops
    (where the served temperature was fitted) and real web photos (ExpW, held back), with the
    confidence under which a face is marked doubtful there (``config.DOUBT_MIN_CONFIDENCE``)."""
    lines = []
    lab = lab_ece(manifest, metrics)
    if _number((manifest or {}).get("temperature")) not in (None, 1.0):
        # A fitted temperature (src.training.evaluation) is what makes them calibrated, on FER2013.
        lines.append(
            "On lab photos (FER2013's test crops) its confidence figures are calibrated: a face labelled 70% "
            "is right about 70% of the time" + (f" (ECE {lab:.1%})." if lab is not None else ".")
        )
    wild = wild_calibration(manifest)
    if not wild:
        lines.append(f"How far its confidence holds on real photos is {NOT_MEASURED}.")
        return lines
    acc, conf, ece = _number(wild.get("accuracy")), _number(wild.get("mean_confidence")), float(wild["ece"])
    at_70 = _number((wild.get("right_at_70") or {}).get("accuracy"))
    if acc is not None and conf is not None and conf - acc > 0.02:
        sentence = "On real web photos (ExpW, held back) it is over-confident"
        sentence += (
            f": a face labelled 70% is right about {whole_percent(at_70)} of the time" if at_70 is not None else ""
        )
        sentence += (
            f", and on average it is {whole_percent(conf)} sure but right on {whole_percent(acc)} of the faces it finds"
        )
        sentence += f" (ECE {ece:.1%}): read one face's confidence there as a ceiling"
    elif acc is not None and conf is not None and acc - conf > 0.02:
        sentence = (
            f"On real web photos (ExpW, held back) it is under-confident: on average {whole_percent(conf)} sure "
            f"and right {whole_percent(acc)} of the time (ECE {ece:.1%})"
        )
    else:
        sentence = f"On real web photos (ExpW, held back) its confidence figures hold too (ECE {ece:.1%})"
    wild_t = _number(wild.get("temperature_wild"))
    if wild_t is not None and config.DOUBT_MIN_CONFIDENCE > 0:
        # src.engine.doubt rescales each face's confidence with it to mark the unsure ones.
        sentence += (
            f". Rescaled with the temperature fitted there ({wild_t:.2f}), a face under "
            f"{whole_percent(config.DOUBT_MIN_CONFIDENCE)} sure on real photos is marked doubtful"
        )
    lines.append(f"{sentence}.")
    return lines


def readable_card(manifest: dict | None, metrics: dict | None, cross: dict | None = None) -> list[CardSection]:
    """The model card in plain words: what it is, intended use, data, training, metrics, limitations.

    ``cross`` (cross_dataset.json) puts the accuracy on real photos beside the FER2013 one.
    The exact fields (version id, file hash, training configuration) stay in ``model_card``
    for the data scientists' view.
    """
    card = model_card(manifest, metrics)
    facts = dict(card.facts)
    manifest = manifest or {}
    training = manifest.get("training") or {}
    labels = manifest.get("class_names") or config.EMOTIONS
    what = [
        f"{plain_name(manifest or None)}: reads {len(labels)} facial expressions "
        f"({', '.join(labels)}) from each face it finds.",
    ]
    if manifest.get("created"):
        what.append(f"Published on {str(manifest['created'])[:10]}.")
    data = [
        _plain_training_data(training),
        "The best training round was picked by its score on faces kept aside from training: "
        f"{facts['Model selection']}.",
        "The test faces (FER2013 PrivateTest) played no part in training or in that choice.",
    ]
    members = [m for m in training.get("members") or [] if isinstance(m, dict)]
    if members:
        count = _COUNT_WORDS.get(len(members), str(len(members))).capitalize()
        trained = [
            f"{count} convolutional neural networks (CNNs) each read the face and their answers are "
            "averaged, which is steadier than any one of them alone."
        ]
    else:
        trained = ["A convolutional neural network (CNN), the usual kind of model for reading images."]
    if isinstance(training.get("parameters"), int):
        trained.append(f"{training['parameters'] / 1e6:.1f} million learned numbers (parameters).")
    seconds = training.get("wall_seconds_total")
    if isinstance(seconds, (int, float)) and seconds > 0:
        trained.append(f"Training took {seconds / 3600:.1f} hours.")
    trained.extend(calibration_sentences(manifest, metrics))
    test = _split(metrics)
    plus = ((metrics or {}).get("ferplus") or {}).get(TEST_SPLIT) or {}
    scores: list[str] = []
    if _number(test.get("accuracy")) is not None:
        n = test.get("n")
        scores.append(
            f"Labels {_pct(test['accuracy'])} of "
            + (f"{n:,} " if isinstance(n, int) else "the ")
            + "held-out test faces correctly (small 48x48 lab crops of FER2013; people agree with these "
            "labels about 65% of the time)."
        )
    real = real_photo_scores(cross)
    if _number(real.get("accuracy")) is not None:
        faces = real.get("faces")
        scores.append(
            f"On real web photos it never trained on (ExpW, held back) it labels {_pct(real['accuracy'])} of "
            + (f"{faces:,} " if isinstance(faces, int) else "the ")
            + "faces correctly, finding the face included: expect this level on customer photos."
        )
    if _number(test.get("macro_f1")) is not None:
        scores.append(
            f"Macro-F1 {float(test['macro_f1']):.3f} on a 0-1 scale: the score that counts every emotion equally, "
            "so the rare ones (disgust, fear) weigh as much as happy."
        )
    if _number(plus.get("accuracy")) is not None:
        scores.append(
            f"Agrees with the majority of 10 human annotators (FER+) on {_pct(plus['accuracy'])} of the test faces."
        )
    if not scores:
        scores.append(f"Scores: {NOT_MEASURED} (run the evaluation to fill them in).")
    return [
        CardSection("What it is", tuple(what)),
        CardSection("Intended use", card.intended_use),
        CardSection("Data", tuple(data)),
        CardSection("Training", tuple(trained)),
        CardSection("Metrics", tuple(scores)),
        CardSection("Limitations", card.limitations),
    ]


ECE_DEFINITION = (
    "ECE (expected calibration error): the mean gap between confidence and accuracy over "
    "equal-width confidence bins, weighted by the faces in each."
)


def technical_details(manifest: dict | None, metrics: dict | None, scores_from: str = "") -> list[str]:
    """The exact terms behind the plain words, as Markdown lines, for the data scientists' expander."""
    manifest = manifest or {}
    sha = str(manifest.get("sha256") or "")
    lines = [f"Version id: `{model_version(manifest or None, metrics)}`"]
    if manifest.get("file"):
        lines.append(f"Model file: `{manifest['file']}`" + (f", sha256 `{sha[:16]}…`" if sha else ""))
    if scores_from:
        lines.append(f"Scores read from `{scores_from}` (metrics.json, roc.json, history.csv, cross_dataset.json)")
    wild = wild_calibration(manifest)
    if wild:
        lines.append(
            f"Calibration on real photos (`calibration_wild` in the manifest, `src/training/wild_calibration.py`): "
            f"ECE {_pct(wild.get('ece'))} as served on {wild.get('faces', '?'):,} faces found in ExpW's held-back "
            f"photos; a temperature fitted there ({_number(wild.get('temperature_wild')) or '?'}, not served) "
            f"gives {_pct(wild.get('ece_after'))}, cross-fitted by photo halves"
        )
    lines += [
        "Splits: FER2013 `PrivateTest` is the held-out test set, `PublicTest` the validation set.",
        MACRO_F1_DEFINITION,
        ECE_DEFINITION,
    ]
    return lines
