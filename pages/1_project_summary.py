"""Project Summary: the business case, user stories, CRISP-DM steps, live KPIs and responsible use."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from src.analytics import persist, trends
from src.app import cache, demo_data, shares
from src.common.sanitize import markdown_literal
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


def demo_button(label: str, key: str, action, help: str) -> None:
    """A button that changes the results store, then reruns the page to show the new numbers."""
    if st.button(label, key=key, icon=":material/science:", help=help):
        try:
            with st.spinner(f"{label}…"):
                action()
        except Exception as exc:  # a store that fails must not take the page down
            st.error(f"{label} failed: {markdown_literal(persist.failure(exc))}")
            return
        st.rerun()


def saved_results() -> None:
    """Headline numbers of the results store: people seen, positive share week on week (as read and
    corrected), busiest campaign."""
    st.subheader("Saved results")
    store, error = cache.results_store()
    if store is None:
        st.caption(f"The results store could not be opened ({markdown_literal(error or '')}).")
        return
    try:
        frame, runs = cache.stored_history(store)
        people = cache.stored_people(store, runs)
        k = trends.kpis(frame, people=people)
    except Exception as exc:
        st.caption(f"The results store could not be read ({markdown_literal(persist.failure(exc))}).")
        return
    if not k.faces:
        st.caption(
            "No results saved yet. Turn on *Save results* in Emotion Detection (on by default for batches, "
            "videos and the live camera) and these numbers fill in, or load demo data to see them filled."
        )
        demo_button(
            "Load demo data",
            "demo_load",
            lambda: demo_data.load(store),
            "Adds made-up runs of three invented campaigns, tagged demo, to the results store; "
            "remove them again in one click.",
        )
        return
    demo = demo_data.demo_run_ids(runs)
    if demo:
        st.warning(
            f"**Demo data**: {'all' if len(demo) == len(runs) else f'{len(demo):,} of the'} {len(runs):,} saved "
            "runs are made up, so the numbers below and in History & trends are not real results.",
            icon=":material/science:",
        )
        demo_button(
            "Remove demo data",
            "demo_remove",
            lambda: demo_data.remove(store, runs),
            "Deletes the demo runs only; your own results stay.",
        )
    cols = st.columns(3)
    cols[0].metric(
        "People seen",
        f"{k.people or 0:,}",
        help=f"{k.samples:,} samples (face rows and live face-seconds). A face in a photo is one person; "
        "someone followed through a video or by the live camera is one person however long they stay.",
    )
    this_week = f"{k.positive_this_week:.0%}" if k.positive_this_week is not None else "—"
    change = f"{100 * k.positive_change:+.0f} pts vs last week" if k.positive_change is not None else None
    cols[1].metric(
        "Positive people this week",
        this_week,
        change,
        help=(
            f"Share of this ISO week's people (UTC, from Monday) who look happy: {k.people_this_week or 0:,} people; "
            + (
                f"last week {k.positive_last_week:.0%} of {k.people_last_week or 0:,}."
                if k.positive_last_week is not None
                else "none last week."
            )
        ),
    )
    cols[2].metric(
        "Busiest campaign",
        # A metric's value is rendered as Markdown: the user's name goes in escaped.
        markdown_literal(k.busiest_campaign) if k.busiest_campaign is not None else "—",
        f"{k.busiest_people or 0:,} people" if k.busiest_campaign is not None else None,
        delta_color="off",
        delta_arrow="off",
        help="The campaign with the most people seen, all time.",
    )
    corrected_positive(frame, people)


def corrected_positive(frame, people) -> None:
    """This week's positive share corrected for the model's known mix-ups, with its range, in one line."""
    week = trends.iso_week_start(pd.Timestamp.now(tz="UTC"))
    rows = trends.prepare(frame)
    rows = rows[(rows["at"] >= week) & (rows["at"] < week + pd.Timedelta(days=7))]
    labels, clusters = shares.face_samples(rows, people)
    if not labels:
        return
    positive = {"positive": shares.correctable(trends.sentiment_grouping()).groups["positive"]}
    result, reason = cache.corrected_shares(labels, clusters, positive)
    if result is None:
        st.caption(shares.not_corrected(reason))
        return
    share = result.group("positive")
    st.caption(
        f"Positive this week, corrected for the mix-ups the model is known to make on real photos: "
        f"**{share.corrected:.0%}** (the true share lies between {share.low:.0%} and {share.high:.0%}, "
        "19 times in 20)."
    )


saved_results()

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
        "held-back ExpW photos.\n"
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
