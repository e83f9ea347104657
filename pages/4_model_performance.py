"""Model Performance: how good the deployed model is, where it errs, how well calibrated, and its card;
an adapted model's scores on the customer's held-back photos; and adapting the model to your faces."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from src.app import adapt_view, cache, plots, tables
from src.training import model_card, outputs

cache.ensure_navigation()

SPLIT_LABELS = {"PrivateTest": "PrivateTest (test)", "PublicTest": "PublicTest (validation)"}
DETAILS = "Details for data scientists"


def pct(value) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "—"


def score(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "—"


def evaluation_reports(model: str | None, manifest: dict | None, label: str) -> None:
    """The FER2013 evaluation of a model trained here (``label`` names it): scores, tables and charts from outputs/vN/."""
    metrics = cache.metrics(model)
    class_names = list((metrics or {}).get("class_names") or (manifest or {}).get("class_names") or [])
    st.caption(
        f"Showing {label}: "
        f"**{model_card.plain_name(manifest)}** · reads {len(class_names) or 7} expressions "
        f"({', '.join(class_names) or 'angry … neutral'})"
    )
    with st.expander(DETAILS):
        st.markdown(
            "\n".join(
                f"- {line}" for line in model_card.technical_details(manifest, metrics, cache.report_location(model))
            )
        )
    if metrics is not None and manifest is not None and not model_card.metrics_match_model(manifest, metrics):
        st.warning(
            "These scores were computed for a different model file than the one deployed; "
            "re-run `python -m src.cli evaluate` after publishing a model."
        )

    if metrics is None:
        st.info(
            "The model has not been evaluated yet: run `python -m src.cli evaluate` to fill this page. "
            "The model card below is read from the model's manifest."
        )
        splits: list[str] = []
    else:
        splits = model_card.split_names(metrics)

    split = None
    if splits:
        split = st.radio(
            "Split",
            splits,
            horizontal=True,
            format_func=lambda s: SPLIT_LABELS.get(s, s),
            key="perf_split",
            help="PrivateTest is the held-out test set; PublicTest chose the model.",
        )
        scores = metrics["splits"][split]
        plus = (metrics.get("ferplus") or {}).get(split) or {}
        cols = st.columns(5)
        cols[0].metric("Accuracy", pct(scores.get("accuracy")), help=f"{scores.get('n') or 0:,} faces")
        cols[1].metric("Macro-F1", score(scores.get("macro_f1")), help=model_card.MACRO_F1_HELP)
        cols[2].metric("Weighted F1", score(scores.get("weighted_f1")))
        ece, ece_note = model_card.calibration_error(metrics, split)
        cols[3].metric("Calibration error (ECE)", pct(ece), help=ece_note)
        cols[4].metric(
            "Accuracy vs FER+",
            pct(plus.get("accuracy")),
            help="Against the majority vote of 10 FER+ annotators (less label noise).",
        )
        st.caption(
            "Macro-F1 is a 0-1 score that counts every emotion equally, so a rare one such as disgust "
            "weighs as much as happy."
        )
        real = model_card.real_photo_caption(cache.cross_dataset(model))
        if real:
            st.caption(real)

    tabs = st.tabs(
        [
            "Confusion matrix",
            "Per-class report",
            "Learning curves",
            "ROC",
            "Calibration",
            "Cross-dataset",
            "Model comparison",
            "Model card",
        ]
    )

    with tabs[0]:
        if split and scores.get("confusion_matrix"):
            normalise = st.toggle("Row-normalised (recall per true class)", value=True, key="cm_normalise")
            st.plotly_chart(
                plots.heatmap(
                    scores["confusion_matrix"],
                    class_names,
                    normalise=normalise,
                    title=f"Confusion matrix, {SPLIT_LABELS.get(split, split)}",
                ),
                width="stretch",
                key="confusion",
            )
            st.caption("Rows are the true labels, columns the predictions; the diagonal is correct.")
        else:
            st.info("No confusion matrix yet.")

    with tabs[1]:
        if split:
            table = model_card.report_table(scores, class_names)
            tables.show(model_card.display_table(table, model_card.REPORT_COLUMNS), model_card.REPORT_COLUMNS)
            recall = {n: (scores.get("per_class") or {}).get(n, {}).get("recall") for n in class_names}
            st.plotly_chart(
                plots.per_class_bars(recall, "Recall per class", "recall"), width="stretch", key="recall-bars"
            )
        else:
            st.info("No classification report yet.")

    with tabs[2]:
        history = cache.history(model)
        if history is not None and len(history):
            st.plotly_chart(plots.learning_curves(history), width="stretch", key="history")
            st.caption(
                "Validation is FER2013's PublicTest (and, for models trained on in-the-wild photos, the "
                "held-back ExpW photos). A widening gap between the curves means over-fitting; the "
                "deployed weights are those of the best validation epoch."
            )
        else:
            st.info("No training history (history.csv) yet.")

    with tabs[3]:
        roc = cache.roc(model)
        roc_split = (roc or {}).get(split or "PrivateTest") or next(iter((roc or {}).values()), None)
        if roc_split:
            st.plotly_chart(plots.roc_curves(roc_split), width="stretch", key="roc")
            st.caption("One-vs-rest ROC per emotion; AUC 1.0 is perfect, 0.5 is chance.")
        else:
            st.info("No ROC curves (roc.json) yet.")

    with tabs[4]:
        calibration = (metrics or {}).get("calibration") or {}
        reliability = calibration.get("reliability") or {}
        curve = reliability.get(split or "PrivateTest") or next(iter(reliability.values()), None)
        wild = model_card.wild_calibration(manifest)
        if calibration:
            cols = st.columns(4)
            cols[0].metric(
                "Temperature",
                f"{calibration.get('temperature', 1.0):.2f}",
                help=f"Fitted on {calibration.get('fitted_on', 'PublicTest')}; divides the logits.",
            )
            before, after = calibration.get("ece_before"), calibration.get("ece_after")
            cols[1].metric("ECE before scaling", pct(before), help="On FER2013's test crops.")
            cols[2].metric(
                "ECE after scaling",
                pct(after),
                f"{(after - before) * 100:+.1f} pts" if before is not None and after is not None else None,
                delta_color="inverse",
                help="On FER2013's test crops, as served.",
            )
            cols[3].metric(
                "ECE on real web photos",
                pct(wild.get("ece")),
                help="As served, on the faces found in ExpW's held-back photos. A temperature fitted on those "
                f"photos ({wild['temperature_wild']:.2f}, not served) would give {pct(wild.get('ece_after'))}."
                if wild.get("temperature_wild") is not None
                else "Not yet measured.",
            )
        if curve:
            st.plotly_chart(
                plots.reliability_diagram(curve, "Reliability on lab photos (FER2013 test crops, after scaling)"),
                width="stretch",
                key="reliability",
            )
        if wild.get("reliability"):
            st.plotly_chart(
                plots.reliability_diagram(wild["reliability"], "Reliability on real web photos (ExpW, held back)"),
                width="stretch",
                key="reliability_wild",
            )
        if curve or wild:
            sentences = model_card.calibration_sentences(manifest, metrics)
            st.caption(" ".join(["Bars below the diagonal mean over-confidence.", *sentences]))
        elif not calibration:
            st.info("No calibration results yet.")

    with tabs[5]:
        table = model_card.cross_dataset_table(metrics, cache.cross_dataset(model))
        if table.empty:
            st.info("No cross-dataset scores yet: run `python bench/score_wild.py --expw PATH --ckplus PATH`.")
        else:
            columns = model_card.CROSS_DATASET_COLUMNS
            tables.show(model_card.display_table(table, columns), columns, key="cross_dataset")
            st.caption(
                "FER2013 and FER+ are 48x48 lab crops; ExpW is in-the-wild web photos run through the whole "
                "pipeline (detection, alignment, classification; a missed face counts as wrong); CK+ is posed "
                "studio faces. ExpW's held-back photos were never trained on, but (with PublicTest) chose the "
                "best epoch, so read them as validation figures; CK+ played no part at all."
            )
        confusions = model_card.confusion_tables(metrics, cache.cross_dataset(model))
        if confusions:
            dataset = st.selectbox("Confusion matrix of", list(confusions), key="cross_confusion_dataset")
            chosen = confusions[dataset]
            st.plotly_chart(
                plots.heatmap(
                    chosen["counts"],
                    chosen["true"],
                    normalise=True,
                    title=f"Confusion matrix, {dataset}",
                    columns=chosen["predicted"],
                ),
                width="stretch",
                key="cross_confusion",
            )
            st.caption(
                " ".join(
                    [
                        "Rows are the true labels, columns the answers, as shares of each row.",
                        model_card.open_mouth_sentence(chosen),
                    ]
                )
            )

    with tabs[6]:
        comparison = cache.model_comparison()
        if comparison is not None and len(comparison) and "private_test_accuracy" in comparison:
            st.plotly_chart(plots.model_comparison(comparison), width="stretch", key="comparison")
            deployed = cache.model_manifest()
            names = {model_card.model_version(deployed): model_card.plain_name(deployed)} if deployed else {}
            tables.show(
                model_card.comparison_table(comparison, names), model_card.COMPARISON_COLUMNS, key="comparison_table"
            )
        else:
            st.info("No model comparison (model_comparison.csv) yet.")

    with tabs[7]:
        sections = model_card.readable_card(manifest, metrics, cache.cross_dataset(model))
        half = (len(sections) + 1) // 2
        for column, part in zip(st.columns(2, gap="large"), (sections[:half], sections[half:])):
            with column:
                for section in part:
                    st.markdown(f"**{section.title}**")
                    st.markdown("\n".join(f"- {line}" for line in section.lines))
        with st.expander(DETAILS):
            card = model_card.model_card(manifest, metrics)
            left, right = st.columns(2)
            left.dataframe(pd.DataFrame(card.facts, columns=["field", "value"]), hide_index=True, width="stretch")
            right.dataframe(
                pd.DataFrame(card.performance, columns=["metric", "value"]), hide_index=True, width="stretch"
            )
            st.markdown("**The model's manifest (raw JSON)**")
            st.json(manifest or {}, expanded=False)


st.title("Model Performance")

choices = cache.model_choices()
model = None
if len(choices) > 1:
    picked = st.selectbox(
        "Model",
        choices,
        format_func=adapt_view.model_label,
        key="perf_model",
        help="The deployed model answers the dashboard, CLI and API by default; others are chosen with --model "
        "(and adapted models in the sidebar, for Emotion Detection).",
    )
    model = None if picked == choices[0] else picked
manifest = cache.model_manifest_of(model)
if outputs.is_adapted(manifest):
    adapt_view.render_report(model or choices[0], manifest)
else:
    evaluation_reports(model, manifest, model_card.model_label(model or (choices[0] if choices else "")))
adapt_view.render()
