"""The Live camera tab: the WebRTC stream with boxed faces, the live metrics and last-minute
timeline beside it, the negative-emotion alert, and saving each second's emotion counts."""

from __future__ import annotations

import streamlit as st

from src.analytics import persist
from src.app import cache, plots
from src.app.detection.common import model_version, recognizer, save_controls
from src.common.sanitize import markdown_literal


def _live_streamer(session):
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


def _render_live(session) -> None:
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


def _live_recording(session, save: bool, campaign: str, location: str, playing: bool):
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


def _show_live_saving(recorder, store) -> None:
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


def render() -> None:
    """The Live camera tab."""
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
            ctx = _live_streamer(session)
        except Exception as exc:  # camera/WebRTC set-up problems must not break the other tabs
            st.error(f"The camera component could not start: {exc}")
            return
        playing = bool(ctx is not None and ctx.state.playing)
        if not playing:
            st.caption(
                "Press **START** and allow camera access. No video is recorded; with *Save results* on, "
                "the emotion counts of each second are saved."
            )
    recorder, store = _live_recording(session, save, campaign, location, playing)

    @st.fragment(run_every=1.0 if playing else None)
    def panel() -> None:
        _render_live(session)
        if recorder is not None and store is not None and playing:
            recorder.flush(store, session.stats, session.labels, session.clock())
        _show_live_saving(recorder, store)

    with panel_col:
        panel()
