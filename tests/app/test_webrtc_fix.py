"""src/app/webrtc_fix.py: reset a streamlit-webrtc context only when its component really left the page.

The end-to-end check (a live stream surviving quick reruns with a lagging run counter)
is in tests/app/test_browser.py; these tests pin the decision itself.
"""

from __future__ import annotations

import types

import pytest

pytest.importorskip("streamlit_webrtc")

from streamlit_webrtc.component import (  # noqa: E402
    WebRtcStreamerContext,
    WebRtcStreamerState,
    generate_frontend_component_key,
)

from src.app import webrtc_fix  # noqa: E402

KEY = "live-camera"


class FakeWorker:
    def __init__(self):
        self.stopped = False

    def stop(self):
        self.stopped = True


def streaming_context(worker: FakeWorker) -> WebRtcStreamerContext:
    context = WebRtcStreamerContext(worker=worker, state=WebRtcStreamerState(playing=True, signalling=True))
    context._sdp_answer_json = '{"sdp": "v=0", "type": "answer"}'
    context._is_sdp_answer_sent = True
    context._last_rendered_run_count = 3
    return context


@pytest.fixture()
def session_state(monkeypatch):
    state: dict = {}
    monkeypatch.setattr(webrtc_fix, "st", types.SimpleNamespace(session_state=state))
    return state


def test_rendered_last_run_keeps_the_stream_and_disables_the_run_count_check(session_state):
    worker = FakeWorker()
    context = session_state[KEY] = streaming_context(worker)
    session_state[generate_frontend_component_key(KEY)] = {"playing": True}
    webrtc_fix.prepare_webrtc_context(KEY)
    assert not worker.stopped
    assert context._get_worker() is worker and context.state.playing
    # None makes the library skip its "not rendered for N runs" comparison for this render.
    assert context._last_rendered_run_count is None


def test_component_dropped_by_a_completed_run_is_reset(session_state):
    worker = FakeWorker()
    context = session_state[KEY] = streaming_context(worker)
    webrtc_fix.prepare_webrtc_context(KEY)  # no frontend state: the user left the page
    assert worker.stopped
    assert context._get_worker() is None
    assert context.state == WebRtcStreamerState(playing=False, signalling=False)
    assert context._sdp_answer_json is None and not context._is_sdp_answer_sent


def test_idle_context_without_frontend_state_is_left_alone(session_state):
    context = session_state[KEY] = WebRtcStreamerContext(worker=None, state=WebRtcStreamerState(False, False))
    context._last_rendered_run_count = 5
    webrtc_fix.prepare_webrtc_context(KEY)
    assert context._last_rendered_run_count is None


def test_first_render_and_foreign_values_are_no_ops(session_state):
    webrtc_fix.prepare_webrtc_context(KEY)
    assert KEY not in session_state
    session_state[KEY] = "not a context"
    webrtc_fix.prepare_webrtc_context(KEY)
    assert session_state[KEY] == "not a context"
