"""Emotion Detection: photos, batches with campaign comparison, the live camera, video files, and
the history of saved results with its trends. Each tab is drawn by its module in src/app/detection/."""

from __future__ import annotations

import streamlit as st

from src.app import cache
from src.app.detection import batch, history, intro, live, photos, video
from src.common.sanitize import markdown_literal

cache.ensure_navigation()

st.title("Emotion Detection")
st.caption(markdown_literal(intro((cache.model_manifest_of(cache.chosen_model()) or {}).get("class_names"))))

photos_tab, batch_tab, live_tab, video_tab, history_tab = st.tabs(
    [
        ":material/photo_camera: Photos",
        ":material/folder_copy: Batch & campaigns",
        ":material/videocam: Live camera",
        ":material/movie: Video file",
        ":material/insights: History & trends",
    ]
)
with photos_tab:
    photos.render()
with batch_tab:
    batch.render()
with live_tab:
    live.render()
with video_tab:
    video.render()
with history_tab:
    history.render()
