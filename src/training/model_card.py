"""What the dashboard says about the model: manifest facts, headline KPIs and the model card.

Works from the model's JSON manifest (``src.engine.manifest``, no Keras import), so the
summary pages and the sidebar render without loading TensorFlow. Missing numbers become
"not yet measured" rather than errors (a headline KPI shows "—" and says so in its help).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from src import config

NOT_MEASURED = "not yet measured"
MISSING = "—"  # a headline KPI without a number: short enough for st.metric
TEST_SPLIT = "PrivateTest"
VAL_SPLIT = "PublicTest"


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


def headline_kpis(metrics: dict | None, stats: dict | None, benchmark: dict | None) -> list[Kpi]:
    """The four numbers on the Project Summary: accuracy, macro-F1, dataset size, latency."""
    test = _split(metrics)
    acc, f1 = test.get("accuracy"), test.get("macro_f1")
    total = (stats or {}).get("total")
    latency = (benchmark or {}).get("median_photo_ms")
    n = test.get("n")

    def number(value: Any, fmt: str) -> str | None:
        return fmt.format(float(value)) if isinstance(value, (int, float)) else None

    return [
        _kpi(
            "Test accuracy",
            number(acc, "{:.1%}"),
            f"Share of the {n:,} held-out FER2013 PrivateTest faces labelled correctly "
            "(published human accuracy is about 65%)."
            if isinstance(n, int)
            else "Accuracy on the held-out FER2013 PrivateTest split.",
        ),
        _kpi(
            "Macro-F1",
            number(f1, "{:.3f}"),
            "F1 averaged over the 7 emotions with equal weight, so rare classes such as "
            "disgust count as much as happy.",
        ),
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
        ("Softmax temperature", f"{float(manifest.get('temperature', 1.0)):.2f}"),
    ]
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
        ("Calibration error (ECE) after scaling", _pct(calibration.get("ece_after"))),
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


def cross_dataset_table(metrics: dict | None, cross: dict | None) -> pd.DataFrame:
    """One row per dataset: FER2013 and FER+ (from metrics.json), then ExpW and CK+ (cross_dataset.json)."""
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
        rows.append(
            {
                "dataset": row.get("dataset"),
                "faces": row.get("faces"),
                "accuracy": row.get("accuracy"),
                "macro_f1": row.get("macro_f1"),
                "faces_found": row.get("faces_found"),
            }
        )
    table = pd.DataFrame(rows, columns=["dataset", "faces", "accuracy", "macro_f1", "faces_found"])
    # Crops need no detection: "—" rather than an empty cell.
    table["faces_found"] = [f"{v:.1%}" if isinstance(v, (int, float)) else "—" for v in table["faces_found"]]
    return table
