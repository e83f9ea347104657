"""Adapting the model to a customer's faces, in the dashboard: the "Adapt to your faces" section of
Model Performance, an adapted model's report, and the sidebar's Model selector.

The analyst uploads a .zip with one folder per emotion. It is unpacked with the upload rules
(``uploads.extract_zip``: unsafe paths, hidden files, non-images and oversized members are left
out, each with its reason) into a temporary folder and handed to ``src.training.adapt``, which
fits a new head on the frozen model's features and scores the model before and after on photos
held back from that fit. The adapted model (``.onnx`` + its manifest) is written to
``config.MODELS_DIR`` under the analyst's name, never over an existing model; from then on the
Model Performance picker and the sidebar offer it (``outputs.adapted_model_files``).

An adapted model carries its scores in its manifest (``adaptation``): they are the report shown
for it, in place of the FER2013 reports it has no part in.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd
import streamlit as st

from src import config
from src.app import cache, tables, uploads
from src.common.sanitize import markdown_literal
from src.training import model_card, outputs
from src.training.adapt import AdaptError, label_of

NAME_MAX = 64
_NAME = re.compile(r"[A-Za-z0-9_-]+")
# Every file a model of that name could own; an adapted model writes the first two.
_MODEL_SUFFIXES = (".onnx", ".json", ".keras", ".int8.onnx", ".features.onnx")
_ARCHIVE = "archive.zip"  # the prefix extract_zip puts before every member name
DETAILS = "Details for data scientists"
RESULT = "adapt_result"  # session key of the last adaptation's outcome
_GENERATION = "adapt_generation"  # bumped after an adaptation: empties the uploader and the name
PERF_MODEL = "perf_model"  # the Model Performance picker's key

RECALL_COLUMNS = (
    model_card.TableColumn("emotion", "Emotion", "An emotion the adapted model reads."),
    model_card.TableColumn(
        "before",
        "Recognised before",
        "Share of the held-back photos of this emotion the original model got right.",
        "percent",
    ),
    model_card.TableColumn(
        "after",
        "Recognised after",
        "Share of the held-back photos of this emotion the adapted model got right.",
        "percent",
    ),
)
SKIPPED_COLUMNS = (
    model_card.TableColumn("photo", "Photo", "The file inside the archive."),
    model_card.TableColumn("reason", "Why it was skipped", "What was wrong with it."),
)
NOT_FER2013 = (
    "An adapted model is scored on the customer's own photos, held back from its fitting: those "
    "figures are above. The FER2013 reports (confusion matrix, learning curves, ROC, calibration, "
    "cross-dataset) describe the models trained in this project and are not measured for it."
)
INTRO = (
    "Teach the model your own faces: upload a **.zip** holding one folder per emotion "
    "(for example `happy/`, `sad/`, `neutral/`; any of angry, disgust, fear, happy, sad, surprise, "
    "neutral), each with labelled photos, at least 4 per emotion and ideally 20 or more. Every photo "
    "goes through the same face detection as the rest of the dashboard. A quarter of the photos is "
    "held back from the fitting, so you see how well the model reads faces it did not learn from, "
    "before and after. "
    "It takes a minute or a few; the deployed model is not changed."
)


# --- names and files --------------------------------------------------------------------


def existing_files(name: str) -> list[Path]:
    """The model files of that name already in ``config.MODELS_DIR``."""
    return [p for p in (Path(config.MODELS_DIR) / f"{name}{s}" for s in _MODEL_SUFFIXES) if p.exists()]


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a new adapted model, or None."""
    if not name:
        return "Name the adapted model first."
    if len(name) > NAME_MAX or not _NAME.fullmatch(name):
        return f"Use only letters, digits, - and _ in the name (up to {NAME_MAX} characters)."
    taken = existing_files(name)
    if taken:
        return (
            f"A model named {name} already exists ({', '.join(p.name for p in taken)}); models are never "
            "overwritten, so choose another name."
        )
    return None


def adapted_name(model: str | Path) -> str:
    """How an adapted model is named in the dashboard: its file's stem, said to be adapted."""
    return f"{Path(model).stem} (adapted to your faces)"


def model_label(model: str) -> str:
    """The Model Performance picker's name for a model file: adapted ones said so, others as ``model_card``."""
    if outputs.is_adapted(cache.model_manifest_of(model)):
        return adapted_name(model)
    return model_card.model_label(model)


def base_name(manifest: dict | None) -> str:
    """The model an adapted model was adapted from, in plain words (its manifest when it is still there)."""
    base = (manifest or {}).get("adapted_from") or {}
    file = str(base.get("file") or "")
    path = Path(config.MODELS_DIR) / file if file else None
    found = cache.model_manifest_of(str(path)) if path is not None and path.is_file() else None
    if found is not None:
        return f"{model_card.plain_name(found)} ({file})"
    return f"{file or 'an unknown model'}, version {base.get('version') or 'unknown'}"


def detection_label(model: str) -> str:
    """The sidebar selector's short name for a model file (the version is shown under it)."""
    if Path(model).resolve() == Path(config.MODEL_FILE).resolve():
        return "Deployed model"
    return f"{Path(model).stem} (adapted)"


# --- unpacking and adapting -------------------------------------------------------------


@dataclass
class Outcome:
    """What one adaptation gave, kept in the session to be shown (plain values only)."""

    name: str
    model: str
    classes: list[str]
    faces: int
    held_out: int
    before: dict
    after: dict
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def _labels() -> tuple[str, ...]:
    manifest = cache.model_manifest() or {}
    return tuple(manifest.get("class_names") or config.EMOTIONS)


def _relative(parts: tuple[str, ...]) -> tuple[str, ...] | None:
    """Safe path parts under the extraction folder, or None (extract_zip already refuses ``..``)."""
    if not parts or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        return None
    return parts


def unpack(data: bytes, dest: Path, labels: Sequence[str]) -> tuple[Path, list[tuple[str, str]]]:
    """Unpack the archive's images into ``dest``; returns the folder holding the emotion folders
    and the archive entries left out, with reasons. Raises ``AdaptError`` for an archive that is
    not one or holds no emotion folder."""
    expanded = uploads.extract_zip(_ARCHIVE, data)
    prefix = f"{_ARCHIVE}/"
    skipped = [(s.name.removeprefix(prefix), s.reason) for s in expanded.skipped]
    for item in expanded.items:
        if item.name == _ARCHIVE:  # the archive as a whole was refused
            raise AdaptError(f"the upload cannot be used: {item.error}")
        rel = item.name.removeprefix(prefix)
        if item.error:
            skipped.append((rel, item.error))
            continue
        parts = _relative(PurePosixPath(rel.replace("\\", "/")).parts)
        if parts is None:
            skipped.append((rel, "unsafe path, not unpacked"))
            continue
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.data)
    root = dest
    # A zipped folder (faces/happy/...) holds the emotion folders one level down.
    while not _emotion_folders(root, labels):
        subfolders = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
        if len(subfolders) != 1:
            raise AdaptError(
                "the archive has no emotion folders: put the photos in folders named after the emotions "
                f"({', '.join(labels)}), one folder per emotion"
            )
        root = subfolders[0]
    return root, skipped


def _emotion_folders(root: Path, labels: Sequence[str]) -> list[Path]:
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.is_dir() and label_of(p.name, labels) is not None]


def _folder_name(archive: str) -> str:
    """A folder name for the archive's photos (recorded in the manifest): its stem, made file-safe."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(archive).stem).strip("._")
    return stem[:NAME_MAX] or "photos"


def adapt_upload(
    data: bytes,
    name: str,
    crops: bool = False,
    group_pattern: str | None = None,
    holdout: float = 0.25,
    progress: Callable[[int, int], None] | None = None,
    archive: str = "photos.zip",
) -> Outcome:
    """Adapt the deployed model to the faces of the zip ``data`` (uploaded as ``archive``) and publish
    it as ``MODELS_DIR/<name>.onnx``.

    Raises ``AdaptError`` with a message for the analyst (a bad name or archive, too few faces,
    a bad person id pattern). The model is fitted in a temporary folder and moved in only when
    it is complete, so a failure never leaves a half-written model in the picker."""
    from src.training.adapt import adapt

    problem = name_problem(name)
    if problem:
        raise AdaptError(problem)
    if group_pattern:
        try:
            re.compile(group_pattern)
        except re.error as exc:
            raise AdaptError(f"the person id pattern is not a valid regular expression ({exc})") from None
    with tempfile.TemporaryDirectory(prefix="fer-adapt-") as tmp:
        work = Path(tmp)
        root, skipped = unpack(data, work / "photos" / _folder_name(archive), _labels())
        built = work / "model" / f"{name}.onnx"
        try:
            result = adapt(
                root,
                built,
                config.MODEL_FILE,
                crops=crops,
                holdout=holdout,
                group_pattern=group_pattern or None,
                progress=progress,
            )
        except AdaptError as exc:
            raise AdaptError(str(exc).replace(str(root), "the archive")) from None
        if existing_files(name):  # another session took the name meanwhile
            raise AdaptError(name_problem(name) or f"{name} is taken")
        dest = Path(config.MODELS_DIR) / built.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        # The manifest first: a model file is only listed once its manifest is beside it.
        shutil.move(built.with_suffix(".json"), dest.with_suffix(".json"))
        shutil.move(built, dest)
    return Outcome(
        name=name,
        model=str(dest),
        classes=list(result.classes),
        faces=result.faces,
        held_out=result.held_out,
        before=asdict(result.before),
        after=asdict(result.after),
        skipped=skipped + list(result.skipped),
        seconds=result.seconds,
    )


# --- showing ----------------------------------------------------------------------------


def _pct(value) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else model_card.MISSING


def _points(before, after) -> str | None:
    if isinstance(before, (int, float)) and isinstance(after, (int, float)):
        return f"{(after - before) * 100:+.1f} pts"
    return None


def _recall_table(before: dict, after: dict, classes: Sequence[str]) -> pd.DataFrame:
    rows = [
        {"emotion": c, "before": (before.get("recall") or {}).get(c), "after": (after.get("recall") or {}).get(c)}
        for c in classes
    ]
    return model_card.display_table(pd.DataFrame(rows, columns=["emotion", "before", "after"]), RECALL_COLUMNS)


def _skipped_table(skipped: Sequence[Sequence[str]]) -> None:
    if skipped:
        count = len(skipped)
        with st.expander(f"{count} photo{'s' if count != 1 else ''} or file{'s' if count != 1 else ''} skipped"):
            table = pd.DataFrame([{"photo": str(n), "reason": str(r)} for n, r in skipped], columns=["photo", "reason"])
            tables.show(model_card.display_table(table, SKIPPED_COLUMNS), SKIPPED_COLUMNS)


def _scores(before: dict, after: dict, faces: int, held_out: int) -> None:
    """Accuracy before and after on the held-back photos, and how many faces taught the model."""
    cols = st.columns(4)
    cols[0].metric("Accuracy before adapting", _pct(before.get("accuracy")), help="The original model.")
    cols[1].metric(
        "Accuracy after adapting",
        _pct(after.get("accuracy")),
        _points(before.get("accuracy"), after.get("accuracy")),
        help="The adapted model, on the same held-back photos.",
    )
    cols[2].metric(
        "Faces it learnt from", f"{faces:,}", help="Photos in which a face was found, all emotions together."
    )
    cols[3].metric(
        "Held-back photos",
        f"{held_out:,}",
        help="Photos kept out of the fitting that was scored, to measure the accuracy on faces the model never saw.",
    )


def _plain_summary(before: dict, after: dict, held_out: int) -> str:
    line = (
        f"On the {held_out} photo{'s' if held_out != 1 else ''} held back from the fitting, the original model read "
        f"**{_pct(before.get('accuracy'))}** of the expressions right; the adapted model reads "
        f"**{_pct(after.get('accuracy'))}**."
    )
    if held_out < 30:
        line += " With this few held-back photos the figures are rough: more photos per emotion make them steadier."
    return line


def _use_for_detection(model: str) -> None:
    st.session_state[cache.MODEL_CHOICE] = model


def _show_report(model: str) -> None:
    st.session_state[PERF_MODEL] = model


def show_outcome(outcome: Outcome) -> None:
    """The result of the adaptation just run: before/after, per-emotion recall, skipped photos, where it is now."""
    st.success(
        f"The adapted model **{markdown_literal(outcome.name)}** is ready: it reads "
        f"{', '.join(outcome.classes)}. It is now in the model picker at the top of this page and in the "
        f"sidebar's model selector (for Emotion Detection). Fitted in {outcome.seconds:.0f} s.",
        icon=":material/check_circle:",
    )
    st.markdown(_plain_summary(outcome.before, outcome.after, outcome.held_out))
    _scores(outcome.before, outcome.after, outcome.faces, outcome.held_out)
    with st.expander("Recognised per emotion (held-back photos)"):
        tables.show(_recall_table(outcome.before, outcome.after, outcome.classes), RECALL_COLUMNS)
        st.caption(
            f"Macro-F1 (0-1, every emotion counted equally): {outcome.before.get('macro_f1', 0):.3f} before, "
            f"{outcome.after.get('macro_f1', 0):.3f} after."
        )
    _skipped_table(outcome.skipped)
    if Path(outcome.model).is_file():
        left, right, _ = st.columns([1, 1, 2])
        left.button(
            "Use it for Emotion Detection",
            key="adapt_use",
            on_click=_use_for_detection,
            args=(outcome.model,),
            icon=":material/face:",
        )
        right.button("Show its report", key="adapt_report", on_click=_show_report, args=(outcome.model,))


def _progress(bar) -> Callable[[int, int], None]:
    def update(done: int, total: int) -> None:
        share = min(1.0, done / max(1, total))
        text = (
            f"Finding and aligning faces: {done} of {total} photos"
            if done < total
            else "Fitting the adapted model on your faces…"
        )
        bar.progress(share, text=text)

    return update


def render() -> None:
    """The "Adapt to your faces" section: upload, name, options, Adapt, then the outcome."""
    st.divider()
    st.subheader("Adapt to your faces")
    st.markdown(INTRO)
    generation = st.session_state.get(_GENERATION, 0)
    upload = st.file_uploader(
        "A .zip with one folder per emotion",
        type=["zip"],
        key=f"adapt_upload_{generation}",
        max_upload_size=config.MAX_UPLOAD_MB,
        help="Folders such as happy/, sad/, neutral/ (anger, sadness, happiness and the like work too).",
    )
    name = st.text_input(
        "Name of the adapted model",
        key=f"adapt_name_{generation}",
        max_chars=NAME_MAX,
        placeholder="e.g. store_12_faces",
        help="Letters, digits, - and _. It names the model in the pickers and in saved results.",
    ).strip()
    with st.expander(DETAILS):
        crops = st.checkbox(
            "These are face crops",
            key="adapt_crops",
            help="Each photo is one face cut out already (as in FER2013 or CK+ crops): face detection is skipped.",
        )
        pattern = st.text_input(
            "Person id pattern",
            key="adapt_pattern",
            placeholder=r"^(S\d+)_",
            help="A regular expression on the file names; its first group names the person. All photos of one "
            "person stay on the same side of the held-back split, so a face seen in fitting never flatters the score.",
        ).strip()
        holdout = st.slider(
            "Share of photos held back", 0.1, 0.5, 0.25, 0.05, key="adapt_holdout", help="Stratified by emotion."
        )
        st.caption(
            f"Base model: {model_card.model_label(str(config.MODEL_FILE))}. Method: its frozen features (of the face "
            "as seen, mirrored and reframed) feed a new class-balanced logistic regression (scikit-learn), its strength "
            "chosen by cross-validation over people; it is scored on the held-back photos, then refitted on all "
            "of them. Runs on ONNX Runtime, without TensorFlow."
        )
    problem = name_problem(name) if name else None
    if problem:
        st.error(problem, icon=":material/error:")
    clicked = st.button(
        "Adapt",
        type="primary",
        key="adapt_run",
        disabled=upload is None or not name or problem is not None,
        help=None if upload is not None and name else "Upload a .zip and name the model first.",
    )
    if clicked and upload is not None:
        st.session_state.pop(RESULT, None)
        bar = st.progress(0.0, text="Unpacking the archive…")
        try:
            outcome = adapt_upload(
                upload.getvalue(),
                name,
                crops=crops,
                group_pattern=pattern or None,
                holdout=holdout,
                progress=_progress(bar),
                archive=upload.name,
            )
        except AdaptError as exc:
            bar.empty()
            st.error(f"**Not adapted**: {markdown_literal(str(exc))}.", icon=":material/error:")
        except Exception as exc:  # anything unexpected is one message, never a traceback
            bar.empty()
            st.error(f"**Not adapted**: {markdown_literal(f'{type(exc).__name__}: {exc}')}", icon=":material/error:")
        else:
            st.session_state[RESULT] = outcome
            st.session_state[_GENERATION] = generation + 1
            st.rerun()  # the pickers list the new model, the uploader and the name start empty
    outcome = st.session_state.get(RESULT)
    if isinstance(outcome, Outcome):
        show_outcome(outcome)


# --- an adapted model's report ------------------------------------------------------------


def _skipped_line(count: int) -> str:
    if not count:
        return "No photo was skipped."
    return (
        f"{count:,} photo{'s' if count != 1 else ''} skipped (no face found, not an image, or not in an "
        "emotion folder)."
    )


def render_report(model: str, manifest: dict) -> None:
    """What Model Performance shows for an adapted model: its adaptation record, in plain words first."""
    info = manifest.get("adaptation") or {}
    base = manifest.get("adapted_from") or {}
    classes = list(manifest.get("class_names") or [])
    before, after = info.get("before") or {}, info.get("after") or {}
    held_out, faces = int(info.get("held_out_faces") or 0), int(info.get("faces") or 0)
    st.caption(
        f"Showing {adapted_name(model)}: adapted from **{markdown_literal(base_name(manifest))}** · reads "
        f"{len(classes)} expressions ({', '.join(classes)})"
    )
    st.markdown(_plain_summary(before, after, held_out))
    _scores(before, after, faces, held_out)
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Recognised per emotion (held-back photos)**")
        tables.show(_recall_table(before, after, classes), RECALL_COLUMNS, key="adapted_recall")
    with right:
        per_class = info.get("faces_per_class") or {}
        st.markdown("**What it learnt from**")
        lines = [
            f"{faces:,} faces from {markdown_literal(str(info.get('folder') or 'the uploaded photos'))}: "
            + ", ".join(f"{c} {n:,}" for c, n in per_class.items())
            + ".",
            _skipped_line(int(info.get("photos_skipped") or 0)),
            f"{held_out:,} photos ({float(info.get('held_out_share') or 0):.0%}) held back to score it"
            + (
                f", kept apart by person ({int(info.get('groups') or 0):,} people)."
                if info.get("group_pattern")
                else "."
            ),
            "How: the base model's way of seeing faces is kept as it is; a new last step, which turns what it "
            "sees into an emotion, is learnt from these photos.",
        ]
        if manifest.get("created"):
            lines.append(f"Adapted on {str(manifest['created'])[:10]}.")
        st.markdown("\n".join(f"- {line}" for line in lines))
    st.info(NOT_FER2013, icon=":material/info:")
    st.info(cache.ADAPTED_NO_SALIENCY, icon=":material/visibility_off:")
    with st.expander(DETAILS):
        sha = str(manifest.get("sha256") or "")
        details = [
            f"Version id: `{model_card.model_version(manifest)}`",
            f"Model file: `{manifest.get('file') or Path(model).name}`" + (f", sha256 `{sha[:16]}…`" if sha else ""),
            f"Adapted from `{base.get('file')}` (version `{base.get('version')}`, sha256 "
            f"`{str(base.get('sha256') or '')[:16]}…`)",
            f"Method: {info.get('method') or 'not recorded'}",
            f"Regularisation C = {info.get('C')} (C = {info.get('C_held_out_fit')} for the scored fit); seed "
            f"{info.get('seed')}; face crops: {bool(info.get('crops'))}; person id pattern: "
            f"`{info.get('group_pattern') or 'none (each photo on its own)'}`",
            f"Macro-F1 on the held-back photos: {before.get('macro_f1', 0):.3f} before, {after.get('macro_f1', 0):.3f} "
            f"after; fitted in {info.get('seconds', '?')} s",
            model_card.MACRO_F1_DEFINITION,
        ]
        st.markdown("\n".join(f"- {line}" for line in details))
        st.markdown("**The model's manifest (raw JSON)**")
        st.json(manifest, expanded=False)


# --- the sidebar ----------------------------------------------------------------------------


def sidebar_model() -> str | None:
    """The sidebar's model selector (shown once an adapted model exists); returns the adapted model
    chosen for Emotion Detection, or None for the deployed one."""
    choices = cache.detection_choices()
    if len(choices) > 1:
        if st.session_state.get(cache.MODEL_CHOICE) not in choices:
            st.session_state[cache.MODEL_CHOICE] = choices[0]  # first visit, or the chosen file is gone
        st.selectbox(
            "Model for Emotion Detection",
            choices,
            key=cache.MODEL_CHOICE,
            format_func=detection_label,
            help="The model that reads the faces in Emotion Detection; saved results record its version.",
        )
    return cache.chosen_model()


def sidebar_adapted(model: str) -> None:
    """The chosen adapted model's version and held-back accuracy, in the sidebar."""
    manifest = cache.model_manifest_of(model) or {}
    info = manifest.get("adaptation") or {}
    before, after = (info.get("before") or {}).get("accuracy"), (info.get("after") or {}).get("accuracy")
    st.markdown(
        f"**Version** {adapted_name(model)}",
        help=f"Version id: {model_card.model_version(manifest)}; adapted from {base_name(manifest)}",
    )
    st.metric(
        "Accuracy on your held-back photos",
        _pct(after),
        _points(before, after),
        help=f"Before adapting: {_pct(before)}, on {int(info.get('held_out_faces') or 0)} photos.",
    )
    st.caption(
        f"Emotion Detection reads faces with this model; it knows {', '.join(manifest.get('class_names') or [])}."
    )
