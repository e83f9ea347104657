"""Adapting the model to a customer's faces (src/training/adapt.py, ``python -m src.cli adapt``):
a new head on the frozen model's features, published as an ONNX model with its manifest and
served like any model, without TensorFlow."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from support import WITHOUT_TF

from src import config
from src.cli import main
from src.engine.classifier import model_views
from src.engine.inference import EmotionRecognizer
from src.engine.manifest import read_manifest
from src.training.adapt import AdaptError, adapt, label_of

BUNDLED = config.ROOT / "models" / "fer_compact.keras"


def pattern_faces(kind: int, count: int, seed: int) -> list[np.ndarray]:
    """48x48 crops of one of three patterns (bright top, bright left, a dark centre) with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48] / 47.0
    base = [255 * (1 - yy), 255 * (1 - xx), 255 * np.clip(np.hypot(yy - 0.5, xx - 0.5) * 2.5, 0, 1)][kind]
    return [np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8) for _ in range(count)]


def crops_folder(root: Path, per_class: int = 12) -> Path:
    for kind, name in enumerate(("happiness", "sad", "surprise")):  # "happiness" is read as happy
        folder = root / name
        folder.mkdir(parents=True)
        for i, face in enumerate(pattern_faces(kind, per_class, seed=kind)):
            Image.fromarray(face).save(folder / f"P{i % 4}_{i:02d}.png")
    (root / "contempt").mkdir()
    Image.fromarray(pattern_faces(0, 1, 9)[0]).save(root / "contempt" / "c.png")
    (root / "happiness" / "notes.txt").write_text("not a photo")
    return root


def test_folder_names_map_to_labels():
    labels = tuple(config.EMOTIONS)
    assert [label_of(n, labels) for n in ("Anger", "sadness", "happy", "contempt", "SURPRISED")] == [
        "angry",
        "sad",
        "happy",
        None,
        "surprise",
    ]


def test_adapt_learns_the_customer_faces_and_publishes_a_served_model(tmp_path):
    folder = crops_folder(tmp_path / "faces")
    out = tmp_path / "acme.onnx"
    result = adapt(folder, out, BUNDLED, crops=True, group_pattern=r"^(P\d)_")
    assert result.classes == ("happy", "sad", "surprise")
    assert result.faces == 36 and 0 < result.held_out < 36
    assert result.after.accuracy >= 0.9 and result.after.accuracy >= result.before.accuracy
    assert set(result.after.recall) == {"happy", "sad", "surprise"}
    assert ("contempt/", "not an emotion of this model (angry, disgust, fear, happy, sad, surprise, neutral)") in (
        result.skipped
    )
    assert ("happiness/notes.txt", "not an image file") in result.skipped

    manifest = read_manifest(out)
    assert manifest["class_names"] == ["happy", "sad", "surprise"] and manifest["input_size"] == 48
    assert manifest["adapted_from"]["file"] == "fer_compact.keras"
    assert manifest["adaptation"]["after"]["accuracy"] == pytest.approx(result.after.accuracy)
    assert manifest["adaptation"]["groups"] == 4
    # Its head averages over the views it was fitted on: the base model's.
    assert manifest["test_time_views"] == model_views(read_manifest(BUNDLED))

    # Served like any model: labels from the manifest, the faces it learnt read right.
    recognizer = EmotionRecognizer(out)
    assert recognizer.class_names == ("happy", "sad", "surprise") and recognizer.info.runtime == "onnx"
    probs = recognizer.classify(np.stack(pattern_faces(1, 6, seed=42)))
    assert (probs.argmax(1) == 1).mean() >= 5 / 6 and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_a_base_model_served_with_zoomed_views_only_adapts_with_them(tmp_path):
    """A base model whose manifest names "scale" (no unzoomed view): the head is fitted on, and
    the adapted model served with, those views; the graph check reads the faces as seen."""
    import shutil

    from src.engine.manifest import manifest_path, write_manifest

    base = tmp_path / "base" / BUNDLED.name
    base.parent.mkdir()
    for suffix in (".keras", ".json", ".features.onnx"):
        shutil.copy2(BUNDLED.with_suffix(suffix), base.with_suffix(suffix))
    manifest = read_manifest(base)
    write_manifest(base, manifest["class_names"], manifest["input_size"], framework={}, test_time_views="scale")
    assert json.loads(manifest_path(base).read_text())["sha256"] == manifest["sha256"]
    out = tmp_path / "acme.onnx"
    result = adapt(crops_folder(tmp_path / "faces", per_class=8), out, base, crops=True, group_pattern=r"^(P\d)_")
    assert result.after.accuracy >= 0.9
    assert read_manifest(out)["test_time_views"] == "scale"
    assert EmotionRecognizer(out).info.views == "scale"


def test_adapt_and_predict_run_without_tensorflow(tmp_path):
    folder = crops_folder(tmp_path / "faces", per_class=8)
    out = tmp_path / "acme.onnx"
    run = [sys.executable, "-c", WITHOUT_TF]
    proc = subprocess.run(
        [*run, "adapt", str(folder), "--output", str(out), "--model", str(BUNDLED), "--crops"],
        cwd=config.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "adapted fer_compact.keras to 3 emotions (happy, sad, surprise) on 24 faces" in proc.stdout
    assert "held-back photos" in proc.stdout and "skipped contempt/" in proc.stderr
    Image.fromarray(pattern_faces(2, 1, seed=7)[0]).save(tmp_path / "new.png")
    proc = subprocess.run(
        [*run, "predict", str(tmp_path / "new.png"), "--crops", "--model", str(out), "--format", "jsonl"],
        cwd=config.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout.splitlines()[0])
    assert row["emotion"] == "surprise" and set(row) >= {"happy", "sad", "surprise"}


def test_whole_photos_go_through_detection_and_faceless_ones_are_named(tmp_path):
    rgb = skdata.astronaut()
    for name, flip in (("happy", False), ("sad", True)):
        folder = tmp_path / "photos" / name
        folder.mkdir(parents=True)
        for i in range(4):
            img = rgb[:, ::-1] if flip else rgb
            Image.fromarray(np.clip(img.astype(int) + 12 * i, 0, 255).astype(np.uint8)).save(folder / f"{i}.jpg")
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(tmp_path / "photos" / "sad" / "wall.jpg")
    (tmp_path / "photos" / "sad" / "broken.jpg").write_bytes(b"not a jpeg")
    result = adapt(tmp_path / "photos", tmp_path / "a.onnx", BUNDLED)
    assert result.faces == 8
    reasons = dict(result.skipped)
    assert reasons["sad/wall.jpg"] == "no face found"
    assert "broken.jpg" in " ".join(reasons) and reasons["sad/broken.jpg"]


def test_bad_requests_get_clear_messages(tmp_path, capsys):
    with pytest.raises(AdaptError, match="is not a folder"):
        adapt(tmp_path / "missing", tmp_path / "a.onnx", BUNDLED)
    folder = crops_folder(tmp_path / "faces", per_class=3)
    with pytest.raises(AdaptError, match="at least two emotions with 4 or more usable faces each"):
        adapt(folder, tmp_path / "a.onnx", BUNDLED, crops=True)
    with pytest.raises(AdaptError, match=r"--output must name an \.onnx file"):
        adapt(folder, tmp_path / "a.keras", BUNDLED, crops=True)
    assert main(["adapt", str(tmp_path / "missing"), "--output", str(tmp_path / "a.onnx")]) == 2
    assert "is not a folder (expected one sub-folder per emotion" in capsys.readouterr().err
    assert not (tmp_path / "a.onnx").exists()


def test_a_person_pattern_with_too_few_people_is_a_clear_error(tmp_path):
    folder = crops_folder(tmp_path / "faces")
    with pytest.raises(AdaptError, match=r"needs at least 4 different people \(groups\); the person pattern found 1"):
        adapt(folder, tmp_path / "a.onnx", BUNDLED, crops=True, group_pattern=r"^(P)")


def test_progress_follows_every_photo_and_the_version_names_the_weights(tmp_path):
    folder = crops_folder(tmp_path / "faces", per_class=4)
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(folder / "sad" / "broken.png")
    (folder / "sad" / "broken.png").write_bytes(b"\x89PNG broken")
    seen = []
    adapt(folder, tmp_path / "a.onnx", BUNDLED, crops=True, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 13) and seen[-1] == (13, 13) and len(seen) == 14
    version = read_manifest(tmp_path / "a.onnx")["version"]
    assert re.fullmatch(r"adapted-a-[0-9a-f]{8}", version)
