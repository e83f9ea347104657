"""Grad-CAM: heatmap shape/range, the chosen layer, and the overlay."""

import numpy as np
import pytest

from src.engine.explain import GradCam, overlay
from src.engine.model import build_model
from src.engine.preprocessing import crop_face, to_gray


@pytest.fixture(scope="module")
def cam():
    return GradCam(build_model("compact", width=8))


def test_heatmap_shape_and_range(cam):
    face = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    heat = cam(face)
    assert heat.shape == (48, 48)
    assert heat.dtype.kind == "f"
    assert 0.0 <= heat.min() and heat.max() <= 1.0


def test_targets_a_map_at_least_6x6(cam):
    layer = cam.grad_models[0].outputs[0]
    assert layer.shape[1] >= 6
    assert cam.layer_name.startswith("s4")


def test_explicit_class_changes_the_map(cam):
    face = np.random.default_rng(1).integers(0, 256, (48, 48), dtype=np.uint8)
    maps = [cam(face, class_index=i) for i in range(7)]
    assert any(not np.allclose(maps[0], m) for m in maps[1:])


def test_overlay_touches_only_the_face_region():
    from skimage import data

    rgb = data.astronaut()
    heat = np.ones((48, 48), np.float32)
    box = (180, 40, 100, 100)
    out = overlay(rgb, box, heat)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert not np.array_equal(out[60:120, 200:260], rgb[60:120, 200:260])
    assert np.array_equal(out[400:, :100], rgb[400:, :100])
    assert crop_face(to_gray(out), box).shape == (48, 48)


def test_an_ensemble_is_explained_through_each_member():
    from src.engine.model import build_ensemble

    members = [build_model("compact", width=8), build_model("compact", width=16)]
    ensemble_cam = GradCam(build_ensemble(members))
    assert ensemble_cam.layer_name.count(", ") == 1 and len(ensemble_cam.grad_models) == 2
    face = np.random.default_rng(2).integers(0, 256, (48, 48), dtype=np.uint8)
    heat = ensemble_cam(face)
    assert heat.shape == (48, 48) and 0.0 <= heat.min() and heat.max() <= 1.0
