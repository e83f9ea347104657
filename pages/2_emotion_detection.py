"""Emotion Detection: photos, batches with campaign comparison, the live camera, video files, and
the history of saved results with its trends."""

from __future__ import annotations

import hashlib

import streamlit as st

from src import config
from src.analytics import aggregates, groups, persist, trends
from src.analytics.groups import sentiment_of
from src.app import cache, plots, uploads
from src.common.sanitize import markdown_literal
from src.engine.results import FailedFile, file_row
from src.streams import draw
from src.streams import video as videos
from src.training import model_card

cache.ensure_navigation()

PHOTO_TYPES = [e.lstrip(".") for e in config.IMAGE_EXTENSIONS] + ["zip"]
MAX_PHOTOS_SHOWN = 20
MAX_FACES_SHOWN = 6
SENTIMENT_BADGE = {"positive": "green", "neutral": "blue", "negative": "red"}
NAME_CHARS = 100  # campaign and location names (the store keeps up to 255)

st.title("Emotion Detection")
st.caption(
    "Faces are found, cropped and classified into 7 expressions. Sentiment groups them: "
    "happy = positive; surprise and neutral = neutral; angry, disgust, fear and sad = negative."
)


def recognizer():
    """The shared model, or None after showing why it is unavailable."""
    rec, error = cache.load_recognizer()
    if error:
        st.error(error)
    return rec


# --- saving to the results store -------------------------------------------------


def save_controls(tab: str, save_default: bool, campaign: bool = True) -> tuple[str, str, bool]:
    """A tab's campaign and location fields and its *Save results* switch: (campaign, location, save).

    ``campaign=False`` leaves the campaign field out (the Batch tab's batch name is its campaign).
    """
    cols = st.columns([1, 1, 0.7] if campaign else [1, 0.7], vertical_alignment="bottom")
    name = ""
    if campaign:
        name = cols[0].text_input(
            "Campaign",
            key=f"{tab}_campaign",
            max_chars=NAME_CHARS,
            placeholder="optional, e.g. Spring ad A",
            help="Saved results are grouped and compared by campaign in History & trends.",
        )
    location = cols[-2].text_input(
        "Location", key=f"{tab}_location", max_chars=NAME_CHARS, placeholder="optional, e.g. Store 12"
    )
    save = cols[-1].toggle(
        "Save results",
        value=save_default,
        key=f"{tab}_save",
        help="Keep these results in the results store, for the History & trends tab.",
    )
    return name, location, save


def model_version() -> str:
    return model_card.model_version(cache.model_manifest())


def save_rows(source: str, rows: list[dict], campaign: str | None, location: str | None) -> persist.Saved:
    """One run of rows into the results store; a failure comes back as ``Saved.error``."""
    store, error = cache.results_store()
    if store is None:
        return persist.Saved(error=f"the store could not be opened ({error})")
    return persist.save_rows(store, source, rows, **persist.run_fields(campaign, location, model_version()))


def show_saved(saved: persist.Saved | None) -> None:
    """Where the results went, or why they were not saved (the results on screen stay)."""
    if saved is None:
        return
    if saved.ok:
        st.caption(
            f":material/database: Saved {saved.rows} row{'s' if saved.rows != 1 else ''} to the results store "
            "(see *History & trends*)."
        )
    else:
        st.error(
            f"**Not saved to the results store**: {markdown_literal(saved.error)}. "
            "The results here are kept; download them to keep a copy.",
            icon=":material/database_off:",
        )


def sentiment_badge(emotion: str) -> None:
    sentiment = sentiment_of(emotion)
    st.badge(sentiment, color=SENTIMENT_BADGE.get(sentiment, "gray"))


# --- Photos ------------------------------------------------------------------


def photo_image(rgb, result, saliency: bool = False):
    """The picture shown for one photo: boxes and labels drawn on it, optionally over Grad-CAM."""
    base = cache.saliency_photo(rgb, result.faces) if saliency else rgb
    return draw.annotate(base, result.faces, max_side=draw.DISPLAY_MAX_SIDE)


def render_face(rgb, index: int, face, class_names, key: str) -> None:
    """One face card: thumbnail, top emotion with confidence and sentiment, all probabilities."""
    facts, chart = st.columns([1, 2.2], vertical_alignment="center")
    with facts:
        st.image(draw.face_crop(rgb, face), width=96)
        st.markdown(f"**#{index + 1} {face.emotion.capitalize()}** · {face.confidence:.0%}")
        sentiment_badge(face.emotion)
    chart.plotly_chart(
        plots.probability_bar(face.emotions, class_names),
        width="stretch",
        key=f"bar-{key}-{index}",
        config={"displayModeBar": False},
    )


def render_skipped(rows: list[dict[str, str]]) -> None:
    """Archive entries that were not analysed, each with its reason (names as plain table cells)."""
    if rows:
        with st.expander(f"Skipped {len(rows)} archive entr{'y' if len(rows) == 1 else 'ies'}"):
            st.dataframe(rows, width="stretch", hide_index=True)


def render_photo(item: uploads.UploadItem, rec, key: str, saliency: bool = False):
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
        picture.image(photo_image(rgb, result, saliency), width="stretch")
        with faces:
            for i, face in enumerate(result.faces[:MAX_FACES_SHOWN]):
                render_face(rgb, i, face, rec.class_names, key)
            if n > MAX_FACES_SHOWN:
                st.caption(f"…and {n - MAX_FACES_SHOWN} more faces; the Batch tab lists them all.")
        return result


def save_photos(items, results, class_names, campaign: str, location: str) -> persist.Saved | None:
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


def photos_tab() -> None:
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
    rec = recognizer()
    if rec is None:
        return
    shown = expanded.items[:MAX_PHOTOS_SHOWN]
    summary = st.container()  # filled once every photo has been analysed
    # One photo at a time, decoded once for analysis and display, then let go.
    with st.spinner(f"Analysing {len(shown)} photo{'s' if len(shown) != 1 else ''}…"):
        results = [render_photo(item, rec, key=str(n), saliency=saliency) for n, item in enumerate(shown)]
    if save:
        with summary:
            show_saved(save_photos(shown, results, rec.class_names, campaign, location))
    if len(shown) > 1:
        batch = aggregates.summarize(aggregates.results_frame([r for r in results if r], rec.class_names))
        if batch.dominant:
            summary.markdown(
                f"**{batch.faces} face{'s' if batch.faces != 1 else ''} in {batch.files} photos** · "
                f"mostly *{batch.dominant}* "
                f"({batch.dominant_share:.0%}) · {batch.negative_share:.0%} negative"
            )


# --- Batch and campaigns -----------------------------------------------------


def batches() -> dict[str, dict]:
    """Named batches of this browser session: {name: {"df": results table, "results": [...]}}."""
    return st.session_state.setdefault("batches", {})


def run_batch(rec, name: str, files, location: str = "", save: bool = False) -> None:
    expanded = uploads.expand_uploads((f.name, f.getvalue()) for f in files)
    images = expanded.images
    bar = st.progress(0.0, text=f"Analysing {len(images)} photos…")

    def progress(done: int) -> None:
        bar.progress(done / max(1, len(images)), text=f"Analysed {done} of {len(images)} photos")

    results = rec.analyze_batch([i.data for i in images], names=[i.name for i in images], progress=progress)
    results += [FailedFile(i.name, i.error) for i in expanded.failed]
    bar.empty()
    store = batches()
    previous = store.get(name, {}).get("results", [])
    all_results = previous + results
    store[name] = {
        "results": all_results,
        "df": aggregates.results_frame(all_results, rec.class_names),
        "skipped": store.get(name, {}).get("skipped", []) + expanded.skipped_rows(),
        # The batch name is the campaign its results are saved under.
        "saved": save_rows("batch", persist.image_rows(results, rec.class_names), name, location) if save else None,
    }
    st.session_state["batch_selected"] = name
    if previous:
        st.toast(f"Added {len(results)} files to batch “{markdown_literal(name)}”.")


def render_batch(name: str, entry: dict, class_names) -> None:
    df = entry["df"]
    summary = aggregates.summarize(df)
    cols = st.columns(5)
    cols[0].metric("Photos", summary.files)
    cols[1].metric("Faces", summary.faces)
    cols[2].metric(
        "Top emotion",
        summary.dominant.capitalize() if summary.dominant else "—",
        f"{summary.dominant_share:.0%} of faces" if summary.dominant_share is not None else None,
        delta_color="off",
        delta_arrow="off",
    )
    cols[3].metric("Negative faces", f"{summary.negative_share:.0%}" if summary.negative_share is not None else "—")
    cols[4].metric(
        "Net sentiment",
        f"{summary.net_sentiment:+.0f}" if summary.net_sentiment is not None else "—",
        help="% positive faces minus % negative faces (-100 to +100).",
    )
    problems = [
        f"{n} file{'s' if n != 1 else ''} {what}"
        for n, what in ((summary.errors, "could not be read"), (summary.no_face, "had no face"))
        if n
    ]
    if problems:
        st.warning(" and ".join(problems) + "; see the *status* and *error* columns below.")
    render_skipped(entry.get("skipped", []))
    show_saved(entry.get("saved"))
    if summary.faces:
        left, right = st.columns([1.6, 1])
        left.plotly_chart(
            plots.emotion_distribution(aggregates.emotion_counts(df, class_names)), width="stretch", key=f"dist-{name}"
        )
        right.plotly_chart(plots.sentiment_donut(aggregates.sentiment_counts(df)), width="stretch", key=f"donut-{name}")
    probabilities = {c: st.column_config.NumberColumn(c, format="percent") for c in class_names}
    st.dataframe(
        aggregates.with_sentiment(df),
        width="stretch",
        hide_index=True,
        column_config={
            "confidence": st.column_config.ProgressColumn("confidence", format="percent", min_value=0.0, max_value=1.0),
            **probabilities,
        },
    )
    slug = "".join(c if c.isalnum() else "_" for c in name).strip("_") or "batch"
    dl1, dl2, _ = st.columns([1, 1, 3])
    dl1.download_button(
        "Download CSV",
        aggregates.csv_bytes(df),
        f"{slug}.csv",
        "text/csv",
        key=f"csv-{name}",
        icon=":material/download:",
    )
    dl2.download_button(
        "Download JSON",
        aggregates.results_json(entry["results"], class_names),
        f"{slug}.json",
        "application/json",
        key=f"json-{name}",
        icon=":material/download:",
    )


def render_campaigns(class_names) -> None:
    store = batches()
    st.subheader("Campaign comparison")
    if len(store) < 2:
        st.info("Analyse at least two named batches (for example *Ad A* and *Ad B*) to compare them here.")
        return
    chosen = st.multiselect("Batches to compare", list(store), default=list(store), key="compare_batches")
    if len(chosen) < 2:
        st.info("Pick two or more batches.")
        return
    frames = {n: store[n]["df"] for n in chosen}
    table = aggregates.campaign_table(frames, class_names)
    st.plotly_chart(plots.campaign_sentiment(table), width="stretch", key="campaign-sentiment")
    st.plotly_chart(
        plots.campaign_bars(aggregates.campaign_long(frames, class_names)), width="stretch", key="campaign-bars"
    )
    st.dataframe(table, width="stretch", hide_index=True)
    st.download_button(
        "Download comparison CSV",
        aggregates.csv_bytes(table),
        "campaign_comparison.csv",
        "text/csv",
        key="campaign-csv",
        icon=":material/download:",
    )


def batch_tab() -> None:
    st.markdown(
        "Analyse many photos at once and name the batch after its campaign, store or session; "
        "batches with the same name accumulate, and different names can be compared below."
    )
    name_col, upload_col = st.columns([1, 2])
    name = name_col.text_input(
        "Campaign (batch name)",
        value="Campaign A",
        key="batch_name",
        max_chars=60,
        help="Batches are compared by this name below; saved results are filed under it as their campaign.",
    ).strip()
    with name_col:
        _, location, save = save_controls("batch", save_default=True, campaign=False)
    files = upload_col.file_uploader(
        "Photos and .zip archives",
        type=PHOTO_TYPES,
        accept_multiple_files=True,
        key="batch_upload",
        max_upload_size=config.MAX_UPLOAD_MB,
    )
    clicked = st.button(
        f"Analyse {len(files)} file{'s' if len(files or []) != 1 else ''}" if files else "Analyse",
        type="primary",
        disabled=not files,
        key="batch_run",
    )
    if clicked:
        if not name:
            st.warning("Give the batch a name first.")
        else:
            rec = recognizer()
            if rec is not None:
                run_batch(rec, name, files, location, save)
    store = batches()
    if not store:
        st.info("Results appear here after the first batch.")
        return
    names = list(store)
    selected = st.session_state.get("batch_selected")
    shown = st.selectbox(
        "Show batch", names, index=names.index(selected) if selected in names else len(names) - 1, key="batch_show"
    )
    rec_names = tuple(c for c in store[shown]["df"].columns if c in config.EMOTIONS)
    render_batch(shown, store[shown], rec_names)
    if st.button(f"Remove batch “{markdown_literal(shown)}”", key="batch_remove"):
        store.pop(shown, None)
        st.rerun()
    st.divider()
    render_campaigns(rec_names)


# --- Live camera ---------------------------------------------------------------


def live_streamer(session):
    """The WebRTC component; frames go to ``session.video_frame_callback`` in a worker thread."""
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    from src.app.webrtc_fix import prepare_webrtc_context
    from src.streams.live import rtc_configuration

    prepare_webrtc_context("live-camera")  # every run, right before the component (see src/app/webrtc_fix.py)
    return webrtc_streamer(
        key="live-camera",
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_configuration(),
        media_stream_constraints={"video": True, "audio": False},
        video_frame_callback=session.video_frame_callback,
        async_processing=True,
    )


def render_live(session) -> None:
    """Alert, live metrics and the last minute's timeline, sized for the column beside the video."""
    snap = session.snapshot()
    if snap.error:
        st.error(f"Frame processing failed: {snap.error}")
    if snap.alert:
        st.error(f"**Negative-emotion alert.** {snap.alert_reason}", icon=":material/warning:")
    top = max(snap.current, key=snap.current.get) if snap.current else None
    row1, row2 = st.columns(2), st.columns(2)
    row1[0].metric("Faces in view", snap.faces)
    row1[1].metric(
        "Current mood",
        top.capitalize() if top else "—",
        f"{snap.current[top]:.0%}" if top else None,
        delta_color="off",
        delta_arrow="off",
    )
    row2[0].metric("Processed fps", f"{snap.fps:.1f}")
    row2[1].metric("Frames analysed", snap.frames)
    if snap.timeline.empty:
        st.caption("The emotion mix of the last minute appears here once faces are seen.")
        return
    st.plotly_chart(
        plots.emotion_timeline(
            snap.timeline,
            snap.labels,
            time_col="time",
            title="Emotion mix, last minute",
            y_title="share of faces",
            hover_unit="of faces",
            compact=True,
        ),
        width="stretch",
        key="live-timeline",
    )


def live_recording(session, save: bool, campaign: str, location: str, playing: bool):
    """The session's ``LiveRecorder`` and the store it writes to, (None, None) when not saving.

    Called on every full run: a run that finds the camera stopped writes the last seconds
    and closes the stored run; so does turning *Save results* off.
    """
    recorder = st.session_state.get("live_recorder")
    if not save:
        st.session_state.pop("live_store_error", None)
    store, error = cache.results_store() if save or recorder is not None else (None, None)
    if store is None:
        if save:
            st.session_state["live_store_error"] = error
        return (recorder if save else None), None
    st.session_state.pop("live_store_error", None)
    if recorder is None:
        recorder = st.session_state["live_recorder"] = persist.LiveRecorder()
    if not save or not playing:
        if save and recorder.run_id is not None:
            recorder.flush(store, session.stats, session.labels, session.clock(), final=True)
        recorder.finish(store)
        if not save:
            return None, None
    recorder.set_fields(store, campaign, location, model_version())
    return recorder, store


def show_live_saving(recorder, store) -> None:
    """One line under the live panel: what has been saved, or why nothing is."""
    error = st.session_state.get("live_store_error")
    if recorder is None and error is None:
        return
    if store is None:
        st.error(
            f"**Not saving to the results store**: the store could not be opened ({markdown_literal(error or '')}). "
            "The camera and the charts keep working.",
            icon=":material/database_off:",
        )
    elif recorder.error:
        st.error(
            f"**Not saving to the results store**: {markdown_literal(recorder.error)}. The camera keeps "
            "running; unsaved seconds are retried for about a minute.",
            icon=":material/database_off:",
        )
    elif recorder.seconds_saved:
        st.caption(f":material/database: {recorder.seconds_saved} seconds of emotion counts saved.")


def live_tab() -> None:
    st.markdown(
        "Point a camera at a service desk or a test participant. Faces are boxed live; the chart "
        "shows the emotion mix of the last minute and an alert appears when negative "
        "expressions dominate. **Tell people the camera analysis is running.**"
    )
    try:
        from src.streams.live import LiveSession
    except ImportError as exc:
        st.warning(f"The live camera is not available in this installation ({exc}).")
        return
    campaign, location, save = save_controls("live", save_default=True)
    rec = recognizer()
    if rec is None:
        return
    session = st.session_state.get("live_session")
    if session is None:
        session = st.session_state["live_session"] = LiveSession(recognizer=rec)
    video_col, panel_col = st.columns([1.35, 1], gap="medium")
    with video_col:
        try:
            ctx = live_streamer(session)
        except Exception as exc:  # camera/WebRTC set-up problems must not break the other tabs
            st.error(f"The camera component could not start: {exc}")
            return
        playing = bool(ctx is not None and ctx.state.playing)
        if not playing:
            st.caption(
                "Press **START** and allow camera access. No video is recorded; with *Save results* on, "
                "the emotion counts of each second are saved."
            )
    recorder, store = live_recording(session, save, campaign, location, playing)

    @st.fragment(run_every=1.0 if playing else None)
    def panel() -> None:
        render_live(session)
        if recorder is not None and store is not None and playing:
            recorder.flush(store, session.stats, session.labels, session.clock())
        show_live_saving(recorder, store)

    with panel_col:
        panel()


# --- Video file ------------------------------------------------------------------


def video_tab() -> None:
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
    result = st.session_state.get("video_result")
    if not result:
        if file is None:
            st.info(
                f"MP4, MOV, AVI, MKV or WebM; a few minutes at most (up to {videos.MAX_SAMPLES} frames are analysed)."
            )
        return
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
    if not faces.empty:
        with st.expander(f"Per-person table ({faces['track_id'].nunique()} people followed across frames)"):
            st.dataframe(faces, width="stretch", hide_index=True)
    stem = result["name"].rsplit(".", 1)[0] or "video"
    st.download_button(
        "Download per-person CSV",
        aggregates.csv_bytes(faces),
        f"{stem}_faces.csv",
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


# --- History and trends ------------------------------------------------------------

SOURCE_NAMES = {
    "photo": "Photos",
    "batch": "Batch",
    "video": "Video file",
    "live": "Live camera",
    "api": "API",
    "cli": "Command line",
}
TABLE_COLUMNS = ["at", "source", "campaign", "location", "file", "face", "emotion", "confidence", "sentiment"]
TABLE_COLUMNS += ["time", "track_id", "model_version", "run_id"]
MAX_ROWS_SHOWN = 5000


def groupings() -> dict[str, tuple[str, str, groups.Grouping]]:
    """{key: (what the selector shows, chart colours, grouping)}: emotions, sentiment, then the custom groupings."""
    out = {
        "emotion": ("Emotions", "emotion", trends.emotion_grouping(config.EMOTIONS)),
        "sentiment": ("Sentiment (positive / neutral / negative)", "sentiment", trends.sentiment_grouping()),
    }
    for i, grouping in enumerate(groups.active().custom):
        # The name is user data; selector options are plain text.
        out[f"custom-{i}"] = (f"Groups: {grouping.name} ({', '.join(grouping.buckets)})", "custom", grouping)
    return out


def history_filters(options: trends.FilterOptions) -> dict:
    """The filter widgets; returns the keyword arguments of ``trends.filter_results`` and the view's choices."""
    c1, c2, c3 = st.columns(3)
    campaigns = c1.multiselect("Campaigns", options.campaigns, key="history_campaigns", placeholder="all")
    locations = c2.multiselect("Locations", options.locations, key="history_locations", placeholder="all")
    sources = c3.multiselect(
        "Sources",
        options.sources,
        key="history_sources",
        placeholder="all",
        format_func=lambda s: SOURCE_NAMES.get(s, s),
    )
    d1, d2, d3 = st.columns([1.2, 1, 1.3], vertical_alignment="bottom")
    span = d1.date_input(
        "Dates (UTC)",
        value=(),  # empty: every date; new results always show up
        key="history_dates",
        help=f"Saved results span {options.first} to {options.last}. Leave empty for all of them.",
    )
    picked = list(span) if isinstance(span, (tuple, list)) else [span]
    since, until = (picked + [None, None])[:2]
    until = until or since  # one day picked: that day
    bucket = d2.segmented_control("Per", trends.BUCKETS, default="day", key="history_bucket", required=True)
    choices = groupings()
    # Sentiment by default: three groups read at a glance over time and need the fewest faces to compare.
    key = d3.selectbox(
        "Count faces by", list(choices), index=1, format_func=lambda k: choices[k][0], key="history_grouping"
    )
    label, kind, grouping = choices[key or "emotion"]
    return {
        "filters": dict(campaigns=campaigns, locations=locations, sources=sources, since=since, until=until),
        "bucket": bucket or "day",
        "grouping": grouping,
        "kind": kind,
    }


def history_kpis(rows, faces) -> None:
    cols = st.columns(4)
    cols[0].metric("Faces", f"{len(faces):,}")
    cols[1].metric("Runs", f"{rows['run_id'].nunique():,}" if "run_id" in rows else "—")
    cols[2].metric("Campaigns", f"{trends.campaign_names(faces['campaign']).nunique():,}")
    positive = trends.memberships(faces, trends.sentiment_grouping())["positive"].mean() if len(faces) else None
    cols[3].metric("Positive faces", f"{positive:.0%}" if positive is not None else "—")


def campaign_section(rows, grouping: groups.Grouping, kind: str) -> None:
    st.subheader("Campaign comparison")
    names = trends.campaign_shares(rows, grouping)["campaign"].unique().tolist()  # busiest first
    if len(names) < 2:
        st.info("Save results under two or more campaigns (or widen the filters) to compare them here.")
        return
    chosen = st.multiselect("Campaigns to compare", names, default=names[:2], key="history_compare")
    if len(chosen) < 2:
        st.info("Pick two or more campaigns.")
        return
    long = trends.campaign_shares(rows, grouping, chosen)
    st.plotly_chart(plots.campaign_comparison(long, grouping.buckets, kind), width="stretch", key="history-campaigns")
    result = trends.compare_campaigns(rows, chosen, grouping)
    verdict = markdown_literal(result.verdict)  # campaign names inside: shown as typed
    if result.differs:
        st.success(verdict, icon=":material/check_circle:")
    else:
        st.info(verdict, icon=":material/info:")
    with st.expander("Faces per campaign and group (the counts compared)"):
        table = result.table.copy()
        table.insert(0, "campaign", table.index)
        st.dataframe(table, width="stretch", hide_index=True)


def results_table(rows) -> None:
    st.subheader("Saved faces")
    shown = rows[[c for c in TABLE_COLUMNS if c in rows]].sort_values("at", ascending=False)
    shown = shown.dropna(axis=1, how="all")  # e.g. time and track_id without a video in the selection
    if len(shown) > MAX_ROWS_SHOWN:
        st.caption(f"The newest {MAX_ROWS_SHOWN:,} of {len(shown):,} rows; the downloads hold them all.")
    st.dataframe(
        shown.head(MAX_ROWS_SHOWN),
        width="stretch",
        hide_index=True,
        column_config={
            "at": st.column_config.DatetimeColumn("at (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "confidence": st.column_config.ProgressColumn("confidence", format="percent", min_value=0.0, max_value=1.0),
        },
    )
    stamp = trends.prepare(rows)["at"].max()
    stem = f"fer_results_{stamp:%Y%m%d}" if rows is not None and len(rows) and stamp is not None else "fer_results"
    dl1, dl2, _ = st.columns([1, 1, 3])
    # Made when clicked (seconds for a large store), and no rerun after the download.
    dl1.download_button(
        "Download CSV",
        lambda: trends.csv_bytes(rows),
        f"{stem}.csv",
        "text/csv",
        key="history-csv",
        icon=":material/download:",
        on_click="ignore",
    )
    dl2.download_button(
        "Download Parquet",
        lambda: trends.parquet_bytes(rows),
        f"{stem}.parquet",
        "application/vnd.apache.parquet",
        key="history-parquet",
        icon=":material/download:",
        on_click="ignore",
    )


def delete_section(store, runs) -> None:
    """Delete one run or a whole campaign, each behind a confirmation."""
    with st.expander("Delete saved results"):
        pending = st.session_state.get("history_delete")
        if pending:
            kind, target, label = pending
            st.warning(f"Delete {markdown_literal(label)}? This cannot be undone.", icon=":material/delete_forever:")
            yes, no, _ = st.columns([1, 1, 3])
            if yes.button("Yes, delete", type="primary", key="history_delete_yes"):
                try:
                    if kind == "run":
                        store.delete_run(target)
                    else:
                        store.delete_campaign(target)
                except Exception as exc:
                    st.error(f"Could not delete: {markdown_literal(persist.failure(exc))}")
                    return
                st.session_state.pop("history_delete", None)
                st.toast(f"Deleted {markdown_literal(label)}.")
                st.rerun()
            if no.button("Cancel", key="history_delete_no"):
                st.session_state.pop("history_delete", None)
                st.rerun()
            return
        left, right = st.columns(2)
        labels = {run_id: label for run_id, label in runs}
        run = left.selectbox("Run", list(labels), format_func=labels.get, key="history_run")
        if left.button("Delete this run…", key="history_delete_run", disabled=run is None):
            st.session_state["history_delete"] = ("run", run, f"run {labels[run]}")
            st.rerun()
        campaigns = store.campaigns()
        campaign = right.selectbox("Campaign", campaigns, key="history_campaign_delete")
        if right.button("Delete this campaign…", key="history_delete_campaign", disabled=campaign is None):
            st.session_state["history_delete"] = ("campaign", campaign, f"campaign “{campaign}” and all its runs")
            st.rerun()


def run_choices(runs) -> list[tuple]:
    """(run id, one-line description) of every run, newest first (``Store.runs`` order)."""
    out = []
    for run in runs.itertuples(index=False):
        parts = [
            f"{run.run_time:%Y-%m-%d %H:%M} UTC",
            SOURCE_NAMES.get(run.source, run.source),
            trends.campaign_label(run.campaign),
        ]
        if run.location:
            parts.append(run.location)
        if run.source != "live":  # live runs keep per-second counts, not face rows
            parts.append(f"{run.faces:,} face{'s' if run.faces != 1 else ''}")
        if run.status != "ok":
            parts.append(run.status)
        out.append((run.run_id, " · ".join(parts)))
    return out


@st.fragment
def history_view() -> None:
    """Filters, charts, the campaign test, the table and deletion; filter changes rerun only this."""
    store, error = cache.results_store()
    if store is None:
        st.error(f"The results store could not be opened: {markdown_literal(error or '')}")
        return
    try:
        rows, runs = cache.stored_history(store)
    except Exception as exc:
        st.error(f"The results store could not be read: {markdown_literal(persist.failure(exc))}")
        return
    if runs.empty:
        st.info(
            "Nothing saved yet. Turn on **Save results** in the Photos, Batch, Video file or Live camera tab "
            "(it is on by default for batches, videos and the camera): what you analyse then collects here, "
            "by campaign and location."
        )
        return
    choice = history_filters(trends.filter_options(rows))
    grouping, bucket, kind = choice["grouping"], choice["bucket"], choice["kind"]
    rows = trends.filter_results(rows, **choice["filters"])
    faces = trends.face_rows(rows)
    history_kpis(rows, faces)
    if faces.empty:
        st.info("No faces match these filters.")
    else:
        st.plotly_chart(
            plots.share_trend(
                trends.shares_over_time(rows, grouping, bucket),
                grouping.buckets,
                kind,
                bucket,
                title=f"Share of faces per {bucket}",
            ),
            width="stretch",
            key="history-trend",
        )
        campaign_section(rows, grouping, kind)
    results_table(rows)
    delete_section(store, run_choices(runs))


GROUPS_HELP = (
    "One group per line: `name = emotion + emotion`, optionally `(confidence >= 0.7)` to count only sure "
    "faces. `[name]` starts a grouping; `[name] partition` makes its groups exclusive. The `[sentiment]` "
    "grouping is the sentiment used everywhere in the app (positive, neutral, negative)."
)


def show_group_problems(exc: groups.GroupError) -> None:
    """Every problem of the definitions on its own line, group names as typed."""
    lines = "\n\n".join(f"- {markdown_literal(problem)}" for problem in exc.problems)
    st.error(f"**The groups were not saved.**\n\n{lines}", icon=":material/rule:")


def groups_editor() -> None:
    """Edit the emotion groups in the line syntax; saving rewrites the groups file (FER_GROUPS_FILE)."""
    with st.expander("Emotion groups (edit)", icon=":material/category:"):
        st.caption(GROUPS_HELP)
        problem = groups.active_problem()
        if problem:
            st.warning(markdown_literal(problem))
        text = st.text_area(
            "Groups", value=groups.to_lines(groups.active()), height=220, key="groups_editor", max_chars=groups.MAX_TEXT
        )
        check, save, _ = st.columns([1, 1, 3])
        checking = check.button("Check", key="groups_check")
        saving = save.button("Save groups", type="primary", key="groups_save")
        if checking or saving:
            try:
                group_set = groups.parse_lines(text)
            except groups.GroupError as exc:
                show_group_problems(exc)
                return
            if not saving:
                names = ", ".join(g.name for g in group_set)
                st.success(f"Valid: {len(group_set)} grouping(s), {markdown_literal(names)}.")
                return
            try:
                path = groups.save(group_set)
            except groups.GroupError as exc:
                show_group_problems(exc)
                return
            st.session_state["groups_saved"] = path.name
            st.rerun()
        saved = st.session_state.pop("groups_saved", None)
        if saved:
            st.success(f"Saved to {markdown_literal(saved)}; the grouping selector and the sentiment use them now.")


def history_tab() -> None:
    st.markdown(
        "Results saved from the other tabs, the command line and the API: how the emotion mix moves "
        "over time, and whether campaigns really differ. Times are UTC."
    )
    history_view()
    groups_editor()


photos, batch, live, video, history = st.tabs(
    [
        ":material/photo_camera: Photos",
        ":material/folder_copy: Batch & campaigns",
        ":material/videocam: Live camera",
        ":material/movie: Video file",
        ":material/insights: History & trends",
    ]
)
with photos:
    photos_tab()
with batch:
    batch_tab()
with live:
    live_tab()
with video:
    video_tab()
with history:
    history_tab()
