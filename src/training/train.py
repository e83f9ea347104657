"""Training: one call with a profile, seeded, augmented, checkpointed and resumable.

Protocol: fit on Training, select the checkpoint on PublicTest; PrivateTest is
never looked at here. Backend-agnostic: no ``tf.*`` calls, so the same script
runs with KERAS_BACKEND=jax on a GPU machine.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras
import numpy as np
from keras import layers

from src import config
from src.engine.manifest import read_manifest, sha256_file, write_manifest
from src.engine.model import build_model
from src.training.data import FerData, ferplus_majority, load_cached, load_expw_cached


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "compact"
    width: int = 24
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    # Exponent on inverse class frequency: 0 = no weighting, 1 = fully balanced.
    # 0.5 lifts disgust/fear recall without giving up much accuracy.
    class_weight_power: float = 0.5
    rotation_deg: float = 12.0
    shift: float = 0.1
    zoom: float = 0.1
    dropout: float = 0.3
    seed: int = 42
    limit_train: int | None = None  # subsample Training (smoke tests)
    # What real photos add to FER2013's faces: lighting, blur and occlusion (0 turns each off).
    brightness: float = 0.0
    contrast: float = 0.0
    blur_probability: float = 0.0
    erasing_probability: float = 0.0
    # Share of the target taken from the FER+ votes (where a face has them) instead of the
    # FER2013 label: the ten annotators' distribution is a cleaner, softer target.
    ferplus_weight: float = 0.0
    # ExpW training faces (when --expw is given) are shown this many times an epoch: 4k
    # in-the-wild faces beside FER2013's 29k.
    expw_repeat: int = 3
    # bfloat16 compute on oneDNN's AMX kernels (2.4x on the vgg net here); weights stay float32.
    mixed_precision: bool = False
    # A .keras model of the same architecture whose weights start the run (a warm start).
    init_from: str | None = None
    # Distillation: .keras teachers (any architecture) whose averaged, flip-TTA probabilities
    # on each training face replace this share of its target; softened by the temperature.
    # Only the targets are softened (one cross-entropy, the student at temperature 1), so a
    # temperature above 1 teaches the student to be unsure rather than the teachers' dark
    # knowledge: at 2 the warm-started student lost 2 points in its first epoch. Default 1.
    teachers: tuple[str, ...] = ()
    distil_weight: float = 0.0
    distil_temperature: float = 1.0
    # Side of the net's input in pixels. FER2013's 48 px faces are enlarged to it; ExpW's
    # aligned crops are taken at it, so a larger input sees real photos at more pixels
    # (measured: 64 px, README "Open-mouth confusions").
    input_size: int = config.IMAGE_SIZE


# The augmentation real photos need (lighting, blur, occlusion, tilt), bf16 on AMX.
_REAL_PHOTOS = dict(
    rotation_deg=15.0,
    brightness=0.25,
    contrast=0.35,
    blur_probability=0.25,
    erasing_probability=0.25,
    mixed_precision=True,
)

PROFILES: dict[str, TrainConfig] = {
    # Fits the 2-core CPU: ~25M MACs a face, a few minutes an epoch.
    "cpu": TrainConfig(),
    # FER2013 + ExpW with the augmentations real photos need, warm-started from a FER2013 model.
    "wild": TrainConfig(epochs=22, learning_rate=1e-3, warmup_epochs=1, ferplus_weight=0.3, **_REAL_PHOTOS),
    # The FER+ model: the ten annotators' vote distribution as the target (rows FER+ dropped
    # as not-a-face keep their FER2013 label), warm-started from a 7-class model.
    "ferplus": TrainConfig(
        epochs=16,
        learning_rate=5e-4,
        warmup_epochs=1,
        label_smoothing=0.0,
        class_weight_power=0.3,
        ferplus_weight=1.0,
        **_REAL_PHOTOS,
    ),
    # A wider teacher for distillation (~4x the compact net's compute): trained from scratch
    # across sessions (resumable), never bundled itself since it classifies too slowly.
    "teacher": TrainConfig(
        width=48, epochs=40, learning_rate=2e-3, warmup_epochs=2, ferplus_weight=0.3, **_REAL_PHOTOS
    ),
    # The bundled net (compact w24) taught by the teachers above (--teacher, repeatable):
    # warm-start it from the current bundled model with --init-from. Measured with softened
    # targets (temperature 2): restarted at 1e-3 (16 epochs) the v2 model fell from 0.530 to
    # 0.50 mean validation accuracy and came back only to 0.525; at 3e-4 it fell as far.
    "student": TrainConfig(
        epochs=10, learning_rate=3e-4, warmup_epochs=0, ferplus_weight=0.3, distil_weight=0.7, **_REAL_PHOTOS
    ),
    # The big net of engine v3 (issue #18): VGG-class, 4.8M parameters, bf16 on AMX at 130-180
    # images/s on an idle machine here (4-5 min an epoch), resumed across sessions at nice 19.
    # Its first run (schedule cut to 37 epochs, best epoch 34) ended at 0.80 accuracy on its
    # augmented training faces against 0.65 on PublicTest: a longer run wants more regularisation.
    "big": TrainConfig(
        arch="vgg",
        width=64,
        epochs=100,
        learning_rate=1e-3,
        weight_decay=5e-4,
        dropout=0.4,
        warmup_epochs=3,
        ferplus_weight=0.3,
        **_REAL_PHOTOS,
    ),
    # For a lent GPU (run with KERAS_BACKEND=jax): a VGG-class net, long schedule.
    "gpu": TrainConfig(
        arch="vgg",
        width=64,
        epochs=120,
        batch_size=128,
        learning_rate=1e-3,
        weight_decay=5e-4,
        dropout=0.4,
        warmup_epochs=5,
    ),
    # Seconds, for tests and pipeline checks.
    "smoke": TrainConfig(width=8, epochs=1, batch_size=32, warmup_epochs=0, limit_train=512),
}


def class_weights(labels: np.ndarray, num_classes: int, power: float) -> np.ndarray:
    """Per-class weights ∝ (1/frequency)^power, normalised to mean 1 over samples."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1)) ** power, 0.0)
    weights /= (weights[labels]).mean()
    return weights.astype(np.float32)


def augmenter(cfg: TrainConfig, seed: int) -> keras.Sequential:
    value_range = (0.0, 255.0)
    steps = [
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(cfg.rotation_deg / 360.0, fill_mode="reflect", seed=seed + 1),
        layers.RandomTranslation(cfg.shift, cfg.shift, fill_mode="reflect", seed=seed + 2),
        layers.RandomZoom(cfg.zoom, fill_mode="reflect", seed=seed + 3),
    ]
    if cfg.brightness:
        steps.append(layers.RandomBrightness(cfg.brightness, value_range=value_range, seed=seed + 4))
    if cfg.contrast:
        steps.append(layers.RandomContrast(cfg.contrast, value_range=value_range, seed=seed + 5))
    if cfg.blur_probability:
        steps.append(
            layers.RandomGaussianBlur(
                factor=cfg.blur_probability, kernel_size=3, sigma=1.0, value_range=value_range, seed=seed + 6
            )
        )
    if cfg.erasing_probability:
        steps.append(
            layers.RandomErasing(
                factor=cfg.erasing_probability, scale=(0.02, 0.2), value_range=value_range, seed=seed + 7
            )
        )
    return keras.Sequential(steps, name="augment")


class WallClock(keras.callbacks.Callback):
    """Adds this session's wall time to run.json after every epoch.

    A session's background jobs end with it, often mid-run: counting at the end of
    ``fit`` only would drop every session that was cut short.
    """

    def __init__(self, run_file: Path, earlier_seconds: float, start: float) -> None:
        super().__init__()
        self.run_file, self.earlier, self.start = run_file, earlier_seconds, start

    def record(self) -> dict:
        info = json.loads(self.run_file.read_text())
        wall = round(time.time() - self.start, 1)
        info["wall_seconds_last_session"] = wall
        info["wall_seconds_total"] = round(self.earlier + wall, 1)
        self.run_file.write_text(json.dumps(info, indent=2))
        return info

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.record()


class ValidationSets(keras.callbacks.Callback):
    """Accuracy on each validation set at every epoch end, and their mean for selection.

    Logged as ``val_<name>_accuracy`` and ``val_mean_accuracy`` (history.csv): FER2013's
    PublicTest alone would select for lab faces, ExpW's held-back photos alone for 1k faces.
    """

    def __init__(self, inner: keras.Model, sets: dict[str, tuple[np.ndarray, np.ndarray]], batch_size: int = 512):
        super().__init__()
        self.inner, self.sets, self.batch_size = inner, sets, batch_size

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        accs = []
        for name, (x, labels) in self.sets.items():
            probs = self.inner.predict(x, batch_size=self.batch_size, verbose=0)
            acc = float(np.mean(np.argmax(probs, axis=1) == labels))
            logs[f"val_{name}_accuracy"] = acc
            accs.append(acc)
        logs["val_mean_accuracy"] = float(np.mean(accs))


class SaveBest(keras.callbacks.Callback):
    """Save the inference model (not the augmenting wrapper) when the monitored value improves.

    With mixed precision the weights go into a float32 twin first, so the saved model
    runs in float32 wherever it is loaded.
    """

    def __init__(self, inner: keras.Model, path: Path, state_file: Path, monitor: str, twin: keras.Model | None = None):
        super().__init__()
        self.inner, self.path, self.state_file, self.monitor, self.twin = inner, path, state_file, monitor, twin
        self.best = json.loads(state_file.read_text())["best"] if state_file.exists() else -1.0

    def on_epoch_end(self, epoch, logs=None):
        value = float((logs or {}).get(self.monitor, -1.0))
        if value > self.best:
            self.best = value
            if self.twin is not None:
                self.twin.set_weights(self.inner.get_weights())
            (self.twin or self.inner).save(self.path)
            self.state_file.write_text(json.dumps({"best": value, "monitor": self.monitor, "epoch": epoch + 1}))


def _targets(data: FerData, num_classes: int, ferplus_weight: float) -> np.ndarray:
    """One-hot labels, blended with the normalised FER+ votes where a face has them."""
    y = keras.utils.to_categorical(data.labels, num_classes).astype(np.float32)
    if ferplus_weight and data.ferplus is not None:
        votes = data.ferplus.astype(np.float32)
        total = votes.sum(axis=1, keepdims=True)
        has = total[:, 0] > 0
        y[has] = (1 - ferplus_weight) * y[has] + ferplus_weight * votes[has] / total[has]
    return y


def teacher_views(teacher) -> str:
    """The test-time views a teacher's soft targets are averaged over: those its manifest names
    (the views it is served and was scored with), else ``config.TTA`` (a run's ``best.keras``)."""
    from src.engine.classifier import model_views
    from src.engine.manifest import manifest_path

    if isinstance(teacher, (str, Path)) and manifest_path(teacher).exists():
        return model_views(read_manifest(teacher, strict=False))
    return model_views(None)


def teacher_probs(teachers, x: np.ndarray, temperature: float, batch_size: int = 512) -> np.ndarray:
    """The teachers' mean probabilities on ``x`` (each averaged over its own test-time views,
    ``teacher_views``), softened by ``temperature``."""
    from src.engine.classifier import tta_averaged
    from src.engine.preprocessing import resize_faces

    total = np.zeros((len(x), len(config.EMOTIONS)), np.float64)
    for teacher in teachers:
        model = keras.models.load_model(teacher, compile=False) if isinstance(teacher, (str, Path)) else teacher
        predict = lambda batch, m=model: m.predict(batch, batch_size=batch_size, verbose=0)  # noqa: E731
        faces = resize_faces(x, int(model.input_shape[1]))  # a teacher may read another size
        total += tta_averaged(predict, faces, teacher_views(teacher))
    probs = np.clip(total / len(teachers), 1e-8, 1.0) ** (1.0 / temperature)
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def cached_teacher_probs(run_dir: Path, teachers, x: np.ndarray, temperature: float) -> np.ndarray:
    """``teacher_probs``, kept in the run folder (``teacher_probs.npz``) so that a resumed run does
    not run a big teacher over the training set again; recomputed when the teachers (by sha256),
    their views, the temperature or the faces differ."""
    import hashlib

    key = json.dumps(
        {
            "teachers": [sha256_file(t) for t in teachers],
            "views": [teacher_views(t) for t in teachers],
            "temperature": float(temperature),
            "faces": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest(),
        },
        sort_keys=True,
    )
    cache = run_dir / "teacher_probs.npz"
    if cache.exists():
        with np.load(cache) as saved:
            if str(saved["key"]) == key:
                return saved["probs"]
    probs = teacher_probs(teachers, x, temperature)
    scratch = run_dir / ".teacher_probs.tmp.npz"
    np.savez(scratch, probs=probs, key=np.array(key))
    scratch.replace(cache)
    return probs


def _x(data: FerData) -> np.ndarray:
    return data.images[..., None].astype(np.float32)


def data_fingerprint(path: str | Path) -> dict:
    """A dataset named by its file and content hash, never by a path on the training machine."""
    path = Path(path)
    files = (
        [path] if path.is_file() else sorted(p for p in path.glob("*") if p.is_file() and p.suffix in {".gz", ".csv"})
    )
    return {p.name: sha256_file(p) for p in files}


def train(
    data_path: str | Path | None,
    profile: str = "cpu",
    run_dir: str | Path | None = None,
    expw_path: str | Path | None = None,
    **overrides,
) -> Path:
    """Train a model and return the run folder (best.keras, history.csv, run.json).

    Fits on FER2013 Training (plus ExpW's training photos when ``expw_path`` is given),
    selects on PublicTest (and ExpW's held-back photos: their mean accuracy). Re-running
    with the same ``run_dir`` resumes from the last finished epoch, after an
    interruption or, with a larger ``epochs``, after a completed run.
    """
    cfg = replace(PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None})
    tag = "_wild" if expw_path else ""
    run_dir = Path(run_dir or config.RUNS_DIR / f"{profile}_{cfg.arch}_w{cfg.width}_s{cfg.seed}{tag}")
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)

    data = load_cached(data_path)
    train_set, val_set = data.split("Training"), data.split("PublicTest")
    if cfg.limit_train:
        pick = np.random.default_rng(cfg.seed).permutation(len(train_set))[: cfg.limit_train]
        train_set = FerData(
            train_set.images[pick],
            train_set.labels[pick],
            train_set.usage[pick],
            ferplus=None if train_set.ferplus is None else train_set.ferplus[pick],
        )
    # Enlarged after the pick, so a limited run resizes only the faces it trains on.
    train_set, val_set = train_set.at_size(cfg.input_size), val_set.at_size(cfg.input_size)
    n_cls = len(config.EMOTIONS)
    x_train, y_train = _x(train_set), _targets(train_set, n_cls, cfg.ferplus_weight)
    labels_train = train_set.labels
    val_sets = {"fer": (_x(val_set), val_set.labels)}
    if cfg.ferplus_weight >= 1.0:
        # A FER+ model: fitted on the vote distributions, selected on PublicTest's FER+ majority.
        if val_set.ferplus is None:
            raise ValueError("a FER+ model needs fer2013new.csv beside the FER2013 CSV")
        majority = ferplus_majority(val_set.ferplus)
        keep = majority >= 0
        val_sets = {"ferplus": (_x(val_set)[keep], majority[keep])}
    sources = {"fer2013": data_fingerprint(data.source)}
    if expw_path:
        expw = load_expw_cached(expw_path, size=cfg.input_size)
        wild_train, wild_val = expw.split("Training"), expw.split("PublicTest")
        if cfg.limit_train:
            wild_train = FerData(
                wild_train.images[: cfg.limit_train],
                wild_train.labels[: cfg.limit_train],
                wild_train.usage[: cfg.limit_train],
            )
        reps = max(1, cfg.expw_repeat)
        x_train = np.concatenate([x_train] + [_x(wild_train)] * reps)
        y_train = np.concatenate([y_train] + [_targets(wild_train, n_cls, 0.0)] * reps)
        labels_train = np.concatenate([labels_train] + [wild_train.labels] * reps)
        val_sets["expw"] = (_x(wild_val), wild_val.labels)
        sources["expw"] = {
            "labels.csv": sha256_file(Path(expw_path) / "labels.csv"),
            "train_faces": len(wild_train),
            "val_faces": len(wild_val),
            "split": "by source photo (sha1 of its name), 20% held back",
        }
    if cfg.teachers and cfg.distil_weight:
        soft = cached_teacher_probs(run_dir, cfg.teachers, x_train, cfg.distil_temperature)
        y_train = (1 - cfg.distil_weight) * y_train + cfg.distil_weight * soft
        sources["teachers"] = {Path(t).name: sha256_file(t) for t in cfg.teachers}
        sources["teacher_views"] = {Path(t).name: teacher_views(t) for t in cfg.teachers}
    weights = class_weights(labels_train, n_cls, cfg.class_weight_power)
    sample_weight = weights[labels_train]

    twin = None
    if cfg.mixed_precision:
        # Built first, in float32: the saved model must not carry the bfloat16 policy.
        keras.mixed_precision.set_global_policy("float32")
        twin = build_model(cfg.arch, n_cls, size=cfg.input_size, width=cfg.width, dropout=cfg.dropout)
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model(cfg.arch, n_cls, size=cfg.input_size, width=cfg.width, dropout=cfg.dropout)
        if cfg.init_from:
            model.set_weights(keras.models.load_model(cfg.init_from, compile=False).get_weights())
        inputs = keras.Input(model.input_shape[1:])
        wrapper = keras.Model(inputs, model(augmenter(cfg, cfg.seed)(inputs)), name="train_wrapper")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    steps = int(np.ceil(len(x_train) / cfg.batch_size))
    total, warm = steps * cfg.epochs, steps * cfg.warmup_epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate / 10 if warm else cfg.learning_rate,
        decay_steps=max(total - warm, 1),
        warmup_target=cfg.learning_rate if warm else None,
        warmup_steps=warm,
    )
    wrapper.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=["accuracy"],
    )
    # A resumed run keeps the wall time of its earlier sessions.
    earlier = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "wall_seconds_total": earlier.get("wall_seconds_total", 0.0),
                "profile": profile,
                # Models named by file (the hashes are under "data"), not by this machine's paths.
                "config": {
                    **asdict(cfg),
                    "init_from": cfg.init_from and Path(cfg.init_from).name,
                    "teachers": [Path(t).name for t in cfg.teachers],
                },
                "data": sources,
                "train_rows": len(x_train),
                "val_rows": {name: len(v[1]) for name, v in val_sets.items()},
                "class_weights": dict(zip(config.EMOTIONS, map(float, weights))),
                "parameters": int(model.count_params()),
                "backend": keras.backend.backend(),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            },
            indent=2,
        )
    )
    start = time.time()
    # Keras's own validation on the first set gives val_accuracy and val_loss (the learning curves).
    first_x, first_labels = next(iter(val_sets.values()))
    wrapper.fit(
        x_train,
        y_train,
        sample_weight=sample_weight,
        validation_data=(first_x, keras.utils.to_categorical(first_labels, n_cls).astype(np.float32)),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        shuffle=True,
        verbose=2,
        callbacks=[
            # Kept after a finished run too, so a later call with more epochs continues it.
            keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False),
            ValidationSets(model, val_sets),
            keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
            SaveBest(model, run_dir / "best.keras", run_dir / "best.json", "val_mean_accuracy", twin),
            WallClock(run_dir / "run.json", earlier.get("wall_seconds_total", 0.0), start),
        ],
    )
    info = WallClock(run_dir / "run.json", earlier.get("wall_seconds_total", 0.0), start).record()
    info["best"] = json.loads((run_dir / "best.json").read_text())
    (run_dir / "run.json").write_text(json.dumps(info, indent=2))
    return run_dir


def publish(run_dir: str | Path, dest: str | Path | None = None, data_path: str | Path | None = None, **fields) -> Path:
    """Copy a run's best model into models/ with its manifest (training config, history)
    and its ONNX twins for the TensorFlow-free serving runtime (``src.engine.runtime``).

    The INT8 twin is calibrated on FER2013 Training faces from ``data_path`` (the data the
    run trained on); without it, or when the twin is refused, only the fp32 twin is
    written and a note says why.
    """
    run_dir, dest = Path(run_dir), Path(dest or config.MODEL_FILE)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(run_dir / "best.keras", dest)
    run = json.loads((run_dir / "run.json").read_text())
    size = int(run.get("config", {}).get("input_size", config.IMAGE_SIZE))
    write_manifest(dest, config.EMOTIONS, size, training=run, **fields)
    _write_twins(dest, data_path)
    return dest


def _member(source: Path) -> tuple[Path, dict]:
    """A member's model file and what is known of its training: a run folder or a published model."""
    if source.is_dir():
        return source / "best.keras", {
            "name": source.name,
            "training": json.loads((source / "run.json").read_text()),
        }
    manifest = read_manifest(source)
    return source, {"name": str(manifest.get("version", source.stem)), "training": manifest.get("training") or {}}


def ensemble_training(members: list[dict]) -> dict:
    """The manifest's training record of an ensemble: each member's own record, and their sums.

    ``data`` and ``val_rows`` are the first member's (members of one ensemble are trained
    and selected on the same data); ``config.members`` names each member's architecture.
    """
    first = members[0]["training"]
    walls = [m["training"].get("wall_seconds_total") for m in members]
    return {
        "ensemble": "mean of the members' probabilities",
        "config": {
            "arch": "ensemble",
            "members": [
                f"{m['training'].get('config', {}).get('arch', '?')} w{m['training'].get('config', {}).get('width', '?')}"
                for m in members
            ],
        },
        "data": first.get("data"),
        "train_rows": first.get("train_rows"),
        "val_rows": first.get("val_rows"),
        "parameters": sum(int(m.get("parameters", 0)) for m in members),
        "wall_seconds_total": sum(walls) if all(isinstance(w, int | float) for w in walls) else None,
        "members": members,
    }


def publish_ensemble(
    sources: list[str | Path], dest: str | Path | None = None, data_path: str | Path | None = None, **fields
) -> Path:
    """Publish the mean of several models as one model: ``build_ensemble`` plus manifest and twins.

    Each source is a training run folder (its ``best.keras`` and ``run.json``) or a
    published ``.keras`` model (its manifest's training record). ``dest`` may be one of
    them: every member is read before anything is written.
    """
    from src.engine.model import build_ensemble

    dest = Path(dest or config.MODEL_FILE)
    models, members = [], []
    for source in map(Path, sources):
        model_file, member = _member(source)
        model = keras.models.load_model(model_file, compile=False)
        member.update(sha256=sha256_file(model_file), parameters=int(model.count_params()))
        models.append(model)
        members.append(member)
    sizes = {int(m.input_shape[1]) for m in models}
    if len(sizes) > 1:
        raise ValueError(f"the members read faces of different sizes ({sorted(sizes)} px): an ensemble needs one size")
    _save_whole(build_ensemble(models), dest)
    write_manifest(dest, config.EMOTIONS, sizes.pop(), training=ensemble_training(members), **fields)
    _write_twins(dest, data_path)
    return dest


def _save_whole(model: keras.Model, dest: Path) -> None:
    """Save ``model`` at ``dest`` through a temporary file, so ``dest`` (possibly a source just
    read) is never left half written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.stem + ".tmp.keras")
    model.save(tmp)
    tmp.replace(dest)


def _write_twins(dest: Path, data_path: str | Path | None) -> None:
    from src.training.export import export_features, export_int8_from_dataset, export_onnx

    export_onnx(dest)
    export_features(dest)
    if data_path is None:
        print("INT8 twin skipped: no FER2013 data given to calibrate it (`python -m src.cli export --data PATH`)")
        return
    try:
        export_int8_from_dataset(dest, data_path)
    except (OSError, ValueError) as exc:
        print(f"INT8 twin skipped: {str(exc).splitlines()[0]}")


def publish_balanced(
    model_file: str | Path,
    data_path: str | Path,
    expw_path: str | Path | None = None,
    dest: str | Path | None = None,
    **fields,
) -> tuple[Path, dict]:
    """Fit the per-class logit shift of ``src.training.class_bias`` on the validation faces
    (FER2013 PublicTest, and ExpW's held-back crops when ``expw_path`` is given), fold it into
    the model and publish it at ``dest`` (default: over ``model_file``) with its manifest (the
    training record gains ``class_bias``) and twins. Returns the path and that record."""
    from src.engine.classifier import model_views
    from src.training import class_bias

    model_file = Path(model_file)
    dest = Path(dest or model_file)
    source = read_manifest(model_file) or {}
    training = dict(source.get("training") or {})
    if source.get("trained_on"):  # how it was trained still holds; its scores do not
        fields = {"trained_on": source["trained_on"]} | fields
    if training.get("class_bias"):
        raise ValueError(f"{model_file.name} already has a class bias folded in; start from the model without it")
    model = keras.models.load_model(model_file, compile=False)
    size = int(model.input_shape[1])
    fer = load_cached(data_path)
    sets = {"PublicTest": fer.split("PublicTest")}
    if expw_path is not None:
        sets["ExpW held-back"] = load_expw_cached(expw_path, size=size).split("PublicTest")
    views = model_views(source)
    if source.get("test_time_views"):  # the shifts are fitted on, and hold for, these views
        fields = {"test_time_views": views} | fields
    found = {
        name: (class_bias.view_probs(model, data.images, views), data.labels)
        for name, data in sets.items()
        if len(data)
    }
    if "PublicTest" not in found:
        raise ValueError(f"{data_path} has no PublicTest faces to fit the class bias on")
    fitted = class_bias.fit(found)
    class_bias.fold(model, fitted.bias)
    record = fitted.record(config.EMOTIONS) | {"fitted_on": {name: len(y) for name, (_, y) in found.items()}}
    _save_whole(model, dest)
    write_manifest(dest, config.EMOTIONS, size, training=training | {"class_bias": record}, **fields)
    _write_twins(dest, data_path)
    return dest, record
