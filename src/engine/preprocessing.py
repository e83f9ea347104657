"""Image decoding and face preprocessing, shared by training, inference and the app.

``load_image`` turns any supported input into RGB uint8 (EXIF orientation applied,
alpha flattened on white, 16-bit and float scaled to 8-bit) or raises
``ImageError`` with a one-line reason. ``crop_face`` is the single definition of
box -> margin -> grayscale 48x48 used everywhere; intensity normalisation is a
layer inside the model.

Memory plan for files, bytes and PIL images: the declared size is checked before
decoding; JPEGs decode straight at 1/2, 1/4 or 1/8 scale (``Image.draft``); any
other format is converted and shrunk in horizontal strips, so besides the decoder's
own bitmap only a strip and the ``config.DECODE_MAX_SIDE`` result are ever held.
Results are therefore at most ``DECODE_MAX_SIDE`` pixels on their long side, and
face boxes found in them are in those pixels. numpy arrays are taken as they are.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from src import config

ImageInput = str | Path | bytes | bytearray | io.IOBase | Image.Image | np.ndarray

# PIL's own bomb guard fires at ~179M pixels; ours is stricter and configurable.
Image.MAX_IMAGE_PIXELS = None

# Pixels converted at a time when shrinking: bounds the temporary arrays (~50 MB).
STRIP_PIXELS = 2_000_000
_ORIENTATION = 0x0112
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class ImageError(ValueError):
    """An input that cannot be used as an image; str(err) is a one-line reason."""


def _check_size(width: int, height: int) -> None:
    if width * height > config.MAX_IMAGE_PIXELS:
        raise ImageError(f"image too large ({width}x{height}, limit {config.MAX_IMAGE_PIXELS:,} pixels)")
    if width < 1 or height < 1:
        raise ImageError("empty image")


def _to_uint8(arr: np.ndarray, top: float | None = None) -> np.ndarray:
    """Scale 16-bit, integer or float arrays to uint8 by their range type.

    ``top`` is the whole image's maximum when ``arr`` is one strip of it, so that
    every strip is scaled alike.
    """
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr.astype(np.float32))
        top = arr.max(initial=0) if top is None else top
        scale = 255.0 if top <= 1.0 else 1.0
        return np.clip(arr * scale, 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        top = float(arr.max(initial=0)) if top is None else top
        if top <= 255:
            return np.clip(arr, 0, 255).astype(np.uint8)
        # 16-bit photos: use the full 16-bit range, or the data range for odd depths.
        denom = 65535.0 if top <= 65535 else top
        return np.clip(arr.astype(np.float32) * np.float32(255.0 / denom), 0, 255).astype(np.uint8)
    raise ImageError(f"unsupported pixel type {arr.dtype}")


def _flatten_alpha(rgba: np.ndarray) -> np.ndarray:
    """RGBA uint8 -> RGB on white, in integer math a strip of rows at a time (no float copy)."""
    out = np.empty((*rgba.shape[:2], 3), np.uint8)
    rows = max(1, STRIP_PIXELS // max(1, rgba.shape[1]))
    for y in range(0, rgba.shape[0], rows):
        part = rgba[y : y + rows]
        alpha = part[..., 3:4].astype(np.uint16)
        # colour * a + white * (255 - a), rounded: at most 255 * 255 + 127, which fits uint16.
        out[y : y + rows] = (part[..., :3] * alpha + (255 - alpha) * 255 + 127) // 255
    return out


def _array_to_rgb(arr: np.ndarray, top: float | None = None) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"unsupported array shape {arr.shape}")
    _check_size(arr.shape[1], arr.shape[0])
    arr = _to_uint8(arr, top)
    if arr.ndim == 2:
        return np.stack([arr] * 3, axis=-1)
    if arr.shape[2] == 4:
        return _flatten_alpha(arr)
    return np.ascontiguousarray(arr)


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(_ORIENTATION, 1))
    except (OSError, ValueError, TypeError, SyntaxError):
        return 1  # a broken EXIF block should not cost the image


def _orient(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (as ``ImageOps.exif_transpose`` would) to the small result."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return rgb if op is None else np.ascontiguousarray(op(rgb))


def _strip_to_rgb(im: Image.Image, top: float | None) -> np.ndarray:
    """One (small) PIL image or strip -> RGB uint8, alpha flattened on white."""
    if im.mode in _HIGH_DEPTH_MODES:
        return _array_to_rgb(np.asarray(im), top)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        return _flatten_alpha(np.asarray(im.convert("RGBA")))
    return np.asarray(im.convert("RGB"))


def _decode_sized(im: Image.Image, draft: bool, max_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """An opened image -> RGB uint8 no larger than ``max_side`` (0 = full size), memory bounded,
    and the full-size (width, height) of the image as displayed (EXIF-rotated)."""
    _check_size(*im.size)
    orientation = _orientation(im)
    original = (im.height, im.width) if orientation in (5, 6, 7, 8) else im.size
    if draft and max_side and max(im.size) > max_side and im.format == "JPEG":
        ratio = max_side / max(im.size)
        im.draft(im.mode, (max(1, int(im.width * ratio)), max(1, int(im.height * ratio))))
    im.load()
    width, height = im.size
    top = None
    if im.mode in _HIGH_DEPTH_MODES:
        # The whole image's range, so that every strip is scaled alike.
        top = float(np.nan_to_num(im.getextrema()[1]))
    # Integer shrink strip by strip, then one exact resize of a result at most twice the target.
    factor = max(1, max(width, height) // max_side) if max_side else 1
    if factor == 1 and width * height <= STRIP_PIXELS:
        rgb = _strip_to_rgb(im, top)
    else:
        out_w, out_h = -(-width // factor), -(-height // factor)
        rgb = np.empty((out_h, out_w, 3), np.uint8)
        rows = max(1, STRIP_PIXELS // width // factor) * factor
        for y in range(0, height, rows):
            strip = _strip_to_rgb(im.crop((0, y, width, min(height, y + rows))), top)
            if factor > 1:
                size = (out_w, -(-strip.shape[0] // factor))
                strip = cv2.resize(strip, size, interpolation=cv2.INTER_AREA)
            rgb[y // factor : y // factor + strip.shape[0]] = strip
    if max_side and max(rgb.shape[:2]) > max_side:
        ratio = max_side / max(rgb.shape[:2])
        size = (max(1, round(rgb.shape[1] * ratio)), max(1, round(rgb.shape[0] * ratio)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return _orient(rgb, orientation), (int(original[0]), int(original[1]))


def load_image(source: ImageInput, max_side: int | None = None) -> np.ndarray:
    """Decode any supported input to an RGB uint8 array (H, W, 3).

    Files, bytes and PIL images come out at most ``max_side`` pixels on their long side
    (default ``config.DECODE_MAX_SIDE``, ``FER_DECODE_MAX_SIDE``; 0 = full size), so
    positions found in the result are in those pixels, not the original's
    (``load_image_sized`` tells the original size, to scale them back). Loaders of
    trusted data whose labels are in original pixels pass 0. numpy inputs keep their
    size and are taken as RGB(A) or grayscale; use ``cv2.cvtColor`` first for BGR.
    """
    return load_image_sized(source, max_side)[0]


def load_image_sized(source: ImageInput, max_side: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """``load_image`` and the input's full (width, height), EXIF rotation applied."""
    max_side = config.DECODE_MAX_SIDE if max_side is None else max_side
    if isinstance(source, np.ndarray):
        rgb = _array_to_rgb(source)
        return rgb, (rgb.shape[1], rgb.shape[0])
    if isinstance(source, Image.Image):
        try:
            return _decode_sized(source, draft=False, max_side=max_side)
        except ImageError:
            raise
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"corrupt image ({str(exc).splitlines()[0][:80]})") from None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ImageError("file not found")
        if path.is_dir():
            raise ImageError("is a folder, not an image")
        if path.stat().st_size == 0:
            raise ImageError("empty file")
        opener = path
    elif isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError("empty file")
        opener = io.BytesIO(source)
    elif hasattr(source, "read"):
        data = source.read()
        if not data:
            raise ImageError("empty file")
        opener = io.BytesIO(data)
    else:
        raise ImageError(f"unsupported input type {type(source).__name__}")
    try:
        with Image.open(opener) as im:
            return _decode_sized(im, draft=True, max_side=max_side)
    except UnidentifiedImageError:
        raise ImageError("not an image") from None
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"corrupt image ({str(exc).splitlines()[0][:80]})") from None


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def expand_box(box, width: int, height: int, margin: float = config.FACE_MARGIN) -> tuple[int, int, int, int]:
    """Grow a detector box by ``margin`` on each side, clipped to the image (x0, y0, x1, y1)."""
    x, y, w, h = box
    dx, dy = int(round(w * margin)), int(round(h * margin))
    return max(0, x - dx), max(0, y - dy), min(width, x + w + dx), min(height, y + h + dy)


def resize_face(gray: np.ndarray, size: int = config.IMAGE_SIZE) -> np.ndarray:
    """Grayscale crop -> size x size uint8, area interpolation when shrinking."""
    if gray.shape[:2] == (size, size):
        return gray
    shrinking = gray.shape[0] > size or gray.shape[1] > size
    return cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def resize_faces(faces: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W[, 1]) faces at ``size`` x ``size`` (``resize_face`` on each), same dtype and
    rank; returned as they are when already that size. Datasets hold 48 px faces; a net with
    another input size reads them resized, as it reads a photo's aligned crop at its size."""
    faces = np.asarray(faces)
    if faces.shape[1:3] == (size, size):
        return faces
    channel = faces.ndim == 4
    out = np.empty((len(faces), size, size), faces.dtype)
    for i, face in enumerate(faces[..., 0] if channel else faces):
        out[i] = resize_face(face, size)
    return out[..., None] if channel else out


def crop_face(gray: np.ndarray, box, size: int = config.IMAGE_SIZE, margin: float = config.FACE_MARGIN) -> np.ndarray:
    """Cut one face out of a grayscale image: box + margin -> size x size uint8."""
    x0, y0, x1, y1 = expand_box(box, gray.shape[1], gray.shape[0], margin)
    return resize_face(gray[y0:y1, x0:x1], size)


# Where the eyes, the nose tip and the mouth corners of a typical FER2013 face sit in its
# 48x48 frame: the medians of YuNet's landmarks on 2,955 Training faces (4x enlarged),
# made left-right symmetric. Aligning a detected face onto these points gives it the
# framing the classifier was trained on, whatever the photo.
FACE_TEMPLATE_48 = np.array(
    [[14.98, 17.59], [32.40, 17.59], [23.69, 27.59], [16.43, 35.38], [30.95, 35.38]],
    np.float32,
)


def alignment_matrix(landmarks: np.ndarray, size: int = config.IMAGE_SIZE) -> np.ndarray:
    """2x3 similarity (rotation, scale, shift) taking a face's landmarks onto the template.

    Fitted on the eyes and the mouth's midpoint: the eyes fix the roll and width, the
    mouth the height; the nose is left out since it moves with a turned head, and the
    mouth corners one by one since a smile widens them.
    """
    pts = np.asarray(landmarks, np.float64).reshape(5, 2)
    tpl = FACE_TEMPLATE_48.astype(np.float64) * (size / 48.0)
    src = np.array([pts[0], pts[1], pts[3:].mean(axis=0)])
    dst = np.array([tpl[0], tpl[1], tpl[3:].mean(axis=0)])
    s = src[:, 0] + 1j * src[:, 1]
    d = dst[:, 0] + 1j * dst[:, 1]
    sc, dc = s - s.mean(), d - d.mean()
    a = np.vdot(sc, dc) / max(np.vdot(sc, sc).real, 1e-9)
    b = d.mean() - a * s.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], np.float64)


def align_face(gray: np.ndarray, landmarks: np.ndarray, size: int = config.IMAGE_SIZE) -> np.ndarray:
    """Rotate, scale and crop one face so its landmarks land on ``FACE_TEMPLATE_48``.

    Large faces are drawn at up to 4x the output size first and then area-averaged
    down, so a 300 px face does not alias into its 48 px copy.
    """
    matrix = alignment_matrix(landmarks, size)
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    k = int(np.clip(round(1.0 / max(scale, 1e-6)), 1, 4))
    big = cv2.warpAffine(
        gray, matrix * k, (size * k, size * k), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return big if k == 1 else cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def extract_face(gray: np.ndarray, box, landmarks: np.ndarray | None = None, size: int = config.IMAGE_SIZE):
    """The classifier's input for one detected face: aligned when landmarks are known.

    Without landmarks (Haar boxes, boxes given by the caller) the box plus margin is
    cropped as before (``crop_face``).
    """
    if landmarks is not None:
        return align_face(gray, landmarks, size)
    return crop_face(gray, box, size)
