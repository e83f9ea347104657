"""A per-class shift of the output logits, fitted on the validation faces: no blind class.

The nets learn FER2013's class mix and their own habits: on held-back web photos (ExpW) the
v3 pair called 78% of angry faces angry but only 15% of disgusted faces disgusted, and it
over-calls angry. Adding a constant ``b[c]`` to the logit of every class ``c`` (post-hoc
logit adjustment, Menon et al. 2021) trades some of a favoured class's recall for a neglected
one's. ``b`` is chosen by coordinate ascent on the validation faces only, PublicTest and the
held-back ExpW crops, maximising the mean of accuracy and macro-F1 over them; PrivateTest
stays for the report.

``fold`` adds ``b`` to the bias of each output layer (the ``emotion`` softmax of the model, or
of each member of an ensemble), so the model keeps its architecture, its cost and its ONNX
twins. The fit scores exactly what the folded model computes: each member's softmax of each
test-time view shifted, then averaged (``shifted``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score

from src import config

OUTPUT_LAYER = "emotion"
SPAN = 0.8  # each coordinate step tries shifts in [-SPAN, SPAN] around the current value
STEPS = 17
ROUNDS = 4


@dataclass(frozen=True)
class Fit:
    """The shift, and the objective before and after on each validation set."""

    bias: np.ndarray  # (k,) logit shifts, mean 0
    before: dict[str, dict[str, float]]  # {set: {"accuracy", "macro_f1", "lowest_recall"}}
    after: dict[str, dict[str, float]]

    def record(self, class_names: Sequence[str]) -> dict:
        """What the manifest keeps of it."""
        return {
            "bias": {name: round(float(b), 4) for name, b in zip(class_names, self.bias)},
            "objective": "mean of accuracy and macro-F1 over the validation sets",
            "before": self.before,
            "after": self.after,
        }


def output_layers(model) -> list:
    """The softmax output layer of the model, or of each member of an ensemble."""
    from src.engine.model import ensemble_members

    members = ensemble_members(model) or [model]
    return [member.get_layer(OUTPUT_LAYER) for member in members]


def view_probs(model, images: np.ndarray, mode: str | None = None, batch_size: int = 512) -> np.ndarray:
    """(members, views, N, k): each member's probabilities for each test-time view of (N, H, W)
    uint8 faces, as the model is served (pass its views, ``ModelInfo.views``; default ``config.TTA``)."""
    from src.engine.classifier import tta_views
    from src.engine.model import ensemble_members
    from src.engine.preprocessing import resize_faces

    faces = resize_faces(images, int(model.input_shape[1])).astype(np.float32)
    views = tta_views(faces[..., None], mode or config.TTA)
    members = ensemble_members(model) or [model]
    flat = views.reshape(-1, *views.shape[2:])
    out = []
    for member in members:
        probs = np.asarray(member.predict(flat, batch_size=batch_size, verbose=0), np.float64)
        out.append(probs.reshape(len(views), len(images), -1))
    return np.stack(out)


def shifted(probs: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(N, k): the folded model's output from ``view_probs``: each softmax shifted by ``bias``
    (p * e^b, renormalised), then the mean over members and views."""
    scaled = probs * np.exp(np.asarray(bias, np.float64))
    scaled /= scaled.sum(axis=-1, keepdims=True)
    return scaled.mean(axis=(0, 1))


def scores(probs: np.ndarray, labels: np.ndarray, k: int) -> dict[str, float]:
    """Accuracy, macro-F1 and the lowest class recall of (N, k) probabilities."""
    predicted = probs.argmax(axis=1)
    recalls = [float((predicted[labels == c] == c).mean()) for c in range(k) if (labels == c).any()]
    return {
        "accuracy": round(float((predicted == labels).mean()), 4),
        "macro_f1": round(float(f1_score(labels, predicted, labels=range(k), average="macro", zero_division=0)), 4),
        "lowest_recall": round(min(recalls), 4),
    }


def fit(sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> Fit:
    """The shift maximising the mean of accuracy and macro-F1 over ``sets`` ({name: (view_probs,
    labels)}), by coordinate ascent from 0 (a shift is kept only when it gains)."""
    if not sets:
        raise ValueError("fitting a class bias needs at least one validation set")
    k = next(iter(sets.values()))[0].shape[-1]

    def objective(bias: np.ndarray) -> float:
        total = 0.0
        for probs, labels in sets.values():
            s = scores(shifted(probs, bias), labels, k)
            total += s["accuracy"] + s["macro_f1"]
        return total / (2 * len(sets))

    bias = np.zeros(k)
    best = objective(bias)
    for _ in range(ROUNDS):
        moved = False
        for c in range(k):
            for step in np.linspace(-SPAN, SPAN, STEPS):
                trial = bias.copy()
                trial[c] += step
                value = objective(trial)
                if value > best + 1e-6:
                    best, bias, moved = value, trial, True
        if not moved:
            break
    bias -= bias.mean()  # a common shift changes nothing: keep the numbers readable
    before = {name: scores(shifted(p, np.zeros(k)), y, k) for name, (p, y) in sets.items()}
    after = {name: scores(shifted(p, bias), y, k) for name, (p, y) in sets.items()}
    return Fit(bias, before, after)


def fold(model, bias: np.ndarray) -> None:
    """Add ``bias`` to the bias of every output layer of ``model`` (in place)."""
    for layer in output_layers(model):
        kernel, current = layer.get_weights()
        if current.shape != np.shape(bias):
            raise ValueError(f"the model has {current.shape[0]} classes, the bias {np.shape(bias)[0]}")
        layer.set_weights([kernel, (current + np.asarray(bias, current.dtype)).astype(current.dtype)])
