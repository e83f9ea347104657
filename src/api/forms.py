"""Reading /v1/analyze's multipart body so that one odd part fails alone.

Starlette's form parser keeps python-multipart's default limit on a part's header line
(4 KB), so one file name of 8 KB failed the whole request with 400. Here a part's header
may be up to ``HEADER_MAX`` bytes (held one line at a time, and the body itself is bounded
by ``limits.BodyLimitMiddleware``); the route then gives a name longer than
``FILE_NAME_MAX`` characters its own error result (``long_name_problem``) and analyses the
other files. ``UploadRoute`` plugs the reader into FastAPI: its requests parse multipart
bodies with ``read_multipart``; any other body goes to Starlette as before.

Uploads are spooled: the first ``SPOOL_MAX`` bytes of a request's files, all files
together, stay in memory and the rest go to temporary files, so a request waiting for an
analysis slot holds at most that much memory besides its text fields.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Callable
from tempfile import SpooledTemporaryFile
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers, UploadFile

from src.api.asgi import MB

HEADER_MAX = MB  # one header line of one part (a file name of up to ~1 M characters)
FILE_NAME_MAX = 1024  # characters of a file name analysed; longer ones are that file's error
SPOOL_MAX = MB  # a request's upload bytes kept in memory, all files together; the rest go to disk


def too_many_files(max_files: int) -> str:
    return f"too many files: at most {max_files} per request (FER_API_MAX_FILES)"


def long_name_problem(name: str) -> tuple[str, str] | None:
    """For a file name over ``FILE_NAME_MAX`` characters: (its shortened form, the error); else None."""
    if len(name) <= FILE_NAME_MAX:
        return None
    return name[:FILE_NAME_MAX] + "…", f"file name too long ({len(name):,} characters, limit {FILE_NAME_MAX:,})"


def _text(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset)
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _bad(detail: str) -> HTTPException:
    return HTTPException(400, f"invalid multipart body: {detail}")


class _Part:
    """The part being read: its headers, then its field's text or its file."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.disposition = b""
        self.field = ""
        self.text = bytearray()
        self.upload: UploadFile | None = None
        self.size = 0  # the file's bytes so far
        self.spool_max = 0  # its SpooledTemporaryFile's max_size


class _MultipartReader:
    """python-multipart's callbacks, building Starlette's ``FormData``."""

    def __init__(self, charset: str, max_files: float, max_fields: float, max_part_size: int):
        self.charset, self.max_files, self.max_fields, self.max_part_size = (
            charset,
            max_files,
            max_fields,
            max_part_size,
        )
        self.items: list[tuple[str, str | UploadFile]] = []
        self.uploads: list[UploadFile] = []  # every file opened, closed on failure
        self.to_write: list[tuple[UploadFile, bytes]] = []  # written after each chunk (async, maybe to disk)
        self.to_rewind: list[UploadFile] = []
        self.in_memory = 0  # bytes of the finished uploads still held in memory
        self.part = _Part()
        self.files = self.fields = 0
        self._name: list[bytes] = []
        self._value: list[bytes] = []

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name.append(data[start:end])

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value.append(data[start:end])

    def on_header_end(self) -> None:
        name, value = b"".join(self._name).lower(), b"".join(self._value)
        self._name, self._value = [], []
        if name == b"content-disposition":
            self.part.disposition = value
        self.part.headers.append((name, value))

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.disposition)
        if b"name" not in options:
            raise _bad('a part has no "name" in its Content-Disposition header')
        self.part.field = _text(options[b"name"], self.charset)
        if b"filename" not in options:
            self.fields += 1
            if self.fields > self.max_fields:
                raise HTTPException(413, f"too many form fields: at most {self.max_fields:g}")
            return
        self.files += 1
        if self.files > self.max_files:
            raise HTTPException(413, too_many_files(int(self.max_files)))
        # What is left of the request's in-memory budget (max_size=1: straight to disk; 0 would mean no limit).
        limit = max(1, SPOOL_MAX - self.in_memory)
        upload = UploadFile(
            SpooledTemporaryFile(max_size=limit),  # noqa: SIM115 (closed with the form, or on failure)
            size=0,
            filename=_text(options[b"filename"], self.charset),
            headers=Headers(raw=self.part.headers),
        )
        self.uploads.append(upload)
        self.part.upload, self.part.spool_max = upload, limit

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.upload is not None:
            self.to_write.append((self.part.upload, data[start:end]))
            self.part.size += end - start
            return
        if len(self.part.text) + (end - start) > self.max_part_size:
            raise HTTPException(
                413, f"form field {self.part.field!r} too large: at most {self.max_part_size // 1024} KB"
            )
        self.part.text += data[start:end]

    def on_part_end(self) -> None:
        if self.part.upload is None:
            self.items.append((self.part.field, _text(bytes(self.part.text), self.charset)))
        else:
            self.items.append((self.part.field, self.part.upload))
            self.to_rewind.append(self.part.upload)
            if self.part.size <= self.part.spool_max:  # it stays in memory
                self.in_memory += self.part.size

    async def flush(self) -> None:
        """Write the file data of the last chunk, and rewind the files that ended in it."""
        for upload, data in self.to_write:
            await upload.write(data)
        for upload in self.to_rewind:
            await upload.seek(0)
        self.to_write.clear()
        self.to_rewind.clear()


async def read_multipart(
    content_type: str,
    stream: AsyncIterator[bytes],
    *,
    max_files: float,
    max_fields: float,
    max_part_size: int,
) -> FormData:
    """A multipart/form-data body as ``FormData``: files spooled to temporary files, fields as text.

    Broken bodies are a 400 and too many parts a 413, as ``HTTPException``s; the files
    opened so far are closed on any failure (a body cut off by the size limit included)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise _bad("no boundary in its Content-Type")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "latin-1"
    reader = _MultipartReader(charset, max_files, max_fields, max_part_size)
    parser = MultipartParser(boundary, reader.callbacks(), max_header_size=HEADER_MAX)  # type: ignore[arg-type]
    try:
        async for chunk in stream:
            parser.write(chunk)
            await reader.flush()
        parser.finalize()
        await reader.flush()
    except BaseException as exc:
        for upload in reader.uploads:
            upload.file.close()
        if isinstance(exc, FormParserError):
            raise _bad(str(exc) or type(exc).__name__) from None
        raise
    return FormData(reader.items)


class UploadRequest(Request):
    """A request whose multipart form is read by ``read_multipart``."""

    async def form(  # type: ignore[override]
        self, *, max_files: float = 1000, max_fields: float = 1000, max_part_size: int = MB
    ) -> FormData:
        content_type = self.headers.get("content-type", "")
        if parse_options_header(content_type)[0] != b"multipart/form-data":
            return await super().form(max_files=max_files, max_fields=max_fields, max_part_size=max_part_size)
        return await read_multipart(
            content_type, self.stream(), max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
        )


class UploadRoute(APIRoute):
    """A route whose handler gets an ``UploadRequest`` (FastAPI's documented way to customise the request)."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def with_upload_request(request: Request) -> Response:
            return await handler(UploadRequest(request.scope, request.receive))

        return with_upload_request
