"""Streamlit entry point: page config, navigation over pages/, and the shared sidebar.

Run with ``streamlit run streamlit_app.py``. Pages only lay out widgets; the work
happens in ``src`` (cached through ``src.app.cache``). Each page starts with
``cache.ensure_navigation()``: with a folder named ``pages/``, Streamlit serves
a deep link opened before anyone loaded this script in its legacy multipage mode.
"""

from __future__ import annotations

# streamlit-webrtc (aiortc -> pylibsrtp) must be imported before TensorFlow: the
# other order segfaults the whole server process. Pages import TensorFlow lazily,
# so importing it here, first, keeps every navigation order safe.
import streamlit_webrtc  # noqa: F401  isort: skip

import streamlit as st

from src.app import adapt_view, cache
from src.streams import draw
from src.training import model_card

cache.freeze_startup_objects()

# The favicon is drawn and served by the app; no page has an icon. A Material icon (or an
# emoji shortcode) there made the browser fetch the favicon from a third-party font host.
st.set_page_config(
    page_title="Facial Emotion Analytics", page_icon=draw.app_icon(), layout="wide", initial_sidebar_state="expanded"
)
cache.apply_upload_limit()

PAGES = [
    st.Page("pages/1_project_summary.py", title="Project Summary", default=True),
    st.Page("pages/2_emotion_detection.py", title="Emotion Detection"),
    st.Page("pages/3_data_analysis.py", title="Data Analysis"),
    st.Page("pages/4_model_performance.py", title="Model Performance"),
]
page = st.navigation(PAGES)


def deployed_model(manifest: dict | None, metrics: dict | None) -> None:
    """The deployed model's version and its accuracy on lab photos (FER2013) and on real photos (ExpW)."""
    if manifest is None:
        st.warning("No model manifest found.")
    else:
        st.markdown(
            f"**Version** {model_card.plain_name(manifest)}",
            help=f"Version id: {model_card.model_version(manifest, metrics)}",
        )
    for kpi in model_card.accuracy_kpis(metrics, cache.cross_dataset()):
        if kpi.measured:
            st.metric(kpi.label, kpi.value, help=kpi.help)
        else:
            st.caption(f"{kpi.label}: {model_card.NOT_MEASURED}")
    if metrics is not None and manifest is not None and not model_card.metrics_match_model(manifest, metrics):
        st.caption("⚠️ These scores were computed for a different model file.")


def sidebar() -> None:
    """Model version and its accuracy (lab and real photos) on every page, so every number has a provenance. Once a
    model has been adapted to the customer's faces, a selector picks the model Emotion Detection
    reads with, and the sidebar describes that one (its accuracy on the customer's held-back photos)."""
    with st.sidebar:
        st.markdown("#### Model")
        adapted = adapt_view.sidebar_model()
        if adapted is None:
            deployed_model(cache.model_manifest(), cache.metrics())
        else:
            adapt_view.sidebar_adapted(adapted)
        st.divider()
        st.caption(
            "Estimates facial *expressions*, not feelings. Tell people when it runs; "
            "never use it on employees or students."
        )


sidebar()
page.run()
