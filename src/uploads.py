"""Turn what a user dropped on the page (images and ``.zip`` archives) into named image payloads.

Archives are opened in memory; images in nested folders are kept with their path
inside the archive as the name. Non-image members are skipped (and reported),
and size limits guard against zip bombs. Nothing here raises for bad input.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from src import config

# Archives may hold many small photos; these keep one upload from exhausting memory.
MAX_ZIP_MEMBERS = 5000
MAX_ZIP_TOTAL_MB = 4 * config.MAX_UPLOAD_MB


@dataclass(frozen=True)
class UploadItem:
    """One image to analyse, or a file that could not be read (``error`` says why)."""

    name: str
    data: bytes = b""
    error: str = ""


@dataclass
class ExpandedUploads:
    items: list[UploadItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # archive members that are not images

    @property
    def images(self) -> list[UploadItem]:
        return [i for i in self.items if not i.error]

    @property
    def failed(self) -> list[UploadItem]:
        return [i for i in self.items if i.error]


def is_zip(name: str, data: bytes) -> bool:
    return name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04"


def _is_junk(member: str) -> bool:
    """macOS resource forks and hidden files that zips made on a Mac carry."""
    parts = PurePosixPath(member).parts
    return any(p == "__MACOSX" or p.startswith(".") for p in parts)


def _is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in config.IMAGE_EXTENSIONS


def extract_zip(name: str, data: bytes) -> ExpandedUploads:
    """The images inside one archive, named ``archive.zip/folder/photo.jpg``."""
    out = ExpandedUploads()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        out.items.append(UploadItem(name, error=f"not a readable zip archive ({exc})"))
        return out
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not _is_junk(m.filename)]
        if len(members) > MAX_ZIP_MEMBERS:
            out.items.append(
                UploadItem(name, error=f"archive holds {len(members):,} files (limit {MAX_ZIP_MEMBERS:,})")
            )
            return out
        total = sum(m.file_size for m in members if _is_image_name(m.filename))
        if total > MAX_ZIP_TOTAL_MB * 1024 * 1024:
            out.items.append(
                UploadItem(name, error=f"archive unpacks to {total / 2**20:,.0f} MB (limit {MAX_ZIP_TOTAL_MB:,} MB)")
            )
            return out
        for member in sorted(members, key=lambda m: m.filename):
            label = f"{name}/{member.filename}"
            if not _is_image_name(member.filename):
                out.skipped.append(label)
                continue
            try:
                out.items.append(UploadItem(label, archive.read(member)))
            except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, NotImplementedError) as exc:
                # Encrypted, truncated or exotically compressed members fail one by one.
                out.items.append(UploadItem(label, error=f"cannot extract from archive ({exc})"))
    return out


def expand_uploads(files: Iterable[tuple[str, bytes]]) -> ExpandedUploads:
    """Flatten uploaded files: images pass through, archives are replaced by their images."""
    out = ExpandedUploads()
    for name, data in files:
        if not data:
            out.items.append(UploadItem(name, error="empty file"))
        elif is_zip(name, data):
            inner = extract_zip(name, data)
            out.items.extend(inner.items)
            out.skipped.extend(inner.skipped)
        else:
            out.items.append(UploadItem(name, data))
    return out
