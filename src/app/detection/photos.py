"""The Photos tab: every face of each uploaded photo (or .zip of photos) in a card, with its
emotion, confidence, sentiment and probabilities, a "doubtful" marker when its label is
unreliable (``src.engine.doubt``), an optional Grad-CAM overlay, saving, and a summary of the
photos' shares that can leave the doubtful faces out."""

from __future__ import annotations

import hashlib

import streamlit as st

from src import config
from src.analytics import aggregates, persist
from src.analytics.groups import sentiment_of
from src.app import cache, plots, tables, uploads
from src.app.detection.common import (
    PHOTO_TYPES,
    leave_out_doubtful,
    recognizer,
    render_skipped,
    save_controls,
    save_rows,
    show_saved,
)
from src.common.sanitize import markdown_literal
from src.engine.doubt import in_words
from src.streams import draw

MAX_PHOTOS_SHOWN = 20
MAX_FACES_SHOWN = 6
SENTIMENT_BADGE = {"positive": "green", "neutral": "blue", "negative": "red"}
SALIENCY_OFF = (
    "Off in this installation: saliency maps need TensorFlow, which the standard install leaves out to "
    "stay light. Whoever installed the dashboard can add it (the training extra) to turn them on."
)


def _sentiment_badge(emotion: str) -> None:
    """The coloured sentiment of one emotion."""
    sentiment = sentiment_of(emotion)
    st.badge(sentiment, color=SENTIMENT_BADGE.get(sentiment, "gray"))


def _photo_image(rgb, result, saliency: bool = False):
    """The picture shown for one photo: boxes and labels drawn on it, optionally over Grad-CAM."""
    base = cache.saliency_photo(rgb, result.faces) if saliency else rgb
    return draw.annotate(base, result.faces, max_side=draw.DISPLAY_MAX_SIDE)


def _render_face(rgb, index: int, face, class_names, key: str) -> None:
    """One face card: thumbnail, top emotion with confidence and sentiment, all probabilities."""
    facts, chart = st.columns([1, 2.2], vertical_alignment="center")
    with facts:
        st.image(draw.face_crop(rgb, face), width=96)
        st.markdown(f"**#{index + 1} {face.emotion.capitalize()}** · {face.confidence:.0%}")
        if face.uncertain:
            st.text(f"⚠ doubtful: {in_words(face.doubts)}", help=tables.DOUBT_HELP)
        _sentiment_badge(face.emotion)
    chart.plotly_chart(
        plots.probability_bar(face.emotions, class_names),
        width="stretch",
        key=f"bar-{key}-{index}",
        config={"displayModeBar": False},
    )


def _render_photo(item: uploads.UploadItem, rec, key: str, saliency: bool = False):
    """One uploaded photo in its card; returns its result (None when it was never analysed)."""
    with st.container(border=True):
        st.text(item.name)  # user-supplied: never parsed as Markdown
        if item.error:
            st.error(markdown_literal(item.error))
            return None
        result, rgb = cache.analyze_upload(item.data, item.name)
        if rgb is None or result.status == "error":
            st.error(f"Could not analyse this file: {markdown_literal(result.error)}")
            return result
        if result.status == "no_face":
            st.warning(
                f"No face found. Faces should be at least {config.MIN_FACE_SIZE} px, frontal and reasonably lit."
            )
            st.image(draw.fit(rgb, 800)[0])
            return result
        n = len(result.faces)
        st.caption(f"{n} face{'s' if n != 1 else ''} found")
        picture, faces = st.columns([1, 1.4])
        picture.image(_photo_image(rgb, result, saliency), width="stretch")
        with faces:
            for i, face in enumerate(result.faces[:MAX_FACES_SHOWN]):
                _render_face(rgb, i, face, rec.class_names, key)
            if n > MAX_FACES_SHOWN:
                st.caption(f"…and {n - MAX_FACES_SHOWN} more faces; the Batch tab lists them all.")
        return result


def _save_photos(items, results, class_names, campaign: str, location: str) -> persist.Saved | None:
    """Save the analysed photos not saved yet in this session (reruns never save a photo twice)."""
    done = st.session_state.setdefault("photos_saved", set())
    fresh = []
    for item, result in zip(items, results):
        key = (hashlib.sha256(item.data).hexdigest(), item.name)
        if result is not None and key not in done:
            fresh.append((key, result))
    if fresh:
        saved = save_rows("photo", persist.image_rows([r for _, r in fresh], class_names), campaign, location)
        if saved.ok:
            done.update(key for key, _ in fresh)
        st.session_state["photos_last_saved"] = saved
    return st.session_state.get("photos_last_saved")


def render() -> None:
    """The Photos tab."""
    campaign, location, save = save_controls("photos", save_default=False)
    files = st.file_uploader(
        "Drop photos or a .zip of photos",
        type=PHOTO_TYPES,
        accept_multiple_files=True,
        key="photos_upload",
        help="JPEG, PNG, WebP, BMP, GIF or TIFF. Group photos work: every face is analysed.",
        max_upload_size=config.MAX_UPLOAD_MB,
    )
    if not files:
        st.info("Upload one or more photos to see each face with its emotion, confidence and sentiment.")
        return
    expanded = uploads.expand_uploads((f.name, f.getvalue()) for f in files)
    render_skipped(expanded.skipped_rows())
    if len(expanded.items) > MAX_PHOTOS_SHOWN:
        st.warning(
            f"Showing the first {MAX_PHOTOS_SHOWN} of {len(expanded.items)} photos. "
            "Use the **Batch** tab for tables, charts and downloads over all of them."
        )
    no_saliency = cache.saliency_unavailable()
    saliency = st.toggle(
        "Saliency overlay (Grad-CAM)",
        key="photos_saliency",
        disabled=no_saliency is not None,
        help=no_saliency or "Colours the face regions that drove each prediction: red = most influential.",
    )
    if no_saliency:
        st.caption(no_saliency if no_saliency == cache.ADAPTED_NO_SALIENCY else SALIENCY_OFF)
    rec = recognizer()
    if rec is None:
        return
    shown = expanded.items[:MAX_PHOTOS_SHOWN]
    summary = st.container()  # filled once every photo has been analysed
    # One photo at a time, decoded once for analysis and display, then let go.
    with st.spinner(f"Analysing {len(shown)} photo{'s' if len(shown) != 1 else ''}…"):
        results = [_render_photo(item, rec, key=str(n), saliency=saliency) for n, item in enumerate(shown)]
    if save:
        with summary:
            show_saved(_save_photos(shown, results, rec.class_names, campaign, location))
    _render_summary(summary, aggregates.results_frame([r for r in results if r], rec.class_names), len(shown))


def _render_summary(summary, df, photos: int) -> None:
    """The shares of the photos shown (several photos, or one with several faces), doubtful faces
    left out when the analyst ticks so."""
    if photos < 2 and len(aggregates.faces_only(df)) < 2:
        return
    with summary:
        counted = leave_out_doubtful(df, key="photos_leave_out_doubtful")
    batch = aggregates.summarize(counted)
    files = df["file"].nunique()  # a photo whose faces were all left out is still one of them
    if batch.dominant:
        summary.markdown(
            f"**{batch.faces} face{'s' if batch.faces != 1 else ''} in {files} "
            f"photo{'s' if files != 1 else ''}** · mostly *{batch.dominant}* "
            f"({batch.dominant_share:.0%}) · {batch.negative_share:.0%} negative"
        )
