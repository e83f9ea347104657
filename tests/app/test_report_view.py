"""The report download of History & trends (src/app/report_view.py): the tab's filters as a report
selection, the files it makes, and the buttons (or the reason there are none) under AppTest."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from streamlit.testing.v1 import AppTest

from src import config
from src.analytics.demo import fill_demo_store
from src.analytics.store import Store
from src.app import report_view

APP = str(config.ROOT / "streamlit_app.py")
TIMEOUT = 240

pytestmark = pytest.mark.skipif(not config.MODEL_FILE.exists(), reason="no bundled model")


@pytest.fixture
def demo_db(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{(tmp_path / 'results.db').as_posix()}"
    with Store(url) as store:
        fill_demo_store(store, seed=2, weeks=2)
    monkeypatch.setattr(config, "DATABASE_URL", url)
    monkeypatch.setenv("FER_DATABASE_URL", url)
    return url


def test_the_tabs_filters_become_the_reports_selection():
    filters = dict(
        campaigns=["(no campaign)", "Spring ad A"], locations=[], sources=["video"], since=date(2026, 5, 1), until=None
    )
    selection = report_view.selection_of(filters)
    assert selection.campaigns == ("", "Spring ad A") and selection.locations == () and selection.sources == ("video",)
    assert selection.since == datetime(2026, 5, 1, tzinfo=UTC) and selection.until is None
    picked = report_view.selection_of(dict(campaigns=[], locations=[], sources=[], since=None, until=date(2026, 5, 2)))
    assert picked.campaigns == () and picked.until == datetime(2026, 5, 3, tzinfo=UTC)


def test_report_bytes_are_the_html_and_pdf_files(demo_db):
    with Store(demo_db) as store:
        selection = report_view.selection_of(
            dict(campaigns=["Spring ad B", "Loyalty week"], locations=[], sources=[], since=None, until=None)
        )
        page = report_view.report_bytes(store, selection, "html").decode("utf-8")
        assert page.startswith("<!DOCTYPE html>") and "Spring ad B against Loyalty week" in page
        assert report_view.report_bytes(store, selection, "pdf").startswith(b"%PDF-")


@pytest.fixture
def app_test(no_webrtc_session, navigation_mode):
    """AppTest in st.navigation mode, without a browser session for streamlit-webrtc (tests/conftest.py)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/2_emotion_detection.py").run()
    assert not at.exception, at.exception
    return at


def test_history_tab_offers_the_report_or_says_why_not(demo_db, app_test):
    at = app_test
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Report (HTML)" in labels and "Report (PDF)" in labels
    assert "Report for managers" in [s.value for s in at.subheader]
    at.multiselect(key="history_campaigns").set_value(["Spring ad A"]).run()
    at.multiselect(key="history_sources").set_value(["live"]).run()  # Spring ad A has no live session
    assert not at.exception, at.exception
    assert any("No people in this selection" in str(i.value) for i in at.info)
    assert "Report (PDF)" not in [b.proto.label for b in at.get("download_button")]
