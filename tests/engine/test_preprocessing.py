"""Image decoding for every input kind and mode, its error reasons, and face cropping."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from src import config
from src.engine import preprocessing
from src.engine.preprocessing import ImageError, crop_face, expand_box, extract_face, load_image

ROOT = Path(__file__).resolve().parents[2]


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)


def _assert_rgb(out: np.ndarray, height: int, width: int) -> None:
    assert out.shape == (height, width, 3)
    assert out.dtype == np.uint8


def test_path_bytes_pil_and_numpy_agree(rgb, tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    from_path = load_image(path)
    np.testing.assert_array_equal(from_path, rgb)
    np.testing.assert_array_equal(load_image(str(path)), rgb)
    np.testing.assert_array_equal(load_image(path.read_bytes()), rgb)
    np.testing.assert_array_equal(load_image(io.BytesIO(path.read_bytes())), rgb)
    np.testing.assert_array_equal(load_image(Image.fromarray(rgb)), rgb)
    np.testing.assert_array_equal(load_image(rgb), rgb)


def test_rgba_is_flattened_on_white():
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 200
    arr[:2, :, 3] = 255  # top half opaque red-ish, bottom half fully transparent
    out = load_image(_png_bytes(Image.fromarray(arr, "RGBA")))
    _assert_rgb(out, 4, 4)
    np.testing.assert_array_equal(out[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(out[3, 3], [255, 255, 255])


def test_palette_and_la_and_grayscale():
    pal = Image.new("P", (5, 6))
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.putpixel((1, 1), 1)
    out = load_image(_png_bytes(pal))
    _assert_rgb(out, 6, 5)
    np.testing.assert_array_equal(out[1, 1], [10, 200, 30])

    la = Image.merge("LA", [Image.new("L", (3, 3), 50), Image.new("L", (3, 3), 0)])
    out = load_image(_png_bytes(la))
    np.testing.assert_array_equal(out, np.full((3, 3, 3), 255))  # transparent -> white

    gray = Image.new("L", (7, 2), 90)
    out = load_image(_png_bytes(gray))
    _assert_rgb(out, 2, 7)
    assert (out == 90).all()


def test_16bit_png_is_scaled_to_8bit():
    arr = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    im = Image.fromarray(arr)
    assert im.mode.startswith("I;16")
    out = load_image(_png_bytes(im))
    _assert_rgb(out, 2, 2)
    assert out[0, 0, 0] == 0 and out[0, 1, 0] == 255 and 126 <= out[1, 0, 0] <= 128


def test_float_array_in_unit_range():
    arr = np.array([[0.0, 0.5], [1.0, 0.25]], dtype=np.float32)
    out = load_image(arr)
    _assert_rgb(out, 2, 2)
    assert out[1, 0, 0] == 255 and out[0, 0, 0] == 0 and 126 <= out[0, 1, 0] <= 128


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    im = Image.new("RGB", (60, 20), (120, 60, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    im.save(path, exif=exif.tobytes())
    with Image.open(path) as raw:
        assert raw.size == (60, 20)
    out = load_image(path)
    _assert_rgb(out, 60, 20)  # stored 60 wide x 20 high, displayed 20 wide x 60 high


def test_error_reasons(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image\n")
    jpeg = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(jpeg, "JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])

    cases = {
        empty: "empty file",
        text: "not an image",
        tmp_path / "missing.jpg": "file not found",
        tmp_path: "is a folder",
    }
    for source, reason in cases.items():
        with pytest.raises(ImageError, match=reason):
            load_image(source)
    with pytest.raises(ImageError, match="corrupt image"):
        load_image(truncated)
    with pytest.raises(ImageError, match="empty file"):
        load_image(b"")
    with pytest.raises(ImageError, match="unsupported"):
        load_image(12345)
    with pytest.raises(ImageError, match="unsupported array shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))


def test_error_messages_are_one_line(tmp_path):
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(_png_bytes(Image.new("RGB", (50, 50), "red"))[:60])
    with pytest.raises(ImageError) as info:
        load_image(truncated)
    assert "\n" not in str(info.value)


def test_huge_image_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "MAX_IMAGE_PIXELS", 1000)
    path = tmp_path / "big.png"
    Image.new("L", (100, 100)).save(path)
    with pytest.raises(ImageError, match="image too large"):
        load_image(path)
    with pytest.raises(ImageError, match="image too large"):
        load_image(np.zeros((100, 100), np.uint8))
    assert load_image(np.zeros((10, 10), np.uint8)).shape == (10, 10, 3)


def test_crop_face_shape_dtype_range():
    gray = np.random.default_rng(0).integers(0, 256, (200, 300), dtype=np.uint8)
    for box in [(50, 40, 100, 100), (0, 0, 30, 30), (280, 180, 40, 40)]:
        face = crop_face(gray, box)
        assert face.shape == (config.IMAGE_SIZE, config.IMAGE_SIZE)
        assert face.dtype == np.uint8
        assert 0 <= face.min() and face.max() <= 255
    # An exact 48x48 box without margin is copied untouched.
    np.testing.assert_array_equal(crop_face(gray, (10, 20, 48, 48), margin=0.0), gray[20:68, 10:58])


def test_expand_box_clips_to_image():
    assert expand_box((0, 0, 100, 100), 120, 110, margin=0.1) == (0, 0, 110, 110)
    assert expand_box((50, 50, 10, 10), 200, 200, margin=0.5) == (45, 45, 65, 65)


def test_alignment_puts_the_landmarks_on_the_template() -> None:
    from skimage import data

    from src.engine.faces import get_detector
    from src.engine.preprocessing import FACE_TEMPLATE_48, alignment_matrix

    face = get_detector().detect_faces(data.astronaut())[0]
    matrix = alignment_matrix(face.landmarks)
    mapped = np.c_[face.landmarks, np.ones(5)] @ matrix.T
    # Eyes land within a pixel of the template; the mouth's midpoint too.
    assert np.abs(mapped[:2] - FACE_TEMPLATE_48[:2]).max() < 1.0
    assert np.abs(mapped[3:].mean(0) - FACE_TEMPLATE_48[3:].mean(0)).max() < 1.0


def test_alignment_frames_a_face_the_same_at_any_size_and_place() -> None:
    """The astronaut shrunk to 80% and shifted within a larger canvas aligns to (nearly) the same face."""
    from skimage import data

    from src.engine.faces import get_detector
    from src.engine.preprocessing import to_gray

    photo = data.astronaut()
    small = cv2.resize(photo, (410, 410), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[40:450, 200:610] = small
    faces = []
    for image in (photo, canvas):
        found = get_detector().detect_faces(image)
        assert len(found) == 1
        faces.append(extract_face(to_gray(image), found[0].box, found[0].landmarks).astype(np.float32))
    assert faces[0].shape == faces[1].shape == (48, 48)
    assert np.corrcoef(faces[0].ravel(), faces[1].ravel())[0, 1] > 0.85


def test_extract_face_without_landmarks_is_the_box_crop() -> None:
    gray = np.random.default_rng(0).integers(0, 256, (200, 300), dtype=np.uint8)
    box = (50, 40, 100, 100)
    assert np.array_equal(extract_face(gray, box, None), crop_face(gray, box))


# --- bounded decoding (issue 7, defect 1) ------------------------------------------------


def _write_png_rows(path, width: int, height: int, color_type: int, bit_depth: int, row: bytes) -> None:
    """A PNG written row by row with zlib (holds one row, never the image): ``row`` repeats."""
    import struct
    import zlib

    def chunk(fh, kind: bytes, data: bytes) -> None:
        fh.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))

    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        chunk(fh, b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
        comp = zlib.compressobj(9)
        for _ in range(height):
            data = comp.compress(b"\x00" + row)
            if data:
                chunk(fh, b"IDAT", data)
        chunk(fh, b"IDAT", comp.flush())
        chunk(fh, b"IEND", b"")


def test_large_images_come_out_at_the_decode_size(monkeypatch):
    monkeypatch.setattr(config, "DECODE_MAX_SIDE", 64)
    monkeypatch.setattr(preprocessing, "STRIP_PIXELS", 3000)  # many strips even for small test images
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 256, (7, 11, 4), dtype=np.uint8)
    rgba = cv2.resize(coarse, (333, 210), interpolation=cv2.INTER_LINEAR)  # smooth, with varied alpha
    out = load_image(_png_bytes(Image.fromarray(rgba, "RGBA")))
    _assert_rgb(out, 40, 64)  # long side 64, aspect kept
    alpha = rgba[..., 3:4].astype(np.float64) / 255
    flat = np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    reference = cv2.resize(flat, (64, 40), interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(int) - reference).mean() < 1.5  # strip-wise shrink ~ one-shot shrink

    photo = rng.integers(0, 256, (300, 480, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG", quality=95)
    out = load_image(buf.getvalue())
    _assert_rgb(out, 40, 64)
    assert abs(float(out.mean()) - float(photo.mean())) < 3

    _assert_rgb(load_image(buf.getvalue(), max_side=0), 300, 480)  # trusted data: full size

    wide16 = np.tile(np.linspace(0, 65535, 500).astype(np.uint16), (90, 1))
    out = load_image(_png_bytes(Image.fromarray(wide16)))
    _assert_rgb(out, 12, 64)
    assert out[:, 0].max() < 10 and out[:, -1].min() > 245  # every strip scaled by the image's range


def test_exif_orientation_matches_pillow_for_every_value():
    from PIL import ImageOps

    base = Image.fromarray(np.random.default_rng(4).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        base.save(buf, format="PNG", exif=exif.tobytes())
        expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))).convert("RGB"))
        np.testing.assert_array_equal(load_image(buf.getvalue()), expected, err_msg=f"orientation {orientation}")


# Decodes one file in a fresh interpreter and prints how far its peak RSS (VmHWM) rose above
# the RSS it had once the imports were done, in MiB. (ru_maxrss would not do: Linux folds
# the parent's RSS at fork into the child's across exec, and pytest's is large.)
_PEAK_RSS = """
import sys
from src.engine.preprocessing import load_image

def status_mib(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key)) / 1024

idle = status_mib("VmRSS:")
rgb = load_image(sys.argv[1])
print(rgb.shape[0], rgb.shape[1], round(status_mib("VmHWM:") - idle))
"""
MEMORY_BUDGET_MIB = 400


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
@pytest.mark.parametrize("kind", ["rgba_png_7000", "rgba16_png_7000", "jpeg_8000x6000"])
def test_huge_images_decode_within_the_memory_budget(kind, tmp_path):
    """The bad-input corpus: a 7000x7000 RGBA PNG (~0.2 MB on disk) peaked at 2.8 GB, an
    8000x6000 JPEG at 1.6 GB. Now any accepted image costs at most ~400 MB over idle."""
    path = tmp_path / f"{kind}.{'jpg' if 'jpeg' in kind else 'png'}"
    if kind == "rgba_png_7000":
        _write_png_rows(path, 7000, 7000, 6, 8, bytes([30, 160, 90, 128]) * 7000)
    elif kind == "rgba16_png_7000":
        _write_png_rows(path, 7000, 7000, 6, 16, np.full(7000 * 4, 30000, ">u2").tobytes())
    else:
        big = np.empty((6000, 8000, 3), np.uint8)
        big[...] = np.linspace(0, 255, 8000, dtype=np.float32).astype(np.uint8)[None, :, None]
        Image.fromarray(big).save(path, quality=85)
        del big
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    height, width, rise = map(int, proc.stdout.split())
    print(f"{kind}: {rise} MiB above idle")
    assert max(height, width) == config.DECODE_MAX_SIDE
    assert rise <= MEMORY_BUDGET_MIB, f"{kind}: peak RSS {rise} MiB above idle"


def test_resize_faces_keeps_rank_and_dtype_and_returns_faces_already_at_size():
    from src.engine.preprocessing import resize_faces

    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    assert resize_faces(faces, 48) is faces
    bigger = resize_faces(faces, 64)
    assert bigger.shape == (3, 64, 64) and bigger.dtype == np.uint8
    channel = resize_faces(faces[..., None].astype(np.float32), 64)
    assert channel.shape == (3, 64, 64, 1) and channel.dtype == np.float32
    assert np.allclose(channel[..., 0], bigger, atol=1)
    flat = np.full((1, 48, 48), 90, np.uint8)
    assert (resize_faces(flat, 56) == 90).all()  # no ringing on a flat face
