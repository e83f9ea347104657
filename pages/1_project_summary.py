"""Project Summary: the business case, user stories, CRISP-DM steps, live KPIs and responsible use."""

from __future__ import annotations

import streamlit as st

from src.app import cache, summary_view
from src.training import model_card

cache.ensure_navigation()

st.title("Facial Emotion Analytics")
st.markdown(
    "Turn customer photos and video into a **sentiment signal**: how many people look happy, neutral "
    "or negative, per campaign, store visit or UX session. A CNN trained on FER2013 reads seven "
    "expressions (angry, disgust, fear, happy, sad, surprise, neutral) from every face it finds."
)

kpis = model_card.headline_kpis(cache.metrics(), cache.saved_dataset_stats(), cache.benchmark(), cache.cross_dataset())
for col, kpi in zip(st.columns(len(kpis)), kpis):
    col.metric(kpi.label, kpi.value, help=kpi.help)
if not all(k.measured for k in kpis):
    st.caption(
        "Numbers shown as — are not yet measured; they appear once the evaluation and benchmark "
        "scripts have run (`python -m src.cli evaluate`, `python -m src.cli stats`, `python bench/bench_inference.py`)."
    )


summary_view.saved_results()

left, right = st.columns(2)
with left:
    st.subheader("Business case")
    st.markdown(
        "- **Service feedback**: read the mood at the counter or in video calls without a survey.\n"
        "- **Campaign effectiveness**: compare the emotion mix of audiences shown ad A vs ad B.\n"
        "- **UX research**: find the moments in a test session where users frown or smile.\n\n"
        "Success means an analyst gets a trustworthy emotion mix for a batch of photos in seconds, "
        "with held-out accuracy at the level of human agreement on FER2013 (~65%)."
    )
    st.subheader("User stories")
    st.markdown(
        "- As a **marketing analyst**, I drop a folder of audience photos per campaign and compare "
        "their sentiment side by side, so I can tell which creative lands better.\n"
        "- As a **customer-service manager**, I watch a live camera view with an alert when negative "
        "expressions dominate, so I can step in early.\n"
        "- As a **UX researcher**, I upload a session recording and get a per-second emotion "
        "timeline, so I can jump to the frustrating moments.\n"
        "- As a **stakeholder**, I see the model's accuracy and limits on one page, so I know how "
        "far to trust the numbers.\n"
        "- As a **data scientist**, I inspect class balance, confusion matrix and calibration, so "
        "I can decide what to improve next."
    )
with right:
    st.subheader("How it was built (CRISP-DM)")
    st.markdown(
        "1. **Business understanding**: sentiment analytics for service, campaigns and UX.\n"
        "2. **Data understanding**: FER2013 (35,887 faces, 48x48 grayscale), FER+ re-labels and "
        "ExpW in-the-wild web photos — see *Data Analysis*.\n"
        "3. **Data preparation**: face detection with landmarks (YuNet), alignment onto FER2013's "
        "framing, grayscale 48x48; lighting, blur and occlusion augmentation; class weights.\n"
        "4. **Modelling**: two compact CNNs in Keras 3 (widths 24 and 48) averaged, each selected on PublicTest and "
        "held-back ExpW photos, then a per-emotion shift fitted on those same faces so that no emotion goes unseen; "
        "each face is read mirrored and not, zoomed a little in and out, and the four answers averaged.\n"
        "5. **Evaluation**: accuracy, macro-F1, ROC and calibration on the untouched PrivateTest "
        "split — see *Model Performance*.\n"
        "6. **Deployment**: this dashboard (photos, batches, live camera, video) and a CLI."
    )
    st.subheader("Responsible use")
    st.warning(
        "**It estimates facial expressions, not inner feelings.** A smile is not proof of "
        "satisfaction, and expressions differ between people and cultures.\n\n"
        "- **Never use it on employees or students**: emotion recognition in the workplace and in "
        "education is banned in the EU AI Act since February 2025.\n"
        "- **Tell people when it runs** (signage, consent, study briefing) and report aggregates, "
        "not individuals.\n"
        "- Do not base a decision about a single person on its output.",
        icon=":material/balance:",
    )

st.page_link(
    "pages/2_emotion_detection.py",
    label="Try it: analyse photos, a batch, the camera or a video",
    icon=":material/arrow_forward:",
)
