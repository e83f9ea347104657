"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

A session-wide ``streamlit run streamlit_app.py`` serves the app; Chromium's fake camera
plays a generated .y4m of a face, so the live-camera test exercises the whole WebRTC
path (browser capture -> aiortc -> ``LiveSession.video_frame_callback`` -> processed
video back in the page). Screenshots go to $FER_SCREENSHOT_DIR (docs/screenshots for
the committed ones) or a temporary folder.

``FER_LIVE_REPEAT=10 pytest tests/app/test_browser.py -k live`` repeats the live test in
fresh browser sessions to measure how reliably streams start and stay up.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, WEBRTC_IFRAME, face_frame, face_video, streamlit_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: apt-get install -y chromium"),
]

PAGES = {  # url path -> (screenshot name, the page's title)
    "": ("1_project_summary", "Facial Emotion Analytics"),
    "emotion_detection": ("2_emotion_detection", "Emotion Detection"),
    "data_analysis": ("3_data_analysis", "Data Analysis"),
    "model_performance": ("4_model_performance", "Model Performance"),
}
EMOTION_RE = re.compile(r"^(angry|disgust|fear|happy|sad|surprise|neutral)$", re.I)
LIVE_REPEAT = int(os.environ.get("FER_LIVE_REPEAT", "1"))
RUN_COUNT_LAG = float(os.environ.get("FER_RUN_COUNT_LAG", "1.0"))


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    path = os.environ.get("FER_SCREENSHOT_DIR")
    out = Path(path) if path else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with streamlit_server(log) as url:
        yield url
    # Uncaught errors in the server (e.g. in the WebRTC callback) fail loudly here.
    text = log.read_text(errors="replace")
    assert "live frame processing failed" not in text, text[-3000:]


@pytest.fixture(scope="session")
def lagging_app_url(tmp_path_factory):
    """A second server whose run counter lags behind, as on a busy machine (see browser_support)."""
    log = tmp_path_factory.mktemp("streamlit_lag") / "server.log"
    with streamlit_server(log, run_count_lag=RUN_COUNT_LAG) as url:
        yield url


@pytest.fixture()
def fresh_app_url(tmp_path_factory):
    """A server nobody has opened yet: its first request decides Streamlit's multipage mode."""
    with streamlit_server(tmp_path_factory.mktemp("streamlit_fresh") / "server.log") as url:
        yield url


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    video = face_video(tmp_path_factory.mktemp("camera") / "face.y4m")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={video}"]
        )
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


def wait_until_idle(page, timeout: float = 120.0, quiet: float = 1.5) -> None:
    """Wait for the app to render and the script to stop running for ``quiet`` seconds."""
    page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=timeout * 1000)
    page.wait_for_selector("h1", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').filter(has_text=re.compile("running", re.I))
        spinners = page.locator('[data-testid="stSpinner"]')
        if running.count() == 0 and spinners.count() == 0:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= quiet:
                return
        else:
            idle_since = None
        time.sleep(0.25)
    raise TimeoutError("the app kept running")


def screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its own container, so grow the viewport to fit it."""
    # No hover anchors or focus rings left over from the test's own clicks.
    size = page.viewport_size
    page.mouse.move(size["width"] - 5, size["height"] - 5)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    height = page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]') || document.body;
        return Math.max(main.scrollHeight, document.body.scrollHeight);
    }""")
    page.set_viewport_size({"width": size["width"], "height": min(max(height + 40, size["height"]), 8000)})
    time.sleep(1.0)  # let charts re-layout to the new size
    page.screenshot(path=path)
    page.set_viewport_size(size)


def wait_for_text(page, text, timeout: float = 120.0, shot: Path | None = None) -> None:
    """Wait for ``text`` (str or pattern) to show; on timeout fail with what the page shows instead."""
    try:
        page.get_by_text(text).first.wait_for(timeout=timeout * 1000)
    except Exception as exc:  # Playwright's TimeoutError: say what the page showed instead
        if shot is not None:
            page.screenshot(path=shot, full_page=True)
        shown = page.locator('[data-testid="stMain"]').inner_text()[-3000:]
        raise AssertionError(
            f"{text!r} not shown within {timeout:.0f} s ({type(exc).__name__}); page:\n{shown}"
        ) from None


def assert_no_exception(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, "Streamlit exception on the page:\n" + "\n---\n".join(errors.all_inner_texts())


def metric_value(page, label: str) -> str:
    """The value of the metric labelled exactly ``label`` ("Frames analysed" is not "Frames analysed per second")."""
    exact = page.locator('[data-testid="stMetricLabel"]').filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    metric = page.locator('[data-testid="stMetric"]').filter(has=exact).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def metric_delta(page, label: str) -> str:
    exact = page.locator('[data-testid="stMetricLabel"]').filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    metric = page.locator('[data-testid="stMetric"]').filter(has=exact).first
    return metric.locator('[data-testid="stMetricDelta"]').inner_text().strip()


def cut_off_texts(locator) -> list[str]:
    """Texts shown with an ellipsis because they do not fit their box (a label read as "Save re…")."""
    return locator.evaluate("""root => [...root.querySelectorAll('*')]
        .filter(el => getComputedStyle(el).textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1)
        .map(el => el.innerText.trim()).filter(Boolean)""")


@pytest.mark.parametrize("path", list(PAGES), ids=[v[0] for v in PAGES.values()])
def test_page_loads_without_errors(page, app_url, screenshot_dir, path):
    name, title = PAGES[path]
    page.goto(f"{app_url}/{path}")
    wait_until_idle(page)
    assert page.locator("h1").first.inner_text().strip().startswith(title)
    assert_no_exception(page)
    screenshot(page, screenshot_dir / f"{name}.png")


def test_model_performance_cross_dataset_and_model_picker(page, app_url, screenshot_dir):
    """The shipped outputs: the cross-dataset table, and the FER+ model behind the picker."""
    page.goto(f"{app_url}/model_performance")
    wait_until_idle(page)
    page.get_by_role("tab", name="Cross-dataset").click()
    wait_until_idle(page)
    panel = page.locator('[data-testid="stTabPanel"]:visible, [role="tabpanel"]:visible').first
    assert panel.locator('[data-testid="stDataFrame"]').count() == 1
    assert_no_exception(page)
    screenshot(page, screenshot_dir / "4_model_performance_cross_dataset.png")
    picker = page.locator('[data-testid="stSelectbox"]').filter(has_text="Model").first
    picker.click()
    page.get_by_role("option", name="FER+ model (fer_plus.keras)").click()
    wait_until_idle(page)
    assert page.get_by_text("Showing FER+ model (fer_plus.keras)").count() >= 1
    assert_no_exception(page)


def test_deep_link_as_first_request_gets_the_full_app(page, fresh_app_url):
    # With a pages/ folder, Streamlit would run a deep-linked page alone (no navigation,
    # no sidebar, no page config) until the entry script has run once in the process.
    page.goto(f"{fresh_app_url}/model_performance")
    wait_until_idle(page)
    assert page.locator("h1").first.inner_text().strip().startswith("Model Performance")
    nav = page.locator('[data-testid="stSidebarNav"]')
    for title in ("Project Summary", "Emotion Detection", "Data Analysis", "Model Performance"):
        assert nav.get_by_text(title, exact=True).count() == 1
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Version").count() >= 1
    assert page.title().startswith("Model Performance") or "Facial Emotion" in page.title()
    assert_no_exception(page)


def test_every_tab_of_emotion_detection_renders(page, app_url):
    page.goto(f"{app_url}/emotion_detection")
    wait_until_idle(page)
    tabs = page.get_by_role("tab")
    assert tabs.count() >= 4
    for i in range(tabs.count()):
        tabs.nth(i).click()
        wait_until_idle(page, quiet=0.5)
        assert_no_exception(page)


def test_photo_upload_shows_the_emotion(page, app_url, screenshot_dir, tmp_path):
    from PIL import Image

    photo = tmp_path / "astronaut.png"
    Image.fromarray(face_frame()).save(photo)
    page.goto(f"{app_url}/emotion_detection")
    wait_until_idle(page)
    page.get_by_role("tab", name=re.compile("Photos")).click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(photo))
    failed = screenshot_dir / "FAILED_photo_upload.png"
    wait_for_text(page, "astronaut.png", 30, failed)  # the upload itself reached the app
    wait_for_text(page, "1 face found", 120, failed)
    wait_until_idle(page)
    # Each face card is headed "#<n> <Emotion> · <confidence>%".
    label = page.get_by_text(re.compile(r"^#1 (angry|disgust|fear|happy|sad|surprise|neutral) · \d+%$", re.I))
    assert label.count() >= 1, page.locator('[data-testid="stMain"]').inner_text()[:2000]
    assert_no_exception(page)
    screenshot(page, screenshot_dir / "2_emotion_detection_photo.png")


def test_batch_shows_the_new_batch_and_its_uploader_starts_empty(page, app_url, screenshot_dir, tmp_path):
    """Issue 20, as a first-time analyst met it: after batch "Spring ad A", batch "Spring ad B" (3 new
    files, one without a face) is the batch shown (figures, warning, remove button), the uploader starts
    empty for it (A's photos never join B), and no label of the tab is cut off."""
    from PIL import Image

    def save(name: str, rgb) -> str:
        Image.fromarray(rgb).save(tmp_path / name)
        return str(tmp_path / name)

    first = [save("a1.png", face_frame()), save("a2.png", face_frame(shift=60))]
    blank = np.full((480, 640, 3), 128, np.uint8)
    second = [save("b1.png", face_frame(shift=-60)), save("b2.png", face_frame(shift=30)), save("b3.png", blank)]
    page.goto(f"{app_url}/emotion_detection")
    wait_until_idle(page)
    page.get_by_role("tab", name=re.compile("Batch")).click()
    panel = page.locator('[role="tabpanel"]:visible').first
    assert cut_off_texts(panel) == []
    failed = screenshot_dir / "FAILED_batch.png"
    for name, files in (("Spring ad A", first), ("Spring ad B", second)):
        field = panel.locator('[data-testid="stTextInput"]').filter(has_text="Campaign (batch name)").locator("input")
        field.fill(name)
        field.press("Enter")
        wait_until_idle(page, quiet=0.5)
        panel.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(files)
        run = panel.get_by_role("button", name=f"Analyse {len(files)} files")
        run.wait_for(timeout=30_000)  # not "Analyse 5 files": the first batch's photos are gone
        run.click()
        wait_for_text(page, f"Remove batch “{name}”", 120, failed)
        wait_until_idle(page)
        assert_no_exception(page)
        # The uploader is empty again, ready for the next batch.
        assert panel.get_by_role("button", name="Analyse", exact=True).is_disabled()
    assert metric_value(page, "Photos") == "3"
    assert panel.get_by_text("1 file had no face").count() == 1
    show = panel.locator('[data-testid="stSelectbox"]').filter(has_text="Show batch")
    shown = show.evaluate("el => el.textContent + ' ' + [...el.querySelectorAll('input')].map(i => i.value).join(' ')")
    assert "Spring ad B" in shown and "Spring ad A" not in shown, shown
    assert cut_off_texts(panel) == []
    screenshot(page, screenshot_dir / "2_emotion_detection_batch.png")


def _video_state(frame) -> dict:
    return frame.locator("video").first.evaluate(
        "v => ({t: v.currentTime, w: v.videoWidth, h: v.videoHeight, paused: v.paused})"
    )


def _wait_playing(frame, timeout: float = 45.0) -> dict:
    deadline = time.monotonic() + timeout
    state: dict | str = "no video element"
    while time.monotonic() < deadline:
        try:
            state = _video_state(frame)
            if state["w"] > 0 and state["t"] > 0.5 and not state["paused"]:
                return state
        except Exception as exc:  # the <video> appears only once the stream is negotiated
            state = f"{type(exc).__name__}"
        time.sleep(0.25)
    raise AssertionError(f"processed video never started playing: {state}")


def _open_live_tab(page, app_url: str):
    page.goto(f"{app_url}/emotion_detection")
    wait_until_idle(page)
    page.get_by_role("tab", name=re.compile("Live camera")).click()
    return page.frame_locator(WEBRTC_IFRAME)


def _start(frame) -> dict:
    frame.get_by_role("button", name=re.compile(r"^start$", re.I)).click()
    return _wait_playing(frame)


def _quick_reruns(page, n: int = 4) -> None:
    """Full script reruns in quick succession, as when an analyst touches widgets while streaming."""
    for _ in range(n):
        page.locator("h1").first.click()
        page.keyboard.press("r")  # Streamlit's rerun shortcut
        time.sleep(0.3)


def _frames(page) -> int:
    return int(metric_value(page, "Frames analysed").replace(",", ""))


@pytest.mark.parametrize("attempt", range(LIVE_REPEAT))
def test_live_camera_processes_frames(page, app_url, screenshot_dir, attempt):
    frame = _open_live_tab(page, app_url)
    first = _start(frame)
    assert (first["w"], first["h"]) == (640, 480)
    _quick_reruns(page)

    # Frames reach the Python callback: the counter that the page refreshes every second grows.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _frames(page) > 0:
                break
        except Exception:  # the live panel appears on the first rerun after START
            pass
        time.sleep(0.5)
    frames_before, t_before = _frames(page), time.monotonic()
    time.sleep(6)  # long enough for a stream torn down after connecting to show it

    state = _video_state(frame)
    frames_after, elapsed = _frames(page), time.monotonic() - t_before
    fps = float(metric_delta(page, "Frames analysed").split()[0])  # "12.0 a second"
    print(
        f"live: {frames_after - frames_before} frames in {elapsed:.1f} s "
        f"({(frames_after - frames_before) / elapsed:.1f}/s), page fps {fps}"
    )
    assert state["t"] - first["t"] > 4, f"the processed video stalled: {first} -> {state}"
    assert not state["paused"]
    assert frame.get_by_role("button", name=re.compile(r"^stop$", re.I)).count() == 1, "stream was disconnected"
    assert frames_after > frames_before > 0
    assert metric_value(page, "Faces in view") == "1"
    assert cut_off_texts(page.locator('[role="tabpanel"]:visible').first) == []
    assert EMOTION_RE.match(metric_value(page, "Current mood"))
    assert_no_exception(page)
    if attempt == 0:
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=15_000)
        time.sleep(1)
        screenshot(page, screenshot_dir / "2_emotion_detection_live.png")
    frame.get_by_role("button", name=re.compile(r"^stop$", re.I)).click()
    # The panel follows the stream: no live figures once it has stopped (issue 20).
    wait_for_text(page, "Camera stopped", 30)
    wait_until_idle(page)
    labels = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    assert not {"Faces in view", "Current mood", "Frames analysed", "Running for"} & {t.strip() for t in labels}, labels
    assert page.get_by_text("Last session").count() >= 1
    assert_no_exception(page)
    if attempt == 0:
        screenshot(page, screenshot_dir / "2_emotion_detection_live_stopped.png")


@pytest.mark.parametrize("attempt", range(LIVE_REPEAT))
def test_live_stream_survives_reruns_on_a_busy_server(page, lagging_app_url, attempt):
    """Regression test for the streamlit-webrtc stale-context race (src/app/webrtc_fix.py).

    With the run counter lagging, quick reruns after START made the library stop the
    worker ("was not rendered for 1 script runs") in about 7 of 10 attempts; the
    stream must stay up.
    """
    frame = _open_live_tab(page, lagging_app_url)
    first = _start(frame)
    _quick_reruns(page, 5)
    time.sleep(5)
    state = _video_state(frame)
    assert state["t"] - first["t"] > 4, f"the processed video stalled: {first} -> {state}"
    assert frame.get_by_role("button", name=re.compile(r"^stop$", re.I)).count() == 1, "stream was disconnected"
    frame.get_by_role("button", name=re.compile(r"^stop$", re.I)).click()


def test_live_camera_starts_again_after_leaving_the_page(page, app_url):
    """Leaving the page mid-stream remounts the component: the old stream must not block a new one."""
    frame = _open_live_tab(page, app_url)
    _start(frame)
    page.get_by_role("link", name=re.compile("Project Summary")).click()
    wait_until_idle(page)
    page.get_by_role("link", name=re.compile("Emotion Detection")).click()
    wait_until_idle(page)
    page.get_by_role("tab", name=re.compile("Live camera")).click()
    frame = page.frame_locator(WEBRTC_IFRAME)
    first = _start(frame)
    time.sleep(4)
    assert _video_state(frame)["t"] - first["t"] > 2
    assert frame.get_by_role("button", name=re.compile(r"^stop$", re.I)).count() == 1
    frame.get_by_role("button", name=re.compile(r"^stop$", re.I)).click()


def test_y4m_camera_file_decodes_to_the_face(tmp_path):
    """The generated fake-camera file is valid YUV4MPEG2 and still shows the face."""
    av = pytest.importorskip("av")
    path = face_video(tmp_path / "face.y4m", n=4)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 4 and frames[0].shape == (480, 640, 3)
    assert np.abs(frames[0].astype(int) - face_frame().astype(int)).mean() < 3


# --- bad-input corpus (issue 7) ---------------------------------------------------------------

TRACKER_NAME = "![t](http://tracker.invalid/pixel.png).jpg"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def _offsite(url: str) -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return parsed.scheme not in ("data", "blob", "about", "chrome-error") and parsed.hostname not in LOCAL_HOSTS


@pytest.fixture()
def limited_app_url(tmp_path_factory):
    """A server started with FER_MAX_UPLOAD_MB=3 (and nothing else set for Streamlit's upload limit)."""
    log = tmp_path_factory.mktemp("streamlit_limited") / "server.log"
    with streamlit_server(log, env={"FER_MAX_UPLOAD_MB": "3"}) as url:
        yield url


def test_no_request_leaves_the_machine_and_names_stay_text(browser, limited_app_url, tmp_path):
    """Every page and tab, and an upload named like a Markdown image: no request goes beyond
    localhost (Material page icons made the browser fetch the favicon from a font host, and the
    file name made it fetch the tracker's pixel). The uploader's limit is FER_MAX_UPLOAD_MB."""
    from PIL import Image

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    requested: list[str] = []

    def route(route):
        requested.append(route.request.url)
        if _offsite(route.request.url):
            route.abort()  # recorded, never sent
        else:
            route.continue_()

    context.route("**/*", route)
    page = context.new_page()
    page.on("request", lambda request: requested.append(request.url))
    try:
        for path in PAGES:
            page.goto(f"{limited_app_url}/{path}")
            wait_until_idle(page)
            assert_no_exception(page)
        page.goto(f"{limited_app_url}/emotion_detection")
        wait_until_idle(page)
        tabs = page.get_by_role("tab")
        for i in range(tabs.count()):
            tabs.nth(i).click()
            wait_until_idle(page, quiet=0.5)
        page.get_by_role("tab", name=re.compile("Photos")).click()
        uploader = page.locator('[data-testid="stFileUploader"]').first
        assert re.search(r"\b3\s?MB per file", uploader.inner_text()), uploader.inner_text()

        photo = tmp_path / "face.jpg"
        Image.fromarray(face_frame()).save(photo, quality=90)
        uploader.locator('input[type="file"]').set_input_files(
            {"name": TRACKER_NAME, "mimeType": "image/jpeg", "buffer": photo.read_bytes()}
        )
        wait_for_text(page, "1 face found", 120)
        wait_until_idle(page)
        assert_no_exception(page)
        main = page.locator('[data-testid="stMain"]')
        assert main.get_by_text(TRACKER_NAME, exact=True).count() == 1  # shown as typed
        assert main.locator('img[src*="tracker.invalid"], a[href*="tracker.invalid"]').count() == 0

        # Over the limit: the browser refuses it before sending.
        uploader.locator('input[type="file"]').set_input_files(
            {"name": "big.jpg", "mimeType": "image/jpeg", "buffer": b"\xff" * (4 * 1024 * 1024)}
        )
        page.get_by_text(re.compile(r"must be 3(\.0)?\s?MB or smaller", re.I)).first.wait_for(timeout=15_000)

        icons = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
        assert icons and not [href for href in icons if _offsite(href)], icons
    finally:
        context.close()
    offsite = sorted({url for url in requested if _offsite(url)})
    assert not offsite, f"requests beyond localhost: {offsite}"


# --- History & trends over a pre-filled results store -------------------------------------------

MARKUP_CAMPAIGN = "**Ad** <b>bold</b> [x](http://tracker.invalid/) $x^2$"


@pytest.fixture()
def history_store(tmp_path_factory):
    """A temporary SQLite store holding the seeded demo runs (src/analytics/demo.py, tagged demo)."""
    from src.analytics.demo import fill_demo_store
    from src.analytics.store import Store

    url = f"sqlite:///{(tmp_path_factory.mktemp('history') / 'results.db').as_posix()}"
    with Store(url) as store:
        fill_demo_store(store, seed=7, weeks=6)
    return url


@pytest.fixture()
def history_app_url(tmp_path_factory, history_store):
    log = tmp_path_factory.mktemp("streamlit_history") / "server.log"
    with streamlit_server(log, env={"FER_DATABASE_URL": history_store}) as url:
        yield url


def _open_history(page, app_url: str):
    page.goto(f"{app_url}/emotion_detection")
    wait_until_idle(page)
    page.get_by_role("tab", name=re.compile("History & trends")).click()
    wait_until_idle(page)
    return page.locator('[role="tabpanel"]:visible').first


def test_history_and_trends_render_and_campaign_names_stay_text(page, history_app_url, history_store, screenshot_dir):
    panel = _open_history(page, history_app_url)
    charts = panel.locator('[data-testid="stPlotlyChart"]')
    charts.nth(3).locator(".main-svg").first.wait_for(timeout=30_000)
    assert charts.count() == 4  # shares of people over time, corrected emotions and sentiment, campaign comparison
    for i in range(4):
        assert charts.nth(i).locator(".trace.bars .point path").count() > 0, f"chart {i} drew nothing"
    assert charts.nth(1).locator(".errorbar").count() > 0  # the corrected shares' 95% ranges
    assert panel.get_by_text(re.compile(r"really differ|No clear difference|Too few people")).count() >= 1
    assert metric_value(page, "People") != metric_value(page, "Samples")  # videos and live follow people
    assert_no_exception(page)
    screenshot(page, screenshot_dir / "2_emotion_detection_history.png")
    # The groups editor leads with words and a form; the line syntax is one tab away.
    panel.get_by_text("Emotion groups (edit)").click()
    panel.get_by_role("tab", name="Add, change or remove a group").wait_for(timeout=15_000)
    assert panel.get_by_role("button", name="Save group").is_visible()
    assert cut_off_texts(panel) == []
    screenshot(page, screenshot_dir / "2_emotion_detection_groups.png")
    page.goto(history_app_url)
    wait_until_idle(page)
    assert metric_value(page, "People seen") != "—"
    screenshot(page, screenshot_dir / "1_project_summary_saved_results.png")

    # A campaign named with Markdown and HTML, busier than the demo ones so it is compared by default.
    from src.analytics.store import Store

    rows = [
        {"file": f"m{i}.jpg", "face": 0, "emotion": ("happy", "neutral", "sad")[i % 3], "confidence": 0.8}
        for i in range(2400)
    ]
    with Store(history_store) as store:
        store.save_rows("batch", rows, campaign=MARKUP_CAMPAIGN)
    panel = _open_history(page, history_app_url)
    charts = panel.locator('[data-testid="stPlotlyChart"]')
    charts.nth(3).locator(".main-svg").first.wait_for(timeout=30_000)
    assert_no_exception(page)
    legend = charts.nth(3).locator(".legendtext").evaluate_all("els => els.map(e => e.textContent)")
    assert MARKUP_CAMPAIGN in legend, legend  # Plotly shows the tags as typed
    verdict = panel.locator('[data-testid="stAlert"]').filter(has_text="differ").first
    assert f"“{MARKUP_CAMPAIGN}”" in verdict.inner_text().replace("\u2060", "")  # word joiners: no autolink
    main = page.locator('[data-testid="stMain"]')
    tracker = main.locator('a[href*="tracker.invalid"], img[src*="tracker.invalid"]')
    assert tracker.count() == 0, tracker.evaluate_all(
        "els => els.map(e => e.outerHTML + ' in ' + e.parentElement.parentElement.outerHTML.slice(0, 400))"
    )
    assert main.locator("b", has_text="bold").count() == 0 and main.locator(".katex").count() == 0

    page.goto(history_app_url)  # the Project Summary's store KPIs name it too, as typed
    wait_until_idle(page)
    assert metric_value(page, "Busiest campaign").replace("\u2060", "") == MARKUP_CAMPAIGN
    assert page.locator('[data-testid="stMain"] a[href*="tracker.invalid"]').count() == 0
