"""The dashboard's helpers: cached loaders, charts, uploads, dataset views, the saved
reports, the Emotion Detection tabs (``detection/``) and the streamlit-webrtc patch. The only package besides ``pages/`` that imports Streamlit.

May import: every layer below (config, common, engine, analytics, training, streams)."""
