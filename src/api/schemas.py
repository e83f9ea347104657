"""The API's response schemas: they validate what the routes return and document every field in /docs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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
    uncertain: bool = Field(
        default=False,
        description="true when the label is unreliable (see `doubts`); such faces can be left out of shares",
    )
    doubts: list[Literal["small", "blurred", "turned", "low_confidence"]] = Field(
        default_factory=list,
        description="why the face is uncertain: small (face box under FER_DOUBT_MIN_FACE_PX px), blurred "
        "(sharpness under FER_DOUBT_MIN_SHARPNESS), turned (head turn over FER_DOUBT_MAX_YAW; off by "
        "default), low_confidence (confidence recalibrated for real photos under FER_DOUBT_MIN_CONFIDENCE); "
        "empty when it is not",
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


# The corrected share every emotion and group record carries beside its raw ``share``
# (src/api/shares.py, src/analytics/quantify.py).
AdjustedShare = Annotated[
    float | None,
    Field(
        description="the share corrected for the model's known mix-ups (see `error_model`), 0-1: the best "
        "estimate of the share that truly show it, where `share` is the share the model labelled so; "
        "null when it cannot be corrected (see `adjusted_reason`)"
    ),
]
AdjustedLow = Annotated[
    float | None,
    Field(
        description="low end of the 95% range of the corrected share (allowing for chance in the people "
        "counted and for the uncertainty of the error model itself); null with it"
    ),
]
AdjustedHigh = Annotated[float | None, Field(description="high end of that 95% range; null with it")]
AdjustedReason = Annotated[
    str | None,
    Field(
        description="why there is no corrected share, in words (no error model for the served model, a "
        "confidence threshold, no faces, labels the error model does not know); null when there is one"
    ),
]


class EmotionCountOut(BaseModel):
    emotion: str
    faces: int = Field(
        description="people whose top label (a tracked person's: of their averaged samples) is this emotion"
    )
    share: float = Field(description="share of all people, 0-1, as labelled by the model (raw)")
    adjusted_share: AdjustedShare
    adjusted_low: AdjustedLow
    adjusted_high: AdjustedHigh
    adjusted_reason: AdjustedReason


class GroupCountOut(BaseModel):
    group: str
    faces: int = Field(description="people in this group")
    share: float = Field(description="share of all people, 0-1, as labelled by the model (raw)")
    adjusted_share: AdjustedShare
    adjusted_low: AdjustedLow
    adjusted_high: AdjustedHigh
    adjusted_reason: AdjustedReason


class CustomGroupCountOut(BaseModel):
    grouping: str = Field(description="a grouping of FER_GROUPS_FILE")
    group: str
    faces: int = Field(description="people in this group")
    share: float = Field(description="share of all people, 0-1 (groups may overlap), as labelled (raw)")
    adjusted_share: AdjustedShare
    adjusted_low: AdjustedLow
    adjusted_high: AdjustedHigh
    adjusted_reason: AdjustedReason


class ErrorModelOut(BaseModel):
    """What the corrected shares rest on: the served model's mistakes, counted on labelled real photos."""

    dataset: str = Field(description="the labelled photos it was measured on (ExpW: in-the-wild web photos)")
    split: str = Field(description="which of them: the held-back ones the model never trained on, and the rule")
    photos: int = Field(description="photos run through the whole pipeline (detection, alignment, classifier)")
    faces: int = Field(description="labelled faces found by the detector: the faces the mistakes were counted on")
    labelled_faces: int = Field(description="labelled faces in those photos, the ones the detector missed included")
    accuracy_on_found: float | None = Field(description="share of those found faces the model read right, 0-1")
    created: str = Field(description="when it was measured (ISO 8601, UTC)")
    model_file: str = Field(description="the model file it was measured with")
    model_sha256: str = Field(description="sha256 of that model's weights: the served model's, or it is not used")
    model_version: str | None = Field(description="version of the served model it belongs to")
    runtime: str = Field(description="the runtime that ran the model (onnx, onnx-int8, keras)")
    test_time_views: str | None = Field(
        default=None, description="the views of each face it averaged (flip, zoom, scale, none): the served model's"
    )
    description: str = Field(description="the same in one plain sentence")


class AdjustmentOut(BaseModel):
    """How the corrected shares of this selection were made."""

    method: str = Field(
        description="bayes: a Bayesian adjusted count over draws of the error model (src/analytics/quantify.py)"
    )
    level: float = Field(description="the ranges' confidence level (0.95)")
    explanation: str = Field(description="one plain sentence on what the correction does, to show beside it")
    warnings: list[str] = Field(description="what limits the corrected shares, in words (may be empty)")
    clusters: int = Field(description="people counted, each one independent unit")
    effective_faces: float = Field(description="the people counted, as independent faces (each person counts once)")


class SummaryOut(BaseModel):
    runs: int = Field(description="runs that match the filters")
    images: int = Field(description="files analysed (a file counts once per run)")
    faces: int = Field(
        description="samples: a photo's faces, one per face per sampled video frame, and live face-seconds; "
        "emotions, groups and net_sentiment count people, not these"
    )
    people: int = Field(
        description="people seen: each face in a photo, each person followed through a video or the live "
        "camera once (a track with FER_PERSON_MIN_SAMPLES samples or more)"
    )
    no_face: int = Field(description="files without a face")
    errors: int = Field(description="files that could not be used")
    emotions: list[EmotionCountOut] = Field(description="people per top emotion, every label listed")
    grouping: str = Field(description="how emotions are grouped in `groups`")
    groups: list[GroupCountOut] = Field(description="people per group of emotions")
    net_sentiment: float | None = Field(description="% positive minus % negative people (-100..100), null without any")
    custom_groups: list[CustomGroupCountOut] = Field(description="people per group of the custom groupings")
    error_model: ErrorModelOut | None = Field(
        description="what the corrected shares rest on: the served model's error model (null without one: "
        "see `error_model_reason`)"
    )
    error_model_reason: str | None = Field(
        description="why there is no error model (missing, unusable, or measured on other weights); null with one"
    )
    adjustment: AdjustmentOut | None = Field(
        description="how this selection's shares were corrected; null when they were not (see `adjusted_reason`)"
    )


class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, in words")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or wrong API key"},
    403: {"model": ErrorOut, "description": "no key set on the server, and the call is not from its own machine"},
    429: {"model": ErrorOut, "description": "too many wrong keys from this address (see Retry-After)"},
    503: {"model": ErrorOut, "description": "the results store cannot be reached"},
}
