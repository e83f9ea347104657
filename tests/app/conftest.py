"""Fixtures the AppTest modules share: st.navigation mode kept from run to run, and no
browser session for streamlit-webrtc."""

import pytest


@pytest.fixture
def navigation_mode(monkeypatch):
    """Keep AppTest in st.navigation mode from run to run.

    AppTest re-detects the legacy ``pages/`` mode before every run, where a real server
    does it once per process; each run would then go through ``ensure_navigation``'s
    rerun, which drops one-shot widget values such as a button click. The real-server
    path is covered by test_browser.py::test_deep_link_as_first_request_gets_the_full_app.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture
def no_webrtc_session(monkeypatch):
    """AppTest has no browser session for streamlit-webrtc to attach to."""
    import streamlit_webrtc.component as component

    monkeypatch.setattr(component, "get_this_session_info", lambda: None)
