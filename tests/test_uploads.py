"""Upload expansion: images pass through, zips are unpacked (nested folders too), junk is skipped."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from src import uploads


def _png(value: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_plain_images_pass_through_and_empty_files_fail():
    out = uploads.expand_uploads([("a.png", _png()), ("empty.jpg", b"")])
    assert [i.name for i in out.images] == ["a.png"]
    assert out.failed[0].name == "empty.jpg" and out.failed[0].error == "empty file"


def test_zip_with_nested_folder_non_image_and_mac_junk():
    archive = _zip(
        {
            "top.png": _png(1),
            "shots/day1/inner.JPG": _png(2),
            "notes/readme.txt": b"hello",
            "__MACOSX/shots/._inner.JPG": b"junk",
            ".DS_Store": b"junk",
            "shots/empty/": b"",
        }
    )
    out = uploads.expand_uploads([("photos.zip", archive), ("b.png", _png(3))])
    names = [i.name for i in out.images]
    assert names == ["photos.zip/shots/day1/inner.JPG", "photos.zip/top.png", "b.png"]
    assert out.skipped == ["photos.zip/notes/readme.txt"]
    assert not out.failed
    assert Image.open(io.BytesIO(out.images[0].data)).size == (8, 8)


def test_broken_zip_is_one_failed_item():
    out = uploads.expand_uploads([("broken.zip", b"PK\x03\x04 this is not really a zip")])
    assert len(out.items) == 1 and out.failed[0].error.startswith("not a readable zip archive")


def test_zip_limits(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_ZIP_MEMBERS", 2)
    out = uploads.extract_zip("many.zip", _zip({f"{i}.png": _png() for i in range(3)}))
    assert "limit 2" in out.failed[0].error
    monkeypatch.setattr(uploads, "MAX_ZIP_MEMBERS", 100)
    monkeypatch.setattr(uploads, "MAX_ZIP_TOTAL_MB", 0)
    out = uploads.extract_zip("big.zip", _zip({"a.png": _png()}))
    assert "unpacks to" in out.failed[0].error


@pytest.mark.parametrize(
    "name,data,expected",
    [
        ("x.zip", b"", True),
        ("x.ZIP", b"abc", True),
        ("x.bin", b"PK\x03\x04rest", True),
        ("x.jpg", b"\xff\xd8", False),
    ],
)
def test_is_zip(name, data, expected):
    assert uploads.is_zip(name, data) is expected
