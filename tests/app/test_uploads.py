"""Upload expansion: images pass through, zips are unpacked (nested folders too), junk is skipped."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from src import config
from src.app import uploads


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
    assert out.skipped_rows() == [
        {"entry": "photos.zip/.DS_Store", "reason": "hidden or macOS metadata file"},
        {"entry": "photos.zip/__MACOSX/shots/._inner.JPG", "reason": "hidden or macOS metadata file"},
        {"entry": "photos.zip/notes/readme.txt", "reason": "not an image file (.txt)"},
    ]
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
    monkeypatch.setattr(config, "ZIP_MAX_TOTAL_MB", 0)
    out = uploads.extract_zip("big.zip", _zip({"a.png": _png()}))
    assert out.failed[0].name == "big.zip/a.png" and "past 0 MB unpacked" in out.failed[0].error


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


def _bomb(path, members: int, member_mb: int, extra: dict[str, bytes]) -> None:
    """A zip of ``members`` members of zeros, written in 1 MB pieces (never held whole)."""
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(members):
            with zf.open(f"shots/shot_{i}.png", "w", force_zip64=True) as fh:
                for _ in range(member_mb):
                    fh.write(zeros)
        for name, data in extra.items():
            zf.writestr(name, data)


def test_zip_bomb_is_refused_member_by_member_without_unpacking(tmp_path):
    """The bad-input corpus: a 0.8 MB zip unpacking to 760 MB was accepted and read whole."""
    import tracemalloc

    path = tmp_path / "bomb.zip"
    _bomb(path, members=8, member_mb=95, extra={"shots/real.png": _png(7)})
    data = path.read_bytes()
    assert len(data) < 1.5 * 1024 * 1024
    tracemalloc.start()
    try:
        out = uploads.expand_uploads([("bomb.zip", data)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, f"{peak / 2**20:.0f} MB allocated while refusing the bomb"
    assert [i.name for i in out.images] == ["bomb.zip/shots/real.png"]
    assert [i.name for i in out.failed] == [f"bomb.zip/shots/shot_{i}.png" for i in range(8)]
    for item in out.failed:
        assert item.error.startswith("refused: unpacks to") and "limit 100x" in item.error


def test_total_unpacked_size_is_capped(monkeypatch):
    monkeypatch.setattr(config, "ZIP_MAX_TOTAL_MB", 2)
    rng = np.random.default_rng(0)
    noise = {f"{i}.bmp": rng.integers(0, 256, 800 * 1024, dtype=np.uint8).tobytes() for i in range(4)}
    out = uploads.extract_zip("noise.zip", _zip(noise))
    assert [i.name for i in out.images] == ["noise.zip/0.bmp", "noise.zip/1.bmp"]
    assert [i.name for i in out.failed] == ["noise.zip/2.bmp", "noise.zip/3.bmp"]
    assert "past 2 MB unpacked" in out.failed[0].error
    assert all(len(i.data) == 800 * 1024 for i in out.images)


def test_unsafe_member_paths_are_reported_not_dropped():
    archive = _zip(
        {
            "../evil.png": _png(),
            "/etc/abs.png": _png(),
            "a/../../up.png": _png(),
            "..\\windows.png": _png(),
            "C:/drive.png": _png(),
            "ok.png": _png(),
        }
    )
    out = uploads.expand_uploads([("odd.zip", archive)])
    assert [i.name for i in out.images] == ["odd.zip/ok.png"]
    names = {row["entry"]: row["reason"] for row in out.skipped_rows()}
    assert len(names) == 5 and "odd.zip/../evil.png" in names
    assert set(names.values()) == {"unsafe path (.. or absolute), not unpacked"}


def test_upload_size_limit_and_undecodable_names(monkeypatch):
    monkeypatch.setattr(config, "MAX_UPLOAD_MB", 1)
    out = uploads.expand_uploads([("big.png", b"x" * (3 * 1024 * 1024 // 2)), ("caf\udce9.png", _png())])
    assert out.failed[0].error == "file is 1.5 MB (limit 1 MB)"
    assert [i.name for i in out.images] == ["caf\\xe9.png"]
