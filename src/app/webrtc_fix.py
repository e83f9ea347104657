"""Keeps streamlit-webrtc (0.79) from dropping a live stream right after it connects.

The bug: ``webrtc_streamer`` treats its context as stale, stops the WebRTC worker and
logs "Context for key=... was not rendered for 1 script runs; resetting stale state"
whenever the session's ``script_run_count`` moved by more than one since the
component's last render. That counter is not advanced by the script thread: the
runtime increments it on the event loop when it *sends* a run's ``script_finished``
message. While a stream starts, reruns come back to back (SDP answer, ICE
candidates, ``playing`` flips) and the same event loop is busy with aiortc's RTP and
video encoding, so a run can start before the previous run's message is flushed. It
reads a lagging count (c); by the next run both messages have gone out (c + 2) and a
component that was rendered in every run looks "not rendered for 1 run". The worker
is stopped and the video freezes or never starts. Measured on a busy 2-core box: 1 in
10 starts followed by quick reruns; 3 in 10 with the lag widened to 1 s by the fault
injection in tests/browser_support.py; 0 in 10 either way with this fix.

The fix: decide staleness from the component's own widget state instead. Streamlit
drops a widget's state at the end of every *completed* full run that did not render it
(synchronously, in the script thread; fragment runs and runs interrupted by a rerun
keep it). So the frontend state is missing exactly when the component really was left
out of a finished run (the user went to another page and came back) and the iframe
remounted. We reset in that case only, and switch the library's counter-based check
off by clearing the run count it compares against. Call ``prepare_webrtc_context(key)``
right before ``webrtc_streamer(key=key, ...)`` on every run.
"""

from __future__ import annotations

import logging

import streamlit as st
from streamlit_webrtc import component as _webrtc

LOGGER = logging.getLogger(__name__)


def _has_live_state(context) -> bool:
    state = context.state
    return bool(
        context._get_worker()
        or context._sdp_answer_json
        or context._is_sdp_answer_sent
        or state.playing
        or state.signalling
    )


def prepare_webrtc_context(key: str) -> None:
    """Make the next ``webrtc_streamer(key=key)`` call reset its context only when truly stale."""
    context = st.session_state.get(key)
    if context is None or type(context).__name__ != "WebRtcStreamerContext":
        return  # first render (or a misuse the library reports itself)
    frontend_key = _webrtc.generate_frontend_component_key(key)
    if frontend_key not in st.session_state and _has_live_state(context):
        LOGGER.debug("webrtc component %r was left out of a completed run; resetting its context", key)
        _webrtc._reset_context(context)
    # None disables the library's run-count comparison for this render; it records the
    # count again during the call, so this must run before every webrtc_streamer call.
    context._last_rendered_run_count = None


__all__ = ["prepare_webrtc_context"]
