"""Data Analysis: what FER2013 looks like — balance, example and mean faces, pixels, label noise."""

from __future__ import annotations

import streamlit as st

from src.app import cache, dataset_view, plots

cache.ensure_navigation()

st.title("Data Analysis")

stats, origin = cache.dataset_stats()
data, data_error = cache.load_dataset()
if data_error:
    st.warning(data_error)
if stats is None:
    st.info(
        "No dataset and no saved statistics yet. Put FER2013 under `inputs/datasets/fer2013/` "
        "(`python -m src.cli collect PATH`) or write the statistics with `python -m src.cli stats`."
    )
    st.stop()

names = list(stats.get("class_names") or [])
st.caption(
    "Computed from the dataset on disk."
    if origin == "dataset"
    else "From the saved dataset statistics"
    + ("; example faces from the dataset on disk." if data is not None else ".")
)
if origin != "dataset":
    with st.expander("Details for data scientists"):
        st.markdown(f"Statistics read from `{cache.report_location()}/dataset_stats.json`.")

agreement = stats.get("ferplus_agreement") or {}
cols = st.columns(4)
cols[0].metric("Faces", f"{stats.get('total', 0):,}")
cols[1].metric("Classes", len(names))
ratio = stats.get("imbalance_ratio")
cols[2].metric("Imbalance (largest / smallest class)", f"{ratio:.1f}x" if ratio else "—")
cols[3].metric(
    "FER+ agreement",
    f"{agreement['overall']:.0%}" if agreement.get("overall") is not None else "—",
    help="Share of faces whose FER2013 label matches the FER+ majority vote of 10 annotators.",
)

with st.container(border=True):
    st.markdown("**Key findings**")
    for line in dataset_view.insights(stats):
        st.markdown(f"- {line}")

st.subheader("Class balance")
left, right = st.columns([1.6, 1])
left.plotly_chart(plots.class_counts(stats), width="stretch", key="class-counts")
right.plotly_chart(plots.class_share(stats), width="stretch", key="class-share")

st.subheader("What the faces look like")
if data is not None:
    per_class = st.slider("Examples per class", 4, 16, 10, key="grid_per_class")
    seed = st.session_state.setdefault("grid_seed", 0)
    if st.button("Show other examples", icon=":material/shuffle:", key="grid_shuffle"):
        seed = st.session_state["grid_seed"] = seed + 1
    grid = cache.sample_grid(cache.dataset_source() or "", per_class, seed)
    for name, row in zip(data.class_names, dataset_view.grid_rows(grid, len(data.class_names))):
        label, image = st.columns([1, 9], vertical_alignment="center")
        label.markdown(f"**{name}**")
        image.image(row, width="content")
else:
    st.info(dataset_view.NO_EXAMPLES, icon=":material/photo_library:")

mean = cache.mean_faces()
if mean is not None and names:
    st.markdown(
        "**Mean face per class** (average of all training faces): the mouth and brow regions carry most of the signal."
    )
    st.image(dataset_view.strip_tiles(mean, len(names)), caption=names, width=110)

st.subheader("Pixel intensities")
left, right = st.columns(2)
left.plotly_chart(plots.pixel_histogram(stats), width="stretch", key="pixel-hist")
right.plotly_chart(plots.pixel_stats(stats), width="stretch", key="pixel-stats")

st.subheader("FER2013 vs FER+ labels")
if agreement.get("overall") is None:
    st.info("FER+ votes (fer2013new.csv) were not available when the statistics were computed.")
else:
    st.markdown(
        f"FER+ asked 10 annotators to relabel every face. On {agreement.get('n_compared', 0):,} faces "
        f"with a clear majority, they agree with the original label **{agreement['overall']:.0%}** "
        "of the time — a ceiling on how well any model can match FER2013 labels."
    )
    left, right = st.columns(2)
    left.plotly_chart(
        plots.per_class_bars(agreement.get("per_class") or {}, "Agreement per FER2013 class"),
        width="stretch",
        key="ferplus-per-class",
    )
    with right:
        normalise = st.toggle("Show row percentages", value=True, key="ferplus_normalise")
        if agreement.get("confusion"):
            st.plotly_chart(
                plots.heatmap(
                    agreement["confusion"],
                    names,
                    normalise=normalise,
                    x_title="FER+ majority",
                    y_title="FER2013 label",
                    title="FER2013 label vs FER+ majority",
                ),
                width="stretch",
                key="ferplus-confusion",
            )
