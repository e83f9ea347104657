"""Streamlit caching around the loaders: the one src module that imports streamlit.

The recognizer (model + face detector) and the dataset are ``st.cache_resource``:
loaded once per server process and shared by every session. Report files are
``st.cache_data`` keyed on their path and modification time, so a re-evaluation
shows up on the next rerun without a restart. TensorFlow is imported lazily, on
the first call that needs the model, so summary pages open fast.

The sidebar's *Model* selector (``MODEL_CHOICE`` in the session) picks the model the
Emotion Detection tabs read faces with: the deployed one or a model adapted to the
customer's faces (``chosen_model``). ``load_recognizer(model)`` loads either; the photo
analysis and the saliency maps follow the choice, so they agree with that recognizer.

The saved results are read as tallies summed in the database (``tallies``: people or samples
per hour, campaign, location, source and label), cached on their filters and the store's
version (``store_version``), so the same filters again are instant and new runs show up; so are
the run counts and lists (``run_count``, ``recent_runs``, ``run_census``). The sample table is
read a page at a time and the downloads in chunks. The deployed model's error
model (``error_model``) is read once per file version; the corrected shares and campaign tests
computed with it (``corrected_shares``, ``campaign_test``) are cached on their people counts.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from src import config
from src.app import reports
from src.engine.manifest import manifest_path, read_manifest
from src.training import outputs


def ensure_navigation() -> None:
    """Run the page through ``streamlit_app.py`` even when it was reached by a deep link.

    Streamlit treats an app with a ``pages/`` folder as a legacy multipage app until
    ``st.navigation`` has run once in the process, so a first visit straight to
    /emotion_detection would run the page alone: no page config, no sidebar. Both
    modes give a page the same hash (from its URL path), so switching the flag off and
    rerunning lands on the same page, this time through the navigation script.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def _stamp(path: Path) -> int:
    """Modification time used as a cache key (0 when the file is missing)."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def model_key(model: str | Path | None = None) -> str:
    """Identifies a model file (None: the deployed one); changes when the file is replaced."""
    path = Path(model) if model else config.MODEL_FILE
    return f"{path}:{_stamp(path)}"


MODEL_CHOICE = "model_choice"  # session key of the sidebar's Model selector


def _other_model(model: str | Path | None) -> str | None:
    """``model`` as a path string, or None when it is the deployed model (or not given)."""
    if not model or Path(model).resolve() == Path(config.MODEL_FILE).resolve():
        return None
    return str(model)


def detection_choices() -> list[str]:
    """Models the sidebar offers for Emotion Detection: the deployed one first, then the adapted ones."""
    deployed = [str(config.MODEL_FILE)] if config.MODEL_FILE.is_file() else []
    return deployed + [str(p) for p in outputs.adapted_model_files() if _other_model(p)]


def chosen_model() -> str | None:
    """The model picked in the sidebar for Emotion Detection; None is the deployed model.

    A choice whose file has gone (deleted since) falls back to the deployed model.
    """
    picked = _other_model(st.session_state.get(MODEL_CHOICE))
    if picked is None or not Path(picked).is_file():
        return None
    return picked


# --- model -------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the emotion model…", max_entries=1)
def _recognizer(key: str):
    from src.engine import inference

    # The process-wide instance is shared with the live camera; a new key means the
    # model file changed on disk, so the process-wide cache must forget the old one.
    inference._recognizer.cache_clear()
    return inference.get_recognizer(config.MODEL_FILE)


@st.cache_resource(show_spinner="Loading the chosen model…", max_entries=4)
def _other_recognizer(key: str, model: str):
    from src.engine.inference import EmotionRecognizer

    # Its own instance, not the process-wide one: ``_recognizer`` clears that cache when the
    # deployed model changes, and an adapted model must not be dropped with it.
    return EmotionRecognizer(model)


def _recognizer_of(key: str, model: str | None):
    """The cached recognizer of ``model`` (None: the deployed one), ``key`` being its ``model_key``."""
    return _recognizer(key) if model is None else _other_recognizer(key, model)


def load_recognizer(model: str | Path | None = None) -> tuple[Any | None, str | None]:
    """The shared recognizer of ``model`` (None: the deployed one, e.g. ``chosen_model()``),
    or None and a message a user can act on."""
    other = _other_model(model)
    if other is None and not config.MODEL_FILE.exists():
        return None, (
            f"No model found at `{config.MODEL_FILE.name}`. Train one "
            "(`python -m src.training.train`) or set FER_MODEL to a .keras file."
        )
    if other is not None and not Path(other).is_file():
        return None, f"The model `{Path(other).name}` is no longer in the models folder: pick another in the sidebar."
    try:
        return _recognizer_of(model_key(other), other), None
    except Exception as exc:  # a broken model file must not take the page down
        return None, f"The model could not be loaded: {type(exc).__name__}: {exc}"


@st.cache_resource(show_spinner="Preparing saliency maps…", max_entries=1)
def _gradcam(key: str):
    from src.engine.explain import GradCam
    from src.engine.model import load_model

    # Gradients need the Keras model itself, whatever runtime serves the predictions.
    model, _ = load_model(config.MODEL_FILE)
    return GradCam(model)


ADAPTED_NO_SALIENCY = (
    "Saliency maps are not available for adapted models: they need the Keras model, and an adapted "
    "model is an ONNX file. Pick the deployed model in the sidebar to see them."
)


def saliency_unavailable() -> str | None:
    """Why Grad-CAM cannot run on the model chosen in the sidebar (an adapted model, or no TensorFlow), or None."""
    from src.engine.runtime import TRAINING_EXTRA, keras_available

    if chosen_model() is not None:
        return ADAPTED_NO_SALIENCY
    if keras_available():
        return None
    return f"Saliency maps need TensorFlow, which this serving install leaves out (`{TRAINING_EXTRA}` adds it)."


def saliency_photo(rgb: np.ndarray, faces) -> np.ndarray:
    """The photo with a Grad-CAM overlay on every face (model loaded once, shared).

    With an adapted model chosen the photo comes back as it is: its faces were not read by
    the Keras model that Grad-CAM explains (``saliency_unavailable`` says so)."""
    from src.engine.explain import explain_photo

    if chosen_model() is not None:
        return rgb
    key = model_key()
    return explain_photo(_gradcam(key), rgb, faces, _recognizer(key).size)


_FROZEN = False


def freeze_startup_objects() -> None:
    """Once per process: move what the imports made (Streamlit, pandas, plotly, ONNX Runtime)
    out of the garbage collector's sight (``gc.freeze``).

    Those objects live as long as the server. Left in the collector's oldest generation, each
    full collection walks them all again: a filter change then paused 0.13-0.17 s about one
    rerun in four. Called from every run of the entry script, it freezes only the first time."""
    global _FROZEN
    if not _FROZEN:
        gc.freeze()
        _FROZEN = True


@st.cache_data(show_spinner=False, max_entries=512)
def analyze_photo(data: bytes, name: str, key: str, _rgb: np.ndarray, model: str | None = None):
    """One uploaded photo's ``ImageResult``; cached so widget changes don't re-run the model.

    Keyed on the upload's bytes; ``_rgb`` (not hashed) is those bytes already decoded.
    ``key`` is ``model_key(model)``: a new model invalidates the cached results. ``model``
    None is the deployed model.
    """
    recognizer = _recognizer_of(key, model)
    return recognizer.analyze(_rgb, name=name)


def analyze_upload(data: bytes, name: str) -> tuple[Any, np.ndarray | None]:
    """An uploaded photo decoded once, for both the analysis and the picture shown.

    Returns its result (``ImageResult``, or ``analytics.FailedFile`` when it cannot be
    decoded) and its pixels (None on failure). Read by the model chosen in the sidebar
    (``chosen_model``), as the Emotion Detection tabs' recognizer is.
    """
    from src.engine.preprocessing import ImageError, load_image
    from src.engine.results import FailedFile

    try:
        rgb = load_image(data)
    except ImageError as exc:
        return FailedFile(name, str(exc)), None
    model = chosen_model()
    return analyze_photo(data, name, model_key(model), rgb, model), rgb


def apply_upload_limit() -> None:
    """Make ``FER_MAX_UPLOAD_MB`` the server's upload limit (uploaders get it as ``max_upload_size``).

    Streamlit's upload endpoint checks ``server.maxUploadSize`` on every request, and
    ``st.set_option`` refuses server options, so the value goes in through Streamlit's
    config module, as ``--server.maxUploadSize`` would.
    """
    from streamlit import config as st_config

    if st_config.get_option("server.maxUploadSize") != config.MAX_UPLOAD_MB:
        st_config.set_option("server.maxUploadSize", config.MAX_UPLOAD_MB, "FER_MAX_UPLOAD_MB (src/config.py)")


@st.cache_data(show_spinner=False)
def manifest(stamp: int = 0) -> dict | None:
    return read_manifest(config.MODEL_FILE, strict=False)


def model_manifest() -> dict | None:
    """The deployed model's manifest (no TensorFlow needed)."""
    return manifest(_stamp(manifest_path(config.MODEL_FILE)))


# --- reports -----------------------------------------------------------------

_REPORT_FILES: dict[str, tuple[str, Callable[..., Any]]] = {
    "metrics": ("metrics.json", reports.load_metrics),
    "roc": ("roc.json", reports.load_roc),
    "history": ("history.csv", reports.load_history),
    "cross_dataset": ("cross_dataset.json", reports.load_cross_dataset),
    "dataset_stats": ("dataset_stats.json", reports.load_dataset_stats),
    "model_comparison": ("model_comparison.csv", reports.load_model_comparison),
    "benchmark": ("benchmark.json", reports.load_benchmark),
}
_PER_MODEL = {"metrics", "roc", "history", "cross_dataset"}


@st.cache_data(show_spinner=False, max_entries=64)
def _report(kind: str, folder: str, stamp: int, model: str | None) -> Any:
    # ``folder`` and ``stamp`` are only cache keys: the loaders resolve the folder themselves.
    loader = _REPORT_FILES[kind][1]
    return loader(model=model) if kind in _PER_MODEL else loader()


def report(kind: str, model: str | None = None) -> Any:
    """A report from ``outputs/<version>/`` (dict or DataFrame), None when not produced yet.

    ``model`` (a model file) picks that model's reports; None is the deployed model's.
    """
    model = model if kind in _PER_MODEL else None
    folder = reports.folder(model=model)
    return _report(kind, str(folder), _stamp(folder / _REPORT_FILES[kind][0]), model)


def metrics(model: str | None = None) -> dict | None:
    return report("metrics", model)


def roc(model: str | None = None) -> dict | None:
    return report("roc", model)


def history(model: str | None = None) -> pd.DataFrame | None:
    return report("history", model)


def cross_dataset(model: str | None = None) -> dict | None:
    return report("cross_dataset", model)


def model_comparison() -> pd.DataFrame | None:
    return report("model_comparison")


def benchmark() -> dict | None:
    return report("benchmark")


def model_choices() -> list[str]:
    """Model files the Model Performance page can show: the deployed one first."""
    return [str(p) for p in outputs.model_files()]


def model_manifest_of(model: str | None) -> dict | None:
    """The manifest of ``model`` (None: the deployed model)."""
    if model is None:
        return model_manifest()
    return read_manifest(model, strict=False)


def saved_dataset_stats() -> dict | None:
    """dataset_stats.json only (never loads the dataset: for quick pages such as the summary)."""
    return report("dataset_stats")


def report_folder() -> str:
    """Name of the outputs version the pages show (for captions)."""
    return outputs.read_dir().name


def report_location(model: str | None = None) -> str:
    """Where ``model``'s reports are read from, relative to the checkout when inside it (for the details)."""
    path = reports.folder(model=model)
    try:
        return path.resolve().relative_to(config.ROOT).as_posix()
    except ValueError:
        return str(path)


# --- dataset -----------------------------------------------------------------


def dataset_source() -> str | None:
    """The FER2013 copy the app would read, or None when there is none."""
    from src.training.data import DatasetError, resolve_dataset_path

    try:
        path = resolve_dataset_path()
    except DatasetError:
        return None
    return str(path.resolve()) if path.exists() else None


@st.cache_resource(show_spinner="Loading FER2013…", max_entries=1)
def _dataset(source: str):
    from src.training.data import load_cached

    return load_cached(source)


def load_dataset() -> tuple[Any | None, str | None]:
    """The dataset (``FerData``) or None, with a message when a present copy cannot be read."""
    source = dataset_source()
    if source is None:
        return None, None
    try:
        return _dataset(source), None
    except Exception as exc:  # a corrupt copy degrades to the saved statistics
        return None, f"The dataset at `{Path(source).name}` could not be read: {exc}"


@st.cache_data(show_spinner="Computing dataset statistics…", max_entries=2)
def _stats_from_data(source: str) -> dict:
    from src.training.evaluation import dataset_stats

    return dataset_stats(_dataset(source))


def dataset_stats() -> tuple[dict | None, str]:
    """Dataset statistics and where they came from: "outputs", "dataset" or "" when unavailable.

    The saved ``dataset_stats.json`` is preferred (instant); without it they are
    computed from the dataset when one is present.
    """
    saved = report("dataset_stats")
    if saved:
        return saved, "outputs"
    data, _ = load_dataset()
    if data is not None:
        return _stats_from_data(dataset_source() or ""), "dataset"
    return None, ""


@st.cache_data(show_spinner=False, max_entries=2)
def _mean_faces_from_data(source: str) -> np.ndarray:
    from src.training.evaluation import mean_faces_image

    return np.asarray(mean_faces_image(_dataset(source)))


def mean_faces() -> np.ndarray | str | None:
    """The class mean faces strip: the saved PNG's path, else computed from the dataset, else None."""
    path = reports.mean_faces_path()
    if path is not None:
        return str(path)
    data, _ = load_dataset()
    if data is not None:
        return _mean_faces_from_data(dataset_source() or "")
    return None


@st.cache_data(show_spinner=False, max_entries=8)
def sample_grid(source: str, per_class: int, seed: int) -> np.ndarray:
    from src.app.dataset_view import sample_grid as grid

    return grid(_dataset(source), per_class=per_class, seed=seed)


# --- results store -------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=4)
def _store(url: str):
    from src.analytics import alerts
    from src.analytics.persist import alert_recorder
    from src.analytics.store import open_store

    store = open_store(url)
    if url == config.DATABASE_URL:
        # Live alerts sent to FER_ALERT_WEBHOOK are recorded with their outcome.
        alerts.set_result_callback(alert_recorder(store))
    return store


def results_store() -> tuple[Any | None, str | None]:
    """The results store of ``FER_DATABASE_URL`` (one per URL and process), or None and the reason.

    Opening runs the migrations and the retention clean-up, once. A failure is not
    cached: the next run tries again (a database server may come back). The message
    never holds the URL, which may carry a password.
    """
    from src.analytics.persist import failure

    try:
        return _store(config.DATABASE_URL), None
    except Exception as exc:  # a store that cannot open must not take the page down
        return None, failure(exc)


def store_version(store) -> str:
    """The store's cache key (``Store.version``): moves with every run added, grown, finished or
    deleted, and every few seconds while one is being written."""
    return store.version()


@st.cache_data(show_spinner=False, max_entries=8)
def _has_runs(url: str, version: str) -> bool:
    return not _store(url).runs(limit=1).empty


def has_runs(version: str) -> bool:
    """Whether the ``FER_DATABASE_URL`` store holds any run (of any status), cached on its version."""
    return _has_runs(config.DATABASE_URL, version)


def _hashable(filters: dict) -> tuple:
    """Store keyword arguments as a cache key (lists as tuples)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in filters.items()))


@st.cache_data(show_spinner=False, max_entries=64)
def _run_count(url: str, version: str, filters: tuple) -> int:
    return int(_store(url).run_totals(**dict(filters), include_running=True)["runs"].sum())


def run_count(version: str, filters: dict) -> int:
    """How many runs the views count (finished, or being written) match ``filters``
    (``trends.store_filters``; the dates are the runs' start), summed in the database and
    cached on the filters and the store's version."""
    return _run_count(config.DATABASE_URL, version, _hashable(filters))


@st.cache_data(show_spinner=False, max_entries=16)
def _recent_runs(url: str, version: str, filters: tuple, limit: int) -> pd.DataFrame:
    return _store(url).runs(**dict(filters), limit=limit)


def recent_runs(version: str, limit: int, **filters) -> pd.DataFrame:
    """``Store.runs(**filters, limit=limit)``: runs of every status, newest first, cached on the
    filters and the store's version (a deletion moves it)."""
    return _recent_runs(config.DATABASE_URL, version, _hashable(filters), limit)


@st.cache_data(show_spinner=False, max_entries=8)
def _run_census(url: str, version: str) -> tuple[int, tuple[str, ...]]:
    from src.app.demo_data import DEMO_MODEL_VERSION, demo_run_ids

    store = _store(url)
    totals = store.run_totals(include_unfinished=True)  # every run, counted per model version
    if not (totals["model_version"] == DEMO_MODEL_VERSION).any():
        return int(totals["runs"].sum()), ()  # no run of the demo's model version: no demo run
    runs = store.runs()
    return len(runs), tuple(demo_run_ids(runs))


def run_census(version: str) -> tuple[int, tuple[str, ...]]:
    """How many runs the store holds (of any status) and the ids of the demo ones among them
    (``demo_data.demo_run_ids``), cached on the store's version. Counted in the database; the runs
    themselves (~0.6 s for 20,000) are read only when some carry the demo's model version."""
    return _run_census(config.DATABASE_URL, version)


# What the views count: finished runs and runs still being written (a live session right now).
_READ = {"include_running": True}

# What the views tell apart: campaigns (KPIs, comparisons) and sources (a photo sees a person once,
# a video or the camera follows them); locations only filter. A view asks for each shape it shows
# apart: days (or hours) alone for a chart over time, campaigns and sources over all time
# (``bucket="all"``) for the comparisons, so the database sums its run-hour tallies into a few
# thousand rows, each shape along one of its indexes.
VIEW_KEYS = ("campaign", "source")


@st.cache_data(show_spinner=False, max_entries=256)
def _tallies(
    url: str,
    version: str,
    unit: str,
    filters: tuple,
    include_uncertain: bool,
    min_confidence,
    bucket: str,
    by: tuple[str, ...] = VIEW_KEYS,
):
    from src.analytics.trends import clean_tallies

    return clean_tallies(
        _store(url).tallies(
            unit,
            **dict(filters),
            **_READ,
            include_uncertain=include_uncertain,
            min_confidence=min_confidence,
            bucket=bucket,
            by=by,
        )
    )


def tallies(
    version: str,
    unit: str,
    filters: dict,
    include_uncertain: bool = True,
    min_confidence: float | None = None,
    bucket: str = "day",
    by: tuple[str, ...] = VIEW_KEYS,
) -> pd.DataFrame:
    """``Store.tallies`` of the ``FER_DATABASE_URL`` store (``filters``: its keyword arguments,
    ``trends.store_filters``) per day (``bucket="hour"``: per hour; ``"all"``: over all time) and
    the run columns ``by`` (campaign and source unless asked), cached on the filters and the
    store's ``version`` (``store_version``): the same filters again are instant, and new runs
    show up."""
    return _tallies(
        config.DATABASE_URL, version, unit, _hashable(filters), include_uncertain, min_confidence, bucket, tuple(by)
    )


def sure_tallies(
    version: str,
    filters: dict,
    thresholds,
    include_uncertain: bool = True,
    bucket: str = "day",
    by: tuple[str, ...] = VIEW_KEYS,
) -> dict[float, pd.DataFrame]:
    """The person tallies of people at least ``t`` sure, for each threshold (groups with a
    ``min_confidence``): one query per distinct threshold, cached as ``tallies``."""
    return {t: tallies(version, "person", filters, include_uncertain, t, bucket, by) for t in thresholds}


@st.cache_data(show_spinner=False, max_entries=8)
def _filter_options(url: str, version: str) -> dict:
    return _store(url).filter_options()


def filter_options(version: str) -> dict:
    """``Store.filter_options()``, cached on the store's version."""
    return _filter_options(config.DATABASE_URL, version)


@st.cache_data(show_spinner=False, max_entries=64)
def _count_results(url: str, version: str, filters: tuple) -> int:
    return _store(url).count_results(**dict(filters), **_READ)


def count_results(version: str, filters: dict) -> int:
    """``Store.count_results`` (sample rows), cached as ``tallies``."""
    return _count_results(config.DATABASE_URL, version, _hashable(filters))


@st.cache_data(show_spinner=False, max_entries=16)
def _page_results(url: str, version: str, filters: tuple, offset: int, limit: int) -> pd.DataFrame:
    return _store(url).page_results(**dict(filters), **_READ, offset=offset, limit=limit)


def page_results(version: str, filters: dict, offset: int, limit: int) -> pd.DataFrame:
    """One page of sample rows, newest first (``Store.page_results``): only that page read, cached
    as ``tallies``."""
    return _page_results(config.DATABASE_URL, version, _hashable(filters), offset, limit)


def iter_results(filters: dict, chunk_rows: int = 50_000):
    """The filtered sample rows in chunks (``Store.iter_results``), for the downloads."""
    return _store(config.DATABASE_URL).iter_results(**filters, **_READ, chunk_rows=chunk_rows)


def iter_people(filters: dict, chunk_rows: int = 50_000):
    """The filtered people in chunks (``Store.iter_people``), for the downloads."""
    return _store(config.DATABASE_URL).iter_people(**filters, **_READ, chunk_rows=chunk_rows)


# --- corrected shares -----------------------------------------------------------


def _error_model_file() -> Path:
    from src.training.error_model import error_model_path

    return error_model_path(config.MODEL_FILE)


@st.cache_resource(show_spinner=False, max_entries=2)
def _error_model(path: str, stamp: int):
    from src.training.error_model import load_error_model

    return load_error_model(path, strict=False)  # None when missing or unreadable (the reason is logged)


def error_model() -> tuple[Any | None, str]:
    """The deployed model's error model (how it mixes up expressions on real photos), or None and
    why not in plain words (lower case, for ``shares.not_corrected``). Re-read when the file changes."""
    path = _error_model_file()
    model = _error_model(str(path), _stamp(path))
    if model is not None:
        return model, ""
    if not path.is_file():
        return None, f"the file that measures them ({path.name}) is missing"
    return None, f"the file that measures them ({path.name}) could not be read"


def error_model_key() -> str:
    """Changes when the error model file does (a cache key for the corrected shares)."""
    path = _error_model_file()
    return f"{path}:{_stamp(path)}"


@st.cache_data(show_spinner=False, max_entries=64)
def _corrected(counts: tuple, buckets: tuple, key: str):
    from src.app import shares

    model, _ = error_model()
    return shares.corrected(dict(counts), model, dict(buckets) if buckets else None)


def corrected_shares(counts, buckets=None) -> tuple[Any | None, str]:
    """``shares.corrected`` of people counts (``{label: n}``) with the deployed model's error model,
    cached on the counts; (None, why) without an error model or when it cannot read these labels."""
    model, reason = error_model()
    if model is None:
        return None, reason
    groups = tuple((name, tuple(members)) for name, members in (buckets or {}).items())
    return _corrected(tuple(sorted(dict(counts).items())), groups, error_model_key())


@st.cache_data(show_spinner=False, max_entries=64)
def _campaign_test(a: tuple, b: tuple, names: tuple, buckets: tuple | None, key: str):
    from src.app import shares

    model, _ = error_model()
    return shares.compare_pair(dict(a), dict(b), names, dict(buckets) if buckets is not None else None, model)


def campaign_test(a, b, names: tuple[str, str], buckets=None):
    """``shares.compare_pair`` of two campaigns' people counts (``{label: n}``) with the deployed
    model's error model (uncorrected gaps without one), cached."""
    groups = None if buckets is None else tuple((name, tuple(members)) for name, members in buckets.items())
    return _campaign_test(
        tuple(sorted(dict(a).items())), tuple(sorted(dict(b).items())), tuple(names), groups, error_model_key()
    )
