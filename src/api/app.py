"""REST API for other systems: analyse photos, read the stored runs, results and summaries.

``create_app()`` builds the FastAPI application (no Streamlit, no TensorFlow on the ONNX
path); ``python -m src.cli serve`` runs it with uvicorn. See docs/api.md for the contract.

* ``GET /health`` (open): model version and labels, store backend, limits.
* ``POST /v1/analyze``: multipart ``files`` -> one result per file in the schema of
  ``aggregates.result_record`` (the dashboard's JSON download). A file that is not an
  image, is truncated, empty, too large or has an over-long name gets ``status="error"``
  with the reason; the others are analysed all the same. With ``store`` (default) the
  per-face rows are saved as one run (source ``api``) and its id returned.
* ``GET /v1/runs``, ``/v1/results`` (JSON, or CSV streamed chunk by chunk with formula cells
  neutralised), ``/v1/summary`` (people per emotion and per group from the store's tallies,
  summed in the database, each share also corrected for the model's known mistakes with its
  95% range, the samples beside them, and the ``error_model`` the correction rests on): read
  the results store.
* ``/docs`` and ``/redoc`` (open): the interactive pages, served offline (``docs``).

The modules: ``auth`` (keys, the no-key loopback mode, proxies, throttling), ``limits``
(the request body limit), ``forms`` (the multipart reader), ``schemas`` (the response
models), ``shares`` (the corrected shares and the served error model), ``docs`` (the pages'
local assets); ``asgi`` holds what the middlewares share.

Limits: the request body (``FER_API_MAX_REQUEST_MB``) is counted while it streams in and a
larger Content-Length is refused before any of it is read; the multipart parser stops at
``FER_API_MAX_FILES`` files; each file is held to ``FER_MAX_UPLOAD_MB`` (that file's error,
not the request's). All answer 413 in JSON. A body that stalls (``FER_API_BODY_IDLE_S``) or
drags on (``FER_API_BODY_TIMEOUT_S``) gets 408; slow headers are the server's
(``server.HeaderTimeout``).

Capacity (``capacity``): the uploads are spooled (to disk past ~1 MB a request), then read,
decoded and analysed one file at a time, each in one of ``FER_API_ANALYSES`` slots, the
images decoded at once within ``FER_API_DECODE_MB``: memory stays bounded however many
requests come, and a request that waits over ``FER_API_QUEUE_TIMEOUT_S`` gets 503 with
Retry-After.

Threads: the analysis and the store's reads and writes run in the event loop's thread
pool, sharing one recognizer and one error model, loaded once at start-up. Its face
detector is thread-local and its classifier call is thread-safe (ONNX Runtime) or
serialised by a lock (Keras), see ``EmotionRecognizer``.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool

from src import config
from src.analytics import groups, trends
from src.analytics.aggregates import result_record
from src.analytics.store import NAME_MAX, SOURCES, TAGS_MAX, Store, StoreError, open_store
from src.api.asgi import MB
from src.api.auth import V1_PREFIX, AuthGate, AuthThrottle, auth_problem, is_loopback, key_problem, require_key
from src.api.capacity import (
    TRIM_PIXELS,
    AnalysisSlots,
    ShuttingDown,
    decoded_bytes,
    default_slots,
    release_memory,
    shutting_down_error,
    stop_check,
)
from src.api.docs import add_offline_docs
from src.api.forms import UploadRoute, long_name_problem, too_many_files
from src.api.limits import BodyLimitMiddleware
from src.api.report import router as report_router
from src.api.schemas import ERROR_RESPONSES, AnalyzeOut, ErrorOut, HealthOut, SummaryOut
from src.api.shares import ServedErrorModel, adjust
from src.common import sanitize
from src.engine.results import FailedFile, ImageResult

API_VERSION = "1.0.0"
SOURCE = "api"
RUNS_LIMIT_DEFAULT = 100
RUNS_LIMIT_MAX = 10_000
# The analyze routes' text fields (campaign, location, tags, ...): enough for TAGS_MAX tags of
# NAME_MAX characters, and a bound on what a request holds in memory besides its files.
FORM_FIELDS_MAX = 200
FORM_FIELD_BYTES = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
Source = Literal[SOURCES]  # type: ignore[valid-type]


@dataclass(frozen=True)
class ApiSettings:
    """What the app enforces; read from ``src.config`` (``FER_API_*``) unless given."""

    api_key: str = field(default_factory=lambda: config.API_KEY, repr=False)
    max_request_bytes: int = field(default_factory=lambda: int(config.API_MAX_REQUEST_MB * MB))
    max_files: int = field(default_factory=lambda: config.API_MAX_FILES)
    max_file_bytes: int = field(default_factory=lambda: int(config.MAX_UPLOAD_MB * MB))
    max_video_s: float = field(default_factory=lambda: config.API_MAX_VIDEO_S)
    # Files analysed at once (0: one per core, and one more), the memory of the images decoded
    # at once, and how long a request waits for either (capacity.AnalysisSlots).
    analyses: int = field(default_factory=lambda: config.API_ANALYSES)
    decode_bytes: int = field(default_factory=lambda: config.API_DECODE_MB * MB)
    queue_timeout_s: float = field(default_factory=lambda: config.API_QUEUE_TIMEOUT_S)
    # The longest pause in a request body, and the longest body, in seconds (408 beyond).
    body_idle_s: float = field(default_factory=lambda: config.API_BODY_IDLE_S)
    body_timeout_s: float = field(default_factory=lambda: config.API_BODY_TIMEOUT_S)
    model_file: Path = field(default_factory=lambda: config.MODEL_FILE)
    # The served model's error model (src/training/error_model.py); None: the one beside model_file.
    error_model_file: Path | None = None
    # Failed keys per client address: this many in a row, then one per auth_refill_s seconds.
    auth_burst: int = 10
    auth_refill_s: float = 6.0


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


def _share_records(counts: Mapping[str, int], total: int, key: str, **fields: str) -> list[dict]:
    """``[{**fields, key: label, "faces": n, "share": n / total}]`` (share 0 without people)."""
    return [
        {**fields, key: label, "faces": int(n), "share": (int(n) / total) if total else 0.0}
        for label, n in counts.items()
    ]


def summarize(
    people: pd.DataFrame,
    samples: pd.DataFrame,
    runs: pd.DataFrame,
    class_names: Sequence[str],
    error_model: ServedErrorModel | None = None,
    *,
    sure: Mapping[float, pd.DataFrame] | None = None,
    outcomes: Mapping[str, int] | None = None,
) -> dict:
    """The /v1/summary numbers from the store's tallies: ``people`` and ``samples``
    (``Store.tallies(unit=...)`` of the selection), ``sure`` (person tallies at each confidence
    threshold of the custom groups), ``runs`` (the selected runs per model version: columns
    ``model_version``, ``runs``, ``files``, ``people``; ``Store.run_totals``) and ``outcomes`` (files
    without a face, files that failed: ``Store.file_outcomes``).

    Emotions, groups, net sentiment and the corrected shares count people: a face in a photo is
    one person, someone followed through a video or by the live camera one person with their
    averaged label; ``faces`` counts samples (face rows and live face-seconds)."""
    active = groups.active()  # one read of the groups file for the counts and their correction
    counts = trends.label_counts(people)
    labels = list(class_names) + sorted(set(counts) - set(class_names))
    total = int(sum(counts.values()))
    sentiment_counts, _ = trends.bucket_counts(people, active.sentiment)
    by_sentiment = {b: int(sentiment_counts[b].sum()) if len(sentiment_counts) else 0 for b in active.sentiment.buckets}
    custom = []
    for grouping in active.custom:
        found, _ = trends.bucket_counts(people, grouping, sure=sure)
        bucket_counts = {b: int(found[b].sum()) if len(found) else 0 for b in grouping.buckets}
        custom += _share_records(bucket_counts, total, "group", grouping=grouping.name)
    versions = dict(zip(runs["model_version"].fillna("").astype(str), runs["people"].astype(int)))
    outcomes = outcomes or {}
    summary = {
        "runs": int(runs["runs"].sum()),
        "images": int(runs["files"].sum()),
        "faces": int(trends.clean_tallies(samples)["n"].sum()),
        "no_face": int(outcomes.get("no_face", 0)),
        "errors": int(outcomes.get("error", 0)),
        "emotions": _share_records({e: counts.get(e, 0) for e in labels}, total, "emotion"),
        "grouping": "sentiment",
        "groups": _share_records(by_sentiment, total, "group"),
        "net_sentiment": round(100.0 * (by_sentiment["positive"] - by_sentiment["negative"]) / total, 1)
        if total
        else None,
        # The user's own groups (FER_GROUPS_FILE): grouping, group, people, share of all people.
        "custom_groups": custom,
        "people": total,
    }
    return adjust(summary, counts, error_model, active.sentiment, active.custom, versions)


# The query parameters /v1/runs, /v1/results and /v1/summary share.
CampaignQuery = Annotated[
    list[str] | None, Query(description="only this campaign (repeatable; empty = runs without one)")
]
SourceQuery = Annotated[list[Source] | None, Query(description="only runs from this source (repeatable)")]


def in_utc(value: datetime | None) -> datetime | None:
    """A query time in UTC (no zone = UTC, as the store reads it); a ValueError (so a 422)
    for one that UTC cannot hold, e.g. 0001-01-01T00:00:00+14:00 (the year 0 in UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range: in UTC it falls outside the years 1 to 9999") from None


SinceQuery = Annotated[
    datetime | None,
    Query(description="runs from this time on (ISO 8601; without a zone, UTC)"),
    AfterValidator(in_utc),
]
UntilQuery = Annotated[datetime | None, Query(description="runs before this time (exclusive)"), AfterValidator(in_utc)]


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
        include_unfinished: Annotated[
            bool,
            Query(
                description="also count runs that did not finish: still running, failed or abandoned "
                "(by default only finished runs count)"
            ),
        ] = False,
    ):
        super().__init__(campaign, source, since, until)
        self.location = _filter_names(location, "location")
        self.run_id = run_id
        self.include_unfinished = include_unfinished

    def store_kwargs(self, with_location: bool = True) -> dict:
        return {**super().store_kwargs(with_location), "include_unfinished": self.include_unfinished}


def _records(df: pd.DataFrame) -> list[dict]:
    """A frame as JSON-ready records: NaN/NA as null, times in ISO 8601."""
    return json.loads(df.to_json(orient="records", date_format="iso", date_unit="us", force_ascii=False))


def _for_csv(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, (list, tuple))).any():
            out[col] = out[col].map(lambda v: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
    return out


def _csv_stream(chunks, empty: Callable[[], pd.DataFrame]) -> Iterator[bytes]:
    """CSV bytes of result chunks as ``aggregates.csv_bytes`` writes them (formula-like cells
    neutralised, header cells too), the header once; no rows: the header of ``empty()`` alone."""
    first = True
    for chunk in chunks:
        if not (first or len(chunk)):
            continue
        yield _csv_part(chunk, header=first)
        first = False
    if first:
        yield _csv_part(empty(), header=True)


def _csv_part(chunk: pd.DataFrame, header: bool) -> bytes:
    out = sanitize.csv_frame(_for_csv(chunk))
    out.columns = [sanitize.csv_cell(str(c)) for c in out.columns]
    return out.to_csv(index=False, header=header).encode("utf-8")


def _store(request: Request) -> Store:
    return request.app.state.store


def analyse_upload(rec: Any, upload: UploadFile, name: str, slots: AnalysisSlots) -> ImageResult:
    """One uploaded photo read, decoded and analysed (in one of ``slots``, within its decode
    memory), its file closed after. Never raises for a bad file: its result says why."""
    try:
        data = upload.file.read()
    finally:
        upload.file.close()
    with slots.decoding(decoded_bytes(data)):
        result = rec.analyze_batch([data], names=[name])[0]
    del data
    if result.width * result.height >= TRIM_PIXELS:
        release_memory()
    return result


def analyse_uploads(rec: Any, uploads: Sequence[UploadFile], max_bytes: int, slots: AnalysisSlots) -> list[Any]:
    """The result of each upload, in order: an error for a name or size over the limits, else
    its analysis, one file at a time, each in one of ``slots`` (503 when none comes free)."""
    results: list[Any] = []
    for i, upload in enumerate(uploads):
        name = upload.filename or f"file_{i + 1}"
        problem = _upload_problem(upload, name, max_bytes)
        if problem is None:
            with slots.slot():
                problem = analyse_upload(rec, upload, name, slots)
        results.append(problem)
    return results


def _analyse_video(
    rec: Any, upload: UploadFile, name: str, every: float, max_s: float, slots: AnalysisSlots
) -> tuple[Any, list[dict], list[Any]]:
    """A video upload, copied to a file OpenCV can read, checked and analysed in one of ``slots``:
    its info, face rows and people. 413 when it is too long, 422 when it is not a video;
    ``ShuttingDown`` between frames."""
    from src.analytics.people import people_of_rows
    from src.analytics.persist import video_rows
    from src.streams.video import VideoError, analyze_video, probe

    suffix = Path(name).suffix.lower() or ".mp4"
    with tempfile.NamedTemporaryFile(suffix=suffix, prefix="fer_video_") as tmp:
        try:
            shutil.copyfileobj(upload.file, tmp)
        finally:
            upload.file.close()
        tmp.flush()
        try:
            if tmp.tell() == 0:
                raise VideoError("empty file")
            info = probe(tmp.name)
            if info.duration_s > max_s:
                raise HTTPException(413, f"video too long ({info.duration_s:.0f} s, limit {max_s:g} s)")
            with slots.slot():
                analysis = analyze_video(rec, tmp.name, every, progress=stop_check(slots.stopping))
        except VideoError as exc:
            raise HTTPException(422, f"{name}: {exc}") from None
    rows = video_rows(analysis.faces, name, rec.class_names)
    people = people_of_rows([{**r, "emotions": {c: r[c] for c in rec.class_names}} for r in rows])
    return info, rows, people


def _upload_problem(upload: UploadFile, name: str, max_bytes: int) -> FailedFile | None:
    """The error result of a file that is not analysed (name or size over the limits), else None."""
    long_name = long_name_problem(name)
    if long_name is not None:
        return FailedFile(*long_name)
    if upload.size is not None and upload.size > max_bytes:
        return FailedFile(name, f"file too large ({upload.size / MB:.1f} MB, limit {max_bytes / MB:g} MB)")
    return None


# --- The application ----------------------------------------------------------------------

DESCRIPTION = """\
Facial emotion recognition for other systems. Send photos to `/v1/analyze`; read what was
stored with `/v1/runs`, `/v1/results` and `/v1/summary`.

Every `/v1` route needs `Authorization: Bearer <FER_API_KEY>`, the key sent as UTF-8; after
10 wrong keys an address gets 429 (see `Retry-After`). Errors are JSON: `{"detail": "..."}`
(422 validation errors: `{"detail": [{"loc": ..., "msg": ...}]}`).
"""


async def _save_run(request: Request, rows: list[dict], **run_fields: Any) -> str:
    """Store ``rows`` as one API run read by the served model; returns its id."""
    version = request.app.state.recognizer.info.version
    return await run_in_threadpool(_store(request).save_rows, SOURCE, rows, model_version=version, **run_fields)


def create_app(
    settings: ApiSettings | None = None,
    recognizer: Any = None,
    store: Store | None = None,
) -> FastAPI:
    """The API. ``recognizer`` and ``store`` not given are loaded once at start-up (model from
    ``FER_MODEL``, database from ``FER_DATABASE_URL``), never per request; so is the served
    model's error model (``settings.error_model_file``, by default the one beside the model).

    A key too weak to serve (``auth.key_problem``) is a ValueError: ``serve`` checks it
    first, with a user's message; this covers other launchers (``uvicorn --factory``)."""
    settings = settings or ApiSettings()
    problem = key_problem(settings.api_key)
    if problem:
        raise ValueError(problem)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from src.engine.inference import get_recognizer

        # In the server's event loop, where requests wait for them.
        app.state.slots = AnalysisSlots(
            settings.analyses or default_slots(), settings.decode_bytes, settings.queue_timeout_s, app.state.stopping
        )
        app.state.recognizer = recognizer or get_recognizer(settings.model_file)
        app.state.store = store or open_store()
        # Once per app: every /v1/summary corrects its shares with it (or says why it cannot).
        app.state.error_model = ServedErrorModel.load(
            settings.model_file, app.state.recognizer.info.manifest, settings.error_model_file
        )
        yield

    app = FastAPI(
        title="Facial emotion recognition API",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # Set by the server on SIGTERM (server.ApiServer): work in progress stops and answers 503.
    app.state.stopping = threading.Event()
    app.state.auth_throttle = AuthThrottle(burst=settings.auth_burst, refill_s=settings.auth_refill_s)
    # The last added runs first: the key is checked, then the body is counted and timed as it comes.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        idle_s=settings.body_idle_s,
        total_s=settings.body_timeout_s,
        stopping=app.state.stopping,
    )
    app.add_middleware(AuthGate, api_key=settings.api_key, throttle=app.state.auth_throttle)
    add_offline_docs(app)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # JSON like every other answer, and no traceback: uvicorn logs it on the server.
        return JSONResponse({"detail": "internal server error (the server log has the details)"}, status_code=500)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError):
        return JSONResponse({"detail": f"results store: {exc}"}, status_code=503)

    @app.exception_handler(ShuttingDown)
    async def _shutting_down(request: Request, exc: ShuttingDown):
        error = shutting_down_error()
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)

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

    # UploadRoute: a form part's long header (an 8 KB file name) fails that file alone (forms.py).
    v1 = APIRouter(
        prefix=V1_PREFIX, dependencies=[Depends(require_key)], responses=ERROR_RESPONSES, route_class=UploadRoute
    )

    @v1.post(
        "/analyze",
        response_model=AnalyzeOut,
        summary="Find the faces in photos and their emotions",
        form_limits={
            "max_files": settings.max_files,
            "max_fields": FORM_FIELDS_MAX,
            "max_part_size": FORM_FIELD_BYTES,
        },
        responses={
            408: {"model": ErrorOut, "description": "the request body came too slowly"},
            413: {"model": ErrorOut, "description": "request body too large, or too many files"},
            503: {"model": ErrorOut, "description": "busy (see Retry-After), shutting down, or the store is down"},
        },
    )
    async def analyze(
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
            raise HTTPException(413, too_many_files(settings.max_files))
        # Checked before any work, so a bad name costs the client nothing.
        campaign, location = check_name(campaign, "campaign"), check_name(location, "location")
        tags = split_tags(tags)
        rec, slots = request.app.state.recognizer, request.app.state.slots
        # One file at a time, each in a slot: its bytes are read and decoded there, never all at once.
        async with slots.admitted():
            results = await run_in_threadpool(analyse_uploads, rec, files, settings.max_file_bytes, slots)
        run_id = None
        if store:
            rows = [row for res in results for row in res.rows(rec.class_names)]
            run_id = await _save_run(request, rows, campaign=campaign, location=location, tags=tags)
        return {
            "run_id": run_id,
            "model_version": rec.info.version,
            "class_names": list(rec.class_names),
            "results": [result_record(res) for res in results],
        }

    @v1.post(
        "/analyze-video",
        summary="Follow the people in a video and read their emotions",
        form_limits={"max_fields": FORM_FIELDS_MAX, "max_part_size": FORM_FIELD_BYTES},
        responses={
            408: {"model": ErrorOut, "description": "the request body came too slowly"},
            413: {"model": ErrorOut, "description": "video too large or too long"},
            422: {"model": ErrorOut, "description": "not a readable video"},
            503: {"model": ErrorOut, "description": "busy (see Retry-After), shutting down, or the store is down"},
        },
    )
    async def analyze_video(
        request: Request,
        file: Annotated[UploadFile, File(description="one video file (MP4, MOV, AVI, MKV, WebM, ...)")],
        every: Annotated[
            float, Form(ge=0.1, le=10.0, description="seconds between the frames analysed (default 0.5)")
        ] = 0.5,
        campaign: Annotated[str | None, Form(description="campaign name to file the run under")] = None,
        location: Annotated[str | None, Form(description="where the video was taken")] = None,
        tags: Annotated[
            list[str] | None, Form(description="tags: repeat the field and/or separate them with commas")
        ] = None,
        store: Annotated[bool, Form(description="save the results as a run in the results store")] = True,
    ) -> dict:
        campaign, location = check_name(campaign, "campaign"), check_name(location, "location")
        tags = split_tags(tags)
        name = file.filename or "video"
        problem = long_name_problem(name)
        if problem is not None:
            raise HTTPException(422, problem[1])
        if file.size is not None and file.size > settings.max_file_bytes:
            raise HTTPException(
                413, f"video too large ({file.size / MB:.1f} MB, limit {settings.max_file_bytes / MB:g} MB)"
            )
        rec = request.app.state.recognizer
        # One slot for the whole video: its frames are decoded one at a time.
        slots = request.app.state.slots
        async with slots.admitted():
            info, rows, people = await run_in_threadpool(
                _analyse_video, rec, file, name, every, settings.max_video_s, slots
            )
        run_id = None
        if store and rows:
            run_id = await _save_run(request, rows, campaign=campaign, location=location, tags=tags)
        return {
            "run_id": run_id,
            "model_version": rec.info.version,
            "class_names": list(rec.class_names),
            "file": name,
            "duration_s": round(info.duration_s, 3),
            "every_s": every,
            "samples": len(rows),
            "people": [person.as_row() for person in people],
            "faces": rows,
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
        description="One row per face (a photo's face, a video's face in each sampled frame), and one per "
        "file without a face or that could not be read; `since`/`until` apply to each row's time (a video "
        "row: its run's time plus its time in the video). The CSV is streamed from the store in chunks, "
        "so a large selection downloads in constant server memory.",
        responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
    )
    def results(
        request: Request,
        filters: Annotated[ResultFilters, Depends()],
        format: Annotated[
            Literal["json", "csv"], Query(description="json, or csv with formula-like text cells neutralised")
        ] = "json",
    ):
        store = _store(request)
        chunks = iter(store.iter_results(**filters.store_kwargs()))
        first = next(chunks, None)  # read now: a store that fails answers 503 before any byte is sent
        chunks = itertools.chain([] if first is None else [first], chunks)
        if format == "csv":
            return StreamingResponse(
                _csv_stream(chunks, lambda: store.page_results(**filters.store_kwargs(), limit=0)),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="results.csv"'},
            )
        records = [record for chunk in chunks for record in _records(chunk)]
        return {"count": len(records), "results": records}

    @v1.get(
        "/summary",
        response_model=SummaryOut,
        summary="Counts and shares per emotion and per group, raw and corrected for the model's mistakes",
        description="Counts **people**: a face in a photo is one person, and someone followed through a video "
        "or by the live camera is one person with the average of their samples. `emotions`, `groups`, "
        "`custom_groups` and `net_sentiment` count people (their `faces` field is a count of people), and "
        "so do the corrected shares; `faces` counts samples (face rows and live face-seconds) and `people` "
        "the people. Summed in the database (the store's tallies): `since`/`until` apply to the hour a "
        "person was first seen (a sample: seen); `runs` and `images` count the selected runs started in "
        "that span. `include_uncertain=false` leaves out the faces and people the engine found doubtful.",
    )
    def summary(
        request: Request,
        filters: Annotated[ResultFilters, Depends()],
        include_uncertain: Annotated[
            bool, Query(description="count the faces and people the engine found doubtful (default true)")
        ] = True,
    ) -> dict:
        store = _store(request)
        # Days are all the summary tells apart (its totals): the database sums campaigns and the rest.
        kwargs = {**filters.store_kwargs(), "include_uncertain": include_uncertain}
        kwargs |= {"bucket": "day", "by": ()}
        people = store.tallies("person", **kwargs)
        samples = store.tallies("sample", **kwargs)
        thresholds = trends.confidence_thresholds(*groups.active().custom)
        sure = {t: store.tallies("person", **kwargs, min_confidence=t) for t in thresholds}
        return summarize(
            people,
            samples,
            store.run_totals(**filters.store_kwargs()),
            request.app.state.recognizer.class_names,
            request.app.state.error_model,
            sure=sure,
            outcomes=store.file_outcomes(**filters.store_kwargs()),
        )

    app.include_router(v1)
    app.include_router(report_router)
    return app


__all__ = [
    "ApiSettings",
    "auth_problem",
    "create_app",
    "in_utc",
    "is_loopback",
    "split_tags",
    "summarize",
]
