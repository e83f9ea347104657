"""``GET /v1/report``: the stakeholder report of stored results, as a self-contained HTML file or a PDF.

The same report as ``python -m src.cli report`` and the dashboard's download
(``src/analytics/report``), from the store's tallies: people counted, raw and corrected shares with 95% ranges, the
comparison of the campaigns with plain verdicts, the method and its limits, the model. The
correction uses the error model beside the served model (``FER_MODEL``); without one the
shares are as labelled and the report says so. A selection with no people is 404 (JSON).

An ``APIRouter`` of its own, included by ``src.api.app.create_app``; it reads the app's store
(``app.state.store``) and settings, and needs the API key like every /v1 route.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from src.analytics.store import NAME_MAX, SOURCES
from src.api.auth import V1_PREFIX, require_key
from src.api.schemas import ERROR_RESPONSES, ErrorOut

if TYPE_CHECKING:
    from src.analytics.report import ModelFacts

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
Source = Literal[SOURCES]  # type: ignore[valid-type]

router = APIRouter(prefix=V1_PREFIX, dependencies=[Depends(require_key)], responses=ERROR_RESPONSES)


def _names(values: list[str] | None, what: str) -> list[str]:
    """Repeated names as the store takes them, or a 422 saying what is wrong; "" = runs without one."""
    out = []
    for value in values or ():
        value = value.strip()
        if _CONTROL.search(value):
            raise HTTPException(422, f"a {what} holds control characters (line breaks, tabs...)")
        if len(value) > NAME_MAX:
            raise HTTPException(422, f"a {what} is {len(value)} characters long; the limit is {NAME_MAX}")
        out.append(value)
    return out


def model_facts(model_file) -> tuple[ModelFacts, Any]:
    """The served model's facts and its error model (None, logged, when it has none)."""
    from src.analytics.report import ModelFacts
    from src.engine.manifest import read_manifest
    from src.training import model_card
    from src.training.error_model import load_error_model

    manifest = read_manifest(model_file, strict=False)
    facts = ModelFacts.from_manifest(manifest, model_card.plain_name(manifest))
    return facts, load_error_model(model_file, strict=False)


@router.get(
    "/report",
    summary="The report of stored results for managers (HTML or PDF)",
    response_class=Response,
    responses={
        200: {
            "content": {"text/html": {}, "application/pdf": {}},
            "description": "the report file (Content-Disposition: attachment)",
        },
        404: {"model": ErrorOut, "description": "no people in this selection"},
    },
)
def report(
    request: Request,
    campaign: Annotated[
        list[str],
        Query(
            min_length=1,
            description="a campaign to report on (repeatable; two or more are compared; empty = runs without one)",
        ),
    ],
    location: Annotated[
        list[str] | None, Query(description="only this location (repeatable; empty = runs without one)")
    ] = None,
    source: Annotated[list[Source] | None, Query(description="only runs from this source (repeatable)")] = None,
    since: Annotated[
        datetime | None, Query(description="runs from this time on (ISO 8601; without a zone, UTC)")
    ] = None,
    until: Annotated[datetime | None, Query(description="runs before this time (exclusive)")] = None,
    format: Annotated[Literal["html", "pdf"], Query(description="html (one self-contained file) or pdf")] = "html",
    include_uncertain: Annotated[
        bool, Query(description="count the faces and people the engine found doubtful (default true)")
    ] = True,
) -> Response:
    # Imported here: the report's statistics and drawing libraries stay out of the server's start-up.
    from src.analytics.report import (
        CONTENT_SECURITY_POLICY,
        FORMATS,
        EmptySelection,
        Selection,
        build_report,
        file_stem,
        render,
    )

    try:
        selection = Selection.of(
            _names(campaign, "campaign"),
            _names(location, "location"),
            source,
            since=since,
            until=until,
            include_uncertain=include_uncertain,
        )
    except OverflowError:
        raise HTTPException(422, "a time is out of range: in UTC it falls outside the years 1 to 9999") from None
    facts, error_model = model_facts(request.app.state.settings.model_file)
    try:
        built = build_report(request.app.state.store, selection, error_model, facts)
    except EmptySelection as exc:
        raise HTTPException(404, str(exc)) from None
    headers = {"Content-Disposition": f'attachment; filename="{file_stem(built)}.{format}"'}
    if format == "html":  # the policy the file itself carries: its own styles and images, nothing fetched
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return Response(render(built, format), media_type=FORMATS[format], headers=headers)
