"""Turn what a user dropped on the page (images and ``.zip`` archives) into named image payloads.

Archives are opened in memory; images in nested folders are kept with their path
inside the archive as the name. Every entry that is not analysed is accounted for:
non-images, hidden or macOS metadata files and unsafe paths (``../``, absolute)
are *skipped* with a reason; images refused by the size limits come back as failed
items saying why. Limits (``src/config.py``): ``FER_MAX_UPLOAD_MB`` per uploaded
file, ``FER_ZIP_MAX_TOTAL_MB`` unpacked per archive, ``FER_ZIP_MAX_RATIO`` per member
(checked on the sizes the archive declares, before anything is unpacked, and again
while a member is streamed out in chunks). Nothing here raises for bad input.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from src import config
from src.common import sanitize

# Archives may hold many small photos; this keeps one upload from costing a long loop.
MAX_ZIP_MEMBERS = 5000
_MB = 1024 * 1024
_CHUNK = _MB
_DRIVE = re.compile(r"[A-Za-z]:")  # a Windows drive, as in C:/photo.jpg


@dataclass(frozen=True)
class UploadItem:
    """One image to analyse, or a file that could not be read (``error`` says why)."""

    name: str
    data: bytes = b""
    error: str = ""


@dataclass(frozen=True)
class Skipped:
    """An archive entry that is not analysed, and why."""

    name: str
    reason: str


@dataclass
class ExpandedUploads:
    items: list[UploadItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def images(self) -> list[UploadItem]:
        return [i for i in self.items if not i.error]

    @property
    def failed(self) -> list[UploadItem]:
        return [i for i in self.items if i.error]

    def skipped_rows(self) -> list[dict[str, str]]:
        """The skipped entries as table rows (``entry``, ``reason``)."""
        return [{"entry": s.name, "reason": s.reason} for s in self.skipped]


class _MemberTooLarge(Exception):
    """A member unpacked past its allowance while being streamed out."""


def is_zip(name: str, data: bytes) -> bool:
    return name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04"


def _skip_reason(member: str) -> str | None:
    """Why an archive member is not analysed at all, or None for an image to unpack."""
    path = PurePosixPath(member.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or _DRIVE.fullmatch(path.parts[0] if path.parts else ""):
        return "unsafe path (.. or absolute), not unpacked"
    if any(p == "__MACOSX" or p.startswith(".") for p in path.parts):
        return "hidden or macOS metadata file"
    if path.suffix.lower() not in config.IMAGE_EXTENSIONS:
        return f"not an image file ({path.suffix.lower() or 'no extension'})"
    return None


def _refusal(member: zipfile.ZipInfo, room: int) -> str | None:
    """Why an image member is refused from its declared sizes, or None."""
    ratio = member.file_size / max(1, member.compress_size)
    if member.file_size > config.ZIP_RATIO_MIN_MB * _MB and ratio > config.ZIP_MAX_RATIO:
        return (
            f"refused: unpacks to {ratio:,.0f}x its packed size (limit {config.ZIP_MAX_RATIO}x), which photos never do"
        )
    if member.file_size > room:
        return (
            f"refused: {member.file_size / _MB:,.1f} MB would take the archive past "
            f"{config.ZIP_MAX_TOTAL_MB:,} MB unpacked (limit)"
        )
    return None


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, streamed in chunks and abandoned as soon as it passes ``limit``."""
    buffer = io.BytesIO()  # getvalue() hands over its buffer: no second copy of the member
    with archive.open(member) as stream:
        while chunk := stream.read(_CHUNK):
            if buffer.tell() + len(chunk) > limit:
                raise _MemberTooLarge(f"refused: unpacks past its declared {member.file_size:,} bytes")
            buffer.write(chunk)
    return buffer.getvalue()


def extract_zip(name: str, data: bytes) -> ExpandedUploads:
    """The images inside one archive, named ``archive.zip/folder/photo.jpg``."""
    out = ExpandedUploads()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        out.items.append(UploadItem(name, error=f"not a readable zip archive ({exc})"))
        return out
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            out.items.append(
                UploadItem(name, error=f"archive holds {len(members):,} files (limit {MAX_ZIP_MEMBERS:,})")
            )
            return out
        room = config.ZIP_MAX_TOTAL_MB * _MB
        for member in sorted(members, key=lambda m: m.filename):
            label = sanitize.text(f"{name}/{member.filename}")
            reason = _skip_reason(member.filename)
            if reason:
                out.skipped.append(Skipped(label, reason))
                continue
            refusal = _refusal(member, room)
            if refusal:
                out.items.append(UploadItem(label, error=refusal))
                continue
            try:
                payload = _read_member(archive, member, min(room, member.file_size))
            except _MemberTooLarge as exc:
                out.items.append(UploadItem(label, error=str(exc)))
                continue
            except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, NotImplementedError, ValueError) as exc:
                # Encrypted, truncated or exotically compressed members fail one by one.
                out.items.append(UploadItem(label, error=f"cannot extract from archive ({exc})"))
                continue
            room -= len(payload)
            out.items.append(UploadItem(label, payload))
    return out


def expand_uploads(files: Iterable[tuple[str, bytes]]) -> ExpandedUploads:
    """Flatten uploaded files: images pass through, archives are replaced by their images."""
    out = ExpandedUploads()
    for name, data in files:
        name = sanitize.text(name)
        if not data:
            out.items.append(UploadItem(name, error="empty file"))
        elif len(data) > config.MAX_UPLOAD_MB * _MB:
            # The browser enforces this too; a client that skips it is still held to the limit.
            out.items.append(
                UploadItem(name, error=f"file is {len(data) / _MB:,.1f} MB (limit {config.MAX_UPLOAD_MB:,} MB)")
            )
        elif is_zip(name, data):
            inner = extract_zip(name, data)
            out.items.extend(inner.items)
            out.skipped.extend(inner.skipped)
        else:
            out.items.append(UploadItem(name, data))
    return out
