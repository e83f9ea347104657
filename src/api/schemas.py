"""The API's response schemas: they validate what the routes return and document every field in /docs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


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
    file: str = Field(
        description="the uploaded file's name, exactly as sent (cut at 1024 characters, then '…', when longer)"
    )
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
    403: {"model": ErrorOut, "description": "no key set on the server, and the call is not from its own machine"},
    429: {"model": ErrorOut, "description": "too many wrong keys from this address (see Retry-After)"},
    503: {"model": ErrorOut, "description": "the results store cannot be reached"},
}
