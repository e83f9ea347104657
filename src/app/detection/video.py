"""The Video file tab: a recording sampled at a chosen interval into an emotion timeline, the
people followed across its frames (one per track with enough samples) and the samples they left
(one per face per sampled frame), with downloads and saving."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from src import config
from src.analytics import aggregates, persist
from src.app import plots
from src.app.detection.common import recognizer, save_controls, save_rows, show_saved
from src.common.sanitize import markdown_literal
from src.engine.results import file_row
from src.streams import video as videos


def _analyse(rec, file, every: float, campaign: str, location: str, save: bool) -> None:
    """Sample the uploaded video, optionally save its rows, and keep the result in the session."""
    data = file.getvalue()
    try:
        info = videos.probe_bytes(data, file.name)
        total = videos.expected_samples(info, every)
        bar = st.progress(0.0, text=f"Analysing about {total} frames…")
        analysis = videos.analyze_video_bytes(
            rec,
            data,
            file.name,
            every_s=every,
            progress=lambda done: bar.progress(min(1.0, done / total), text=f"Frame {done} of ~{total}"),
        )
        bar.empty()
        saved = None
        if save:
            rows = persist.video_rows(analysis.faces, file.name, rec.class_names) or [
                file_row(file.name, "no_face", "", rec.class_names)
            ]
            saved = save_rows("video", rows, campaign, location)
        st.session_state["video_result"] = {
            "name": file.name,
            "every": every,
            "info": info,
            "timeline": analysis.timeline,
            "faces": analysis.faces,
            "labels": rec.class_names,
            "saved": saved,
        }
    except videos.VideoError as exc:
        st.error(f"**{markdown_literal(file.name)}**: {exc}")


def _show(result: dict, window: int) -> None:
    """The analysed video: KPIs, the smoothed timeline, the per-frame and per-person tables, downloads."""
    timeline, labels = result["timeline"], result["labels"]
    summary = videos.summarize(timeline)
    st.text(result["name"])  # user-supplied: never parsed as Markdown
    st.caption(f"{result['info'].duration_s:.0f} s, one frame every {result['every']:g} s")
    show_saved(result.get("saved"))
    cols = st.columns(4)
    cols[0].metric("Frames analysed", summary.frames)
    cols[1].metric("Frames with a face", f"{summary.face_share:.0%}")
    if summary.has_faces:
        cols[2].metric(
            "Most frequent",
            summary.top_emotion.capitalize(),
            f"{summary.top_share:.0%} of frames",
            delta_color="off",
            delta_arrow="off",
        )
        cols[3].metric("Negative frames", f"{summary.negative_share:.0%}")
        st.plotly_chart(
            plots.emotion_timeline(videos.smooth(timeline, labels, window), labels),
            width="stretch",
            key="video-timeline",
        )
    else:
        st.warning("No face was found in any sampled frame.")
    with st.expander("Per-frame table"):
        st.dataframe(timeline, width="stretch", hide_index=True)
    faces = result["faces"]
    people = people_table(result)
    if not faces.empty:
        with st.expander(f"People ({_people_words(len(people))} followed across frames)"):
            st.caption(
                "One row per person: a face followed across the sampled frames, with its mean probabilities "
                "(the label is their top), when it was first and last seen (seconds into the video) and how "
                "long it stayed. A face seen in a single frame is a sample, not a person."
            )
            st.dataframe(people, width="stretch", hide_index=True)
        with st.expander(f"Per-sample table ({len(faces):,} samples: one per face per sampled frame)"):
            st.dataframe(faces, width="stretch", hide_index=True)
    stem = result["name"].rsplit(".", 1)[0] or "video"
    st.download_button(
        "Download people CSV",
        aggregates.csv_bytes(people),
        f"{stem}_people.csv",
        "text/csv",
        key="video-people-csv",
        disabled=people.empty,
    )
    st.download_button(
        "Download per-sample CSV",
        aggregates.csv_bytes(faces),
        f"{stem}_samples.csv",
        "text/csv",
        key="video-faces-csv",
        disabled=faces.empty,
    )
    st.download_button(
        "Download timeline CSV",
        aggregates.csv_bytes(timeline),
        f"{stem}_timeline.csv",
        "text/csv",
        key="video-csv",
        icon=":material/download:",
    )


def _people_words(n: int) -> str:
    return f"{n:,} {'person' if n == 1 else 'people'}"


PEOPLE_COLUMNS = ["track_id", "emotion", "confidence", "first_seen", "last_seen", "dwell_s", "samples"]


def people_table(result: dict) -> pd.DataFrame:
    """The analysed video's people (``persist.video_people``: as the store counts them when it is
    saved), one row each: track, label, confidence, first and last seen, seconds stayed, samples,
    then the mean probabilities."""
    labels = list(result["labels"])
    people = persist.video_people(result["faces"], result["name"], labels) if not result["faces"].empty else []
    rows = [
        {**{c: getattr(p, c) for c in PEOPLE_COLUMNS}, **{label: p.probabilities.get(label) for label in labels}}
        for p in people
    ]
    return pd.DataFrame(rows, columns=[*PEOPLE_COLUMNS, *labels])


def render() -> None:
    """The Video file tab."""
    st.markdown("Upload a short recording (a UX session, an ad viewing) and get the emotion timeline.")
    campaign, location, save = save_controls("video", save_default=True)
    file = st.file_uploader(
        "Video file",
        type=[e.lstrip(".") for e in videos.VIDEO_EXTENSIONS],
        key="video_upload",
        max_upload_size=config.MAX_UPLOAD_MB,
    )
    rate_col, smooth_col = st.columns(2)
    every = rate_col.select_slider(
        "Analyse one frame every",
        options=[0.1, 0.25, 0.5, 1.0, 2.0, 5.0],
        value=0.5,
        format_func=lambda s: f"{s:g} s",
        key="video_every",
    )
    window = smooth_col.slider(
        "Smoothing (frames)",
        1,
        15,
        3,
        key="video_smooth",
        help="Rolling mean over this many sampled frames, for the chart only.",
    )
    if file is not None and st.button("Analyse video", type="primary", key="video_run"):
        rec = recognizer()
        if rec is not None:
            _analyse(rec, file, every, campaign, location, save)
    result = st.session_state.get("video_result")
    if not result:
        if file is None:
            st.info(
                f"MP4, MOV, AVI, MKV or WebM; a few minutes at most (up to {videos.MAX_SAMPLES} frames are analysed)."
            )
        return
    _show(result, window)
