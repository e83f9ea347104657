"""REST API for other systems: analyse photos, read the stored runs, results and summaries.

``create_app()`` builds the FastAPI application (no Streamlit, no TensorFlow on the ONNX
path); ``python -m src.cli serve`` runs it with uvicorn. See docs/api.md for the contract.

* ``GET /health`` (open): model version and labels, store backend, limits.
* ``POST /v1/analyze``: multipart ``files`` -> one result per file in the schema of
  ``aggregates.result_record`` (the dashboard's JSON download). A file that is not an
  image, is truncated, empty or too large gets ``status="error"`` with the reason; the
  others are analysed all the same. With ``store`` (default) the per-face rows are saved
  as one run (source ``api``) and its id returned.
* ``GET /v1/runs``, ``/v1/results`` (JSON or CSV, formula cells neutralised),
  ``/v1/summary`` (counts and shares per emotion and per group): read the results store.

Auth: ``Authorization: Bearer $FER_API_KEY`` on every /v1 route, compared in constant
time. Without a key configured the app only answers loopback clients (and ``serve``
only binds to loopback addresses). Limits: the request body (``FER_API_MAX_REQUEST_MB``)
is counted while it streams in and a larger Content-Length is refused before any of it
is read; the multipart parser stops at ``FER_API_MAX_FILES`` files; each file is held to
``FER_MAX_UPLOAD_MB`` (that file's error, not the request's). All answer 413 in JSON.

Threads: FastAPI runs the sync endpoints in a thread pool, all sharing one recognizer,
loaded once at start-up. Its face detector is thread-local and its classifier call is
thread-safe (ONNX Runtime) or serialised by a lock (Keras), see ``EmotionRecognizer``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from src import config
from src.analytics import aggregates
from src.analytics.aggregates import result_record
from src.analytics.store import NAME_MAX, SOURCES, TAGS_MAX, Store, StoreError, open_store
from src.engine.results import FailedFile

API_VERSION = "1.0.0"
SOURCE = "api"
LOOPBACK_NAMES = ("localhost",)
MB = 1024 * 1024
RUNS_LIMIT_DEFAULT = 100
RUNS_LIMIT_MAX = 10_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
Source = Literal[SOURCES]  # type: ignore[valid-type]

# ASGI, spelled out (the server and Starlette agree on these shapes).
Scope = Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only: localhost, 127.0.0.0/8 or ::1."""
    host = (host or "").strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ApiSettings:
    """What the app enforces; read from ``src.config`` (``FER_API_*``) unless given."""

    api_key: str = field(default_factory=lambda: config.API_KEY, repr=False)
    max_request_bytes: int = field(default_factory=lambda: int(config.API_MAX_REQUEST_MB * MB))
    max_files: int = field(default_factory=lambda: config.API_MAX_FILES)
    max_file_bytes: int = field(default_factory=lambda: int(config.MAX_UPLOAD_MB * MB))
    model_file: Path = field(default_factory=lambda: config.MODEL_FILE)


# --- Response schemas (they document the fields in /docs) -------------------------------


class BoxOut(BaseModel):
    x: int = Field(description="left edge, in the photo's original pixels")
    y: int = Field(description="top edge")
    w: int = Field(description="width")
    h: int = Field(description="height")


class FaceOut(BaseModel):
    box: BoxOut | None = Field(description="where the face is; null when the whole image was taken as one face")
    emotions: dict[str, float] = Field(description="calibrated probability per label (they sum to 1)")
    emotion: str = Field(description="the most probable label")
    confidence: float = Field(description="its probability")
    sentiment: str = Field(description="positive, neutral or negative, from the label")
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="custom groupings (FER_GROUPS_FILE): {grouping: [its groups this face is in]}"
    )
    landmarks: list[list[float]] | None = Field(
        default=None, description="eyes, nose tip, mouth corners as [x, y] (YuNet detector only)"
    )


class FileResultOut(BaseModel):
    file: str = Field(description="the uploaded file's name, exactly as sent")
    status: Literal["ok", "no_face", "error"] = Field(description="ok: faces found; no_face; error: see `error`")
    error: str = Field(description="why the file could not be used (empty unless status is error)")
    width: int = Field(description="image width in pixels (0 when it could not be read)")
    height: int = Field(description="image height in pixels")
    faces: list[FaceOut] = Field(description="one entry per detected face")


class AnalyzeOut(BaseModel):
    run_id: str | None = Field(description="id of the stored run (null with store=false)")
    model_version: str
    class_names: list[str] = Field(description="the model's labels, in the order of its outputs")
    results: list[FileResultOut] = Field(description="one entry per uploaded file, in upload order")


class HealthOut(BaseModel):
    status: Literal["ok"]
    api_version: str
    model_version: str
    model_file: str = Field(description="file name of the served model")
    runtime: str = Field(description="onnx or keras")
    class_names: list[str]
    store_backend: str = Field(description="sqlite, postgresql or mysql")
    auth: Literal["api_key", "loopback_only"] = Field(
        description="api_key: /v1 routes need the bearer key; loopback_only: no key set, calls from this machine only"
    )
    max_request_mb: float
    max_files: int
    max_file_mb: float


class EmotionCountOut(BaseModel):
    emotion: str
    faces: int
    share: float = Field(description="share of all faces, 0-1")


class GroupCountOut(BaseModel):
    group: str
    faces: int
    share: float = Field(description="share of all faces, 0-1")


class CustomGroupCountOut(BaseModel):
    grouping: str = Field(description="a grouping of FER_GROUPS_FILE")
    group: str
    faces: int
    share: float = Field(description="share of all faces, 0-1 (groups may overlap)")


class SummaryOut(BaseModel):
    runs: int = Field(description="runs that match the filters")
    images: int = Field(description="files analysed (a file counts once per run)")
    faces: int
    no_face: int = Field(description="files without a face")
    errors: int = Field(description="files that could not be used")
    emotions: list[EmotionCountOut] = Field(description="faces per top emotion, every label listed")
    grouping: str = Field(description="how emotions are grouped in `groups`")
    groups: list[GroupCountOut] = Field(description="faces per group of emotions")
    net_sentiment: float | None = Field(description="% positive minus % negative faces (-100..100), null without faces")
    custom_groups: list[CustomGroupCountOut] = Field(description="faces per group of the custom groupings")


class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, in words")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or wrong API key"},
    503: {"model": ErrorOut, "description": "the results store cannot be reached"},
}


# --- Request size limit -------------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``: by Content-Length before reading, else while streaming.

    Once the limit is passed, whatever the app makes of the cut-off body is dropped and
    the 413 sent instead (uvicorn then discards the rest of the upload unread into memory).
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def _reject(self, send: Send) -> None:
        detail = f"request body too large: the limit is {self.max_bytes / MB:g} MB per request (FER_API_MAX_REQUEST_MB)"
        await _send_json(send, 413, detail)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)  # before the first receive: a 100-continue client sends nothing
            return
        state = {"received": 0, "over": False, "started": False}

        async def limited_receive() -> Message:
            if state["over"]:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["over"] = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await self._reject(send)


# --- Auth -----------------------------------------------------------------------------------

V1_PREFIX = "/v1"
_bearer = HTTPBearer(auto_error=False, description="the server's FER_API_KEY")


def auth_problem(api_key: str, authorization: str | None, client_host: str | None) -> tuple[int, str] | None:
    """Why a /v1 call may not go on, as (status, message), or None when it may.

    With a key configured the header must be ``Bearer <key>`` (compared in constant time);
    without one only loopback clients are served.
    """
    if not api_key:
        if is_loopback(client_host or ""):
            return None
        return 403, "FER_API_KEY is not set on the server: it answers calls from its own machine only"
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return 401, "missing API key: send the header 'Authorization: Bearer <key>'"
    if not hmac.compare_digest(token.strip().encode("utf-8"), api_key.encode("utf-8")):
        return 401, "wrong API key"
    return None


async def _send_json(send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class AuthGate:
    """Checks the key of /v1 calls before anything reads their body (FastAPI parses a form
    before it runs the route's dependencies), so no upload is taken from an unknown caller."""

    def __init__(self, app: ASGIApp, api_key: str):
        self.app, self.api_key = app, api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == V1_PREFIX or path.startswith(V1_PREFIX + "/")):
            headers = dict(scope.get("headers") or ())
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            client = scope.get("client")
            problem = auth_problem(self.api_key, authorization, client[0] if client else None)
            if problem is not None:
                status, detail = problem
                await _send_json(send, status, detail, [(b"www-authenticate", b"Bearer")] if status == 401 else [])
                return
        await self.app(scope, receive, send)


def require_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """The same check as ``AuthGate``, as a dependency: it puts the bearer scheme in /docs."""
    authorization = f"Bearer {credentials.credentials}" if credentials else None
    problem = auth_problem(
        request.app.state.settings.api_key, authorization, request.client.host if request.client else None
    )
    if problem is not None:
        status, detail = problem
        raise HTTPException(status, detail, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


# --- Helpers --------------------------------------------------------------------------------


def check_name(value: str | None, what: str) -> str | None:
    """A campaign, location or tag as the store takes it (stripped, one line, at most NAME_MAX
    characters; blank = none), or a 422 saying what is wrong with it."""
    value = (value or "").strip()
    if not value:
        return None
    if _CONTROL.search(value):
        raise HTTPException(422, f"the {what} holds control characters (line breaks, tabs...)")
    if len(value) > NAME_MAX:
        raise HTTPException(422, f"the {what} is {len(value)} characters long; the limit is {NAME_MAX}")
    return value


def _filter_names(values: list[str] | None, what: str) -> list[str] | None:
    """Repeated filter values; an empty one selects runs without a {what}."""
    if values is None:
        return None
    return [check_name(v, what) or "" for v in values]


def split_tags(values: Sequence[str] | None) -> list[str]:
    """Tags given repeated and/or comma-separated, checked, blanks and repeats dropped, in order."""
    tags: list[str] = []
    for value in values or ():
        for tag in value.split(","):
            tag = check_name(tag, "tag")
            if tag and tag not in tags:
                tags.append(tag)
    if len(tags) > TAGS_MAX:
        raise HTTPException(422, f"{len(tags)} tags; the limit is {TAGS_MAX} per run")
    return tags


def group_shares(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """How faces spread over the sentiment groups: (grouping name, frame of group, faces, share).

    The custom groups of ``FER_GROUPS_FILE`` (src/analytics/groups.py) come as ``custom_groups``.
    """
    counts = aggregates.sentiment_counts(df).rename(columns={"sentiment": "group"})
    return "sentiment", counts


def summarize_results(df: pd.DataFrame, class_names: Sequence[str]) -> dict:
    """The /v1/summary numbers for a results frame of the store (one row per face or per faceless file)."""
    labels = list(class_names) + sorted(set(aggregates.faces_only(df)["emotion"]) - set(class_names))
    files = df.drop_duplicates(["run_id", "file"]) if len(df) else df
    grouping, groups = group_shares(df)
    emotions = aggregates.emotion_counts(df, labels)
    return {
        "runs": int(df["run_id"].nunique()) if len(df) else 0,
        "images": int(len(files)),
        "faces": int(len(aggregates.faces_only(df))),
        "no_face": int((files["status"] == "no_face").sum()) if len(df) else 0,
        "errors": int((files["status"] == "error").sum()) if len(df) else 0,
        "emotions": _records(emotions),
        "grouping": grouping,
        "groups": _records(groups),
        "net_sentiment": aggregates.net_sentiment(df),
        # The user's own groups (FER_GROUPS_FILE): grouping, group, faces, share of all faces.
        "custom_groups": _records(aggregates.group_counts(df)),
    }


# The query parameters /v1/runs, /v1/results and /v1/summary share.
CampaignQuery = Annotated[
    list[str] | None, Query(description="only this campaign (repeatable; empty = runs without one)")
]
SourceQuery = Annotated[list[Source] | None, Query(description="only runs from this source (repeatable)")]
SinceQuery = Annotated[datetime | None, Query(description="runs from this time on (ISO 8601; without a zone, UTC)")]
UntilQuery = Annotated[datetime | None, Query(description="runs before this time (exclusive)")]


class RunFilters:
    """Query filters of /v1/runs; campaign and source may be repeated (any of them)."""

    def __init__(
        self,
        campaign: CampaignQuery = None,
        source: SourceQuery = None,
        since: SinceQuery = None,
        until: UntilQuery = None,
    ):
        self.campaign = _filter_names(campaign, "campaign")
        self.source, self.since, self.until = source, since, until
        self.location: list[str] | None = None
        self.run_id: list[str] | None = None

    def store_kwargs(self, with_location: bool = True) -> dict:
        out = {"campaign": self.campaign, "source": self.source, "since": self.since, "until": self.until}
        if with_location:
            out.update(location=self.location, run_id=self.run_id)
        return out


class ResultFilters(RunFilters):
    """Query filters of /v1/results and /v1/summary: those of /v1/runs, location and run id."""

    def __init__(
        self,
        campaign: CampaignQuery = None,
        location: Annotated[
            list[str] | None, Query(description="only this location (repeatable; empty = runs without one)")
        ] = None,
        source: SourceQuery = None,
        since: SinceQuery = None,
        until: UntilQuery = None,
        run_id: Annotated[list[str] | None, Query(description="only this run (repeatable)", max_length=64)] = None,
    ):
        super().__init__(campaign, source, since, until)
        self.location = _filter_names(location, "location")
        self.run_id = run_id


def _too_many(max_files: int) -> str:
    return f"too many files: at most {max_files} per request (FER_API_MAX_FILES)"


def _records(df: pd.DataFrame) -> list[dict]:
    """A frame as JSON-ready records: NaN/NA as null, times in ISO 8601."""
    return json.loads(df.to_json(orient="records", date_format="iso", date_unit="us", force_ascii=False))


def _for_csv(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, (list, tuple))).any():
            out[col] = out[col].map(lambda v: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
    return out


def _store(request: Request) -> Store:
    return request.app.state.store


# --- The application ----------------------------------------------------------------------

DESCRIPTION = """\
Facial emotion recognition for other systems. Send photos to `/v1/analyze`; read what was
stored with `/v1/runs`, `/v1/results` and `/v1/summary`.

Every `/v1` route needs `Authorization: Bearer <FER_API_KEY>`. Errors are JSON:
`{"detail": "..."}` (422 validation errors: `{"detail": [{"loc": ..., "msg": ...}]}`).
"""


def create_app(
    settings: ApiSettings | None = None,
    recognizer: Any = None,
    store: Store | None = None,
) -> FastAPI:
    """The API. ``recognizer`` and ``store`` not given are loaded once at start-up (model from
    ``FER_MODEL``, database from ``FER_DATABASE_URL``), never per request."""
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from src.engine.inference import get_recognizer

        app.state.recognizer = recognizer or get_recognizer(settings.model_file)
        app.state.store = store or open_store()
        yield

    app = FastAPI(
        title="Facial emotion recognition API",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    # The last added runs first: the key is checked, then the body is counted as it comes.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(AuthGate, api_key=settings.api_key)

    @app.exception_handler(400)
    async def _bad_request(request: Request, exc: HTTPException):
        # Starlette answers the multipart parser's errors with a 400; the parser stops at
        # max_files while the body streams in, and that one is a 413 like the size limit.
        if str(exc.detail).startswith("Too many files"):
            return JSONResponse({"detail": _too_many(settings.max_files)}, status_code=413)
        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # JSON like every other answer, and no traceback: uvicorn logs it on the server.
        return JSONResponse({"detail": "internal server error (the server log has the details)"}, status_code=500)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError):
        return JSONResponse({"detail": f"results store: {exc}"}, status_code=503)

    @app.get("/health", response_model=HealthOut, summary="Is the server up, and with which model")
    def health(request: Request) -> dict:
        rec, st = request.app.state.recognizer, _store(request)
        return {
            "status": "ok",
            "api_version": API_VERSION,
            "model_version": rec.info.version,
            "model_file": Path(rec.info.path).name,
            "runtime": rec.info.runtime,
            "class_names": list(rec.class_names),
            "store_backend": str(getattr(st, "dialect", type(st).__name__)),
            "auth": "api_key" if settings.api_key else "loopback_only",
            "max_request_mb": settings.max_request_bytes / MB,
            "max_files": settings.max_files,
            "max_file_mb": settings.max_file_bytes / MB,
        }

    v1 = APIRouter(prefix=V1_PREFIX, dependencies=[Depends(require_key)], responses=ERROR_RESPONSES)

    @v1.post(
        "/analyze",
        response_model=AnalyzeOut,
        summary="Find the faces in photos and their emotions",
        form_limits={"max_files": settings.max_files},
        responses={413: {"model": ErrorOut, "description": "request body too large, or too many files"}},
    )
    def analyze(
        request: Request,
        files: Annotated[list[UploadFile], File(description="one or more images (JPEG, PNG, WebP, BMP, GIF, TIFF)")],
        campaign: Annotated[str | None, Form(description="campaign name to file the run under")] = None,
        location: Annotated[str | None, Form(description="where the photos were taken")] = None,
        tags: Annotated[
            list[str] | None, Form(description="tags: repeat the field and/or separate them with commas")
        ] = None,
        store: Annotated[bool, Form(description="save the results as a run in the results store")] = True,
    ) -> dict:
        if len(files) > settings.max_files:
            raise HTTPException(413, _too_many(settings.max_files))
        # Checked before any work, so a bad name costs the client nothing.
        campaign, location = check_name(campaign, "campaign"), check_name(location, "location")
        tags = split_tags(tags)
        rec = request.app.state.recognizer
        results: list[Any] = [None] * len(files)
        todo: list[tuple[int, str, bytes]] = []
        for i, upload in enumerate(files):
            name = upload.filename or f"file_{i + 1}"
            if upload.size is not None and upload.size > settings.max_file_bytes:
                results[i] = FailedFile(
                    name, f"file too large ({upload.size / MB:.1f} MB, limit {settings.max_file_bytes / MB:g} MB)"
                )
            else:
                todo.append((i, name, upload.file.read()))
        analysed = rec.analyze_batch([data for _, _, data in todo], names=[name for _, name, _ in todo])
        for (i, _, _), res in zip(todo, analysed):
            results[i] = res
        run_id = None
        if store:
            rows = [row for res in results for row in res.rows(rec.class_names)]
            run_id = _store(request).save_rows(
                SOURCE,
                rows,
                campaign=campaign,
                location=location,
                tags=tags,
                model_version=rec.info.version,
            )
        return {
            "run_id": run_id,
            "model_version": rec.info.version,
            "class_names": list(rec.class_names),
            "results": [result_record(res) for res in results],
        }

    @v1.get("/runs", summary="Stored runs, newest first")
    def runs(
        request: Request,
        filters: Annotated[RunFilters, Depends()],
        limit: Annotated[int, Query(ge=1, le=RUNS_LIMIT_MAX, description="at most this many runs")] = (
            RUNS_LIMIT_DEFAULT
        ),
    ) -> dict:
        df = _store(request).runs(limit=limit, **filters.store_kwargs(with_location=False))
        return {"count": int(len(df)), "runs": _records(df)}

    @v1.get(
        "/results",
        summary="Stored per-face rows (JSON or CSV)",
        responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
    )
    def results(
        request: Request,
        filters: Annotated[ResultFilters, Depends()],
        format: Annotated[
            Literal["json", "csv"], Query(description="json, or csv with formula-like text cells neutralised")
        ] = "json",
    ):
        df = _store(request).results(**filters.store_kwargs())
        if format == "csv":
            return Response(
                aggregates.csv_bytes(_for_csv(df)),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="results.csv"'},
            )
        return {"count": int(len(df)), "results": _records(df)}

    @v1.get("/summary", response_model=SummaryOut, summary="Counts and shares per emotion and per group")
    def summary(request: Request, filters: Annotated[ResultFilters, Depends()]) -> dict:
        df = _store(request).results(**filters.store_kwargs())
        return summarize_results(df, request.app.state.recognizer.class_names)

    app.include_router(v1)
    return app


__all__ = ["ApiSettings", "create_app", "group_shares", "is_loopback", "split_tags", "summarize_results"]
