"""The Live camera tab: the WebRTC stream with boxed faces, the live metrics (faces in view, people
seen) and last-minute timeline beside it, the negative-emotion alert, and saving each second's
emotion counts (face-seconds) with the people whose tracks ended.

The panel follows the stream: live figures only while the camera plays; after STOP it says
the camera is stopped and sums up the last session, labelled as such. A stream is saved
only once a face has been seen: a run that never saw one saves nothing and says so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import streamlit as st

from src.analytics import persist
from src.app import cache, plots
from src.app.detection.common import model_version, recognizer, save_controls
from src.common.sanitize import markdown_literal

NOTHING_SEEN = "Nothing to save: no face was seen."


@dataclass(frozen=True)
class LastSession:
    """The stream that ended at the last STOP, as its panel sums it up."""

    duration: float  # seconds from START to STOP
    frames: int  # frames analysed
    faces: int  # face-seconds in its last minute (one per face in view per second)
    mood: str | None  # the most frequent top emotion of its last minute, None without faces
    mood_share: float | None  # of those face-seconds
    timeline: pd.DataFrame  # its last minute, per second
    saved: int | None  # seconds saved to the store; None when not saving
    labels: tuple[str, ...] = ()
    people: int = 0  # people seen during the stream (tracks with enough detections)
    people_saved: int = 0  # people saved to the store with it


@dataclass
class StreamLog:
    """What the tab remembers between runs about the camera's streams (in ``st.session_state``)."""

    playing: bool = False  # as of the last full run
    since: int | None = None  # seconds up to this one belong to earlier streams (the last STOP)
    started_at: float | None = None
    frames_before: int = 0  # the session's frame count when the stream started
    saved_before: int = 0  # seconds the recorder had saved when the stream started
    people_before: int = 0  # people the session had seen when the stream started
    people_saved_before: int = 0  # people the recorder had saved when the stream started
    last: LastSession | None = None


class StreamSeconds:
    """A live session's per-second counts as one stream sees them: the seconds after ``since``.

    The recorder saves through it, so a stream never saves the seconds of an earlier one
    still in the session's one-minute window; everything else is the stats' own.
    """

    def __init__(self, stats, since: int | None):
        self._stats = stats
        self._since = since

    def seconds(self, now: float) -> list:
        seconds = self._stats.seconds(now)
        return seconds if self._since is None else [b for b in seconds if b.second > self._since]

    def finished_tracks(self, after: int = 0, *, final: bool = False) -> list:
        """The tracks that ended after sequence number ``after`` (people for the recorder to save)."""
        return self._stats.finished_tracks(after, final=final)

    def __getattr__(self, name: str):
        return getattr(self._stats, name)  # the rest (e.g. the tracks that ended) as the stats have it


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


def _timeline_chart(timeline: pd.DataFrame, labels, title: str, key: str) -> None:
    st.plotly_chart(
        plots.emotion_timeline(
            timeline,
            labels,
            time_col="time",
            title=title,
            y_title="share of faces in view",
            hover_unit="of faces in view",
            compact=True,
        ),
        width="stretch",
        key=key,
    )


def _render_live(session, log: StreamLog) -> None:
    """Alert, live metrics and the last minute's timeline, sized for the column beside the video."""
    snap = session.snapshot()
    if snap.error:
        st.error(f"Frame processing failed: {snap.error}")
    if snap.alert:
        st.error(f"**Negative-emotion alert.** {snap.alert_reason}", icon=":material/warning:")
    top = max(snap.current, key=snap.current.get) if snap.current else None
    row1, row2, row3 = st.columns(2), st.columns(2), st.columns(2)
    row1[0].metric("Faces in view", snap.faces)
    row1[1].metric(
        "People seen",
        f"{max(0, snap.people - log.people_before):,}",
        help="Since START: each face followed long enough to be someone, counted once however long they stay.",
    )
    row2[0].metric(
        "Current mood",
        top.capitalize() if top else "—",
        f"{snap.current[top]:.0%}" if top else None,
        delta_color="off",
        delta_arrow="off",
    )
    row2[1].metric(
        "Frames analysed",
        f"{max(0, snap.frames - log.frames_before):,}",
        f"{snap.fps:.1f} a second",
        delta_color="off",
        delta_arrow="off",
        help="Camera frames the model has read since START, and how many it reads each second "
        "(the video itself may play faster).",
    )
    running = session.clock() - log.started_at if log.started_at is not None else 0.0
    minutes, seconds = divmod(max(0, round(running)), 60)
    row3[0].metric("Running for", f"{minutes}:{seconds:02d}")
    timeline = snap.timeline
    if log.since is not None and not timeline.empty:  # not the seconds of an earlier stream
        timeline = timeline[timeline["time"] > pd.Timestamp(datetime.fromtimestamp(log.since))]
    if timeline.empty:
        st.caption("The emotion mix of the last minute appears here once faces are seen.")
        return
    _timeline_chart(timeline, snap.labels, "Emotion mix, last minute", "live-timeline")


def _render_stopped(log: StreamLog) -> None:
    """The panel while the camera is off: that it is, and the last session, labelled as such."""
    last = log.last
    if last is None:
        st.info("The camera is off. Press **START**: the faces in view and their mood appear here.")
        return
    st.info(
        "**Camera stopped.** Below: the last session. Press **START** for a new one.", icon=":material/videocam_off:"
    )
    minutes, seconds = divmod(round(last.duration), 60)
    length = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
    seen = f"{last.people:,} {'person' if last.people == 1 else 'people'} seen"
    st.markdown(f"**Last session** · {length} · {last.frames:,} frames analysed · {seen}")
    if last.mood is None:
        st.caption("No face was seen in its last minute.")
        return
    st.caption(f"Most frequent mood in its last minute: **{last.mood}** ({last.mood_share:.0%} of face-seconds).")
    _timeline_chart(last.timeline, last.labels, "Emotion mix, last session (final minute)", "live-last-timeline")


def _flush(recorder, store, session, since: int | None, final: bool = False) -> None:
    """Save the stream's finished seconds; no stored run is opened until one of them saw a face."""
    view = StreamSeconds(session.stats, since)
    now = session.clock()
    if recorder.run_id is None:
        pending = [
            b
            for b in view.seconds(now)
            if (recorder.saved_until is None or b.second > recorder.saved_until) and (final or b.second < int(now))
        ]
        if not any(b.faces for b in pending):
            return  # an empty room is not a campaign: nothing is stored yet
    recorder.flush(store, view, session.labels, now, final=final)


def _live_recording(session, save: bool, campaign: str, location: str, playing: bool, since: int | None):
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
        if save:
            _flush(recorder, store, session, since, final=True)
        recorder.finish(store)
        if not save:
            return None, None
    recorder.set_fields(store, campaign, location, model_version())
    return recorder, store


def _last_session(session, log: StreamLog, saved: int | None, people_saved: int = 0) -> LastSession:
    """The stream that just stopped, summed up for the panel."""
    from src.streams.live import timeline_frame

    now = session.clock()
    seconds = StreamSeconds(session.stats, log.since).seconds(now)
    labels = session.labels
    counts = np.sum([b.counts for b in seconds], axis=0) if seconds else np.zeros(len(labels))
    faces = int(sum(b.faces for b in seconds))
    top = int(np.argmax(counts)) if faces else None
    span = seconds[-1].second - seconds[0].second + 1 if seconds else 0
    snap = session.snapshot(now)
    return LastSession(
        duration=max(now - log.started_at if log.started_at is not None else 0.0, float(span)),
        frames=max(0, snap.frames - log.frames_before),
        faces=faces,
        mood=labels[top] if top is not None else None,
        mood_share=float(counts[top] / faces) if top is not None else None,
        timeline=timeline_frame(seconds, labels),
        saved=saved,
        labels=tuple(labels),
        people=max(0, snap.people - log.people_before),
        people_saved=people_saved,
    )


def _follow_stream(session, log: StreamLog, playing: bool, save: bool, campaign: str, location: str):
    """Note START and STOP between full runs, and save through the recorder; returns (recorder, store)."""
    started, stopped = playing and not log.playing, log.playing and not playing
    if started:
        previous = st.session_state.get("live_recorder")
        log.last, log.started_at = None, session.clock()
        snap = session.snapshot()
        log.frames_before, log.people_before = snap.frames, snap.people
        log.saved_before = previous.seconds_saved if previous is not None else 0
        log.people_saved_before = previous.people_saved if previous is not None else 0
    recorder, store = _live_recording(session, save, campaign, location, playing, log.since)
    if stopped:
        saving = recorder is not None and store is not None
        saved = recorder.seconds_saved - log.saved_before if saving else None
        people = max(0, recorder.people_saved - log.people_saved_before) if saving else 0
        log.last = _last_session(session, log, None if saved is None else max(0, saved), people)
        log.since = int(session.clock())
    log.playing = playing
    return recorder, store


def _saved_words(seconds: int, people: int) -> str:
    """What a stream has saved, in words: its seconds of counts, and the people once any is saved."""
    text = f"{seconds} seconds of emotion counts"
    if people:
        text += f" and {people} {'person' if people == 1 else 'people'}"
    return text


def _show_live_saving(recorder, store, log: StreamLog, playing: bool) -> None:
    """One line under the live panel: what has been saved, or why nothing is."""
    error = st.session_state.get("live_store_error")
    if error is not None or (recorder is not None and store is None):
        st.error(
            f"**Not saving to the results store**: the store could not be opened ({markdown_literal(error or '')}). "
            "The camera and the charts keep working.",
            icon=":material/database_off:",
        )
        return
    if recorder is not None and recorder.error:
        st.error(
            f"**Not saving to the results store**: {markdown_literal(recorder.error)}. The camera keeps "
            "running; unsaved seconds are retried for about a minute.",
            icon=":material/database_off:",
        )
        return
    if playing:
        saved = recorder.seconds_saved - log.saved_before if recorder is not None else 0
        people = recorder.people_saved - log.people_saved_before if recorder is not None else 0
        if saved > 0:
            st.caption(f":material/database: {_saved_words(saved, people)} saved.")
        elif recorder is not None:
            st.caption("Saving starts once a face is seen.")
        return
    last = log.last
    if last is None or last.saved is None:
        return
    if last.saved:
        st.caption(f":material/database: {_saved_words(last.saved, last.people_saved)} saved (see *History & trends*).")
    elif last.faces == 0:
        st.info(NOTHING_SEEN, icon=":material/database:")


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
    # A model chosen in the sidebar takes over from the next session on.
    if session is None or st.session_state.get("live_session_model") != cache.chosen_model():
        session = st.session_state["live_session"] = LiveSession(recognizer=rec)
        st.session_state["live_session_model"] = cache.chosen_model()
    log = st.session_state.setdefault("live_streams", StreamLog())
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
                "the emotion counts of each second are saved once a face is seen."
            )
    recorder, store = _follow_stream(session, log, playing, save, campaign, location)

    @st.fragment(run_every=1.0 if playing else None)
    def panel() -> None:
        if playing:
            _render_live(session, log)
            if recorder is not None and store is not None:
                _flush(recorder, store, session, log.since)
        else:
            _render_stopped(log)
        _show_live_saving(recorder, store, log, playing)

    with panel_col:
        panel()
