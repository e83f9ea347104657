"""Shared fixtures: tiny synthetic FER2013 datasets and a tiny model trained on one.

Nothing here depends on the bundled model or the real dataset, so the suite runs
anywhere in a few minutes. Training runs, caches and outputs go to temporary
folders, never to the repository's runs/ or outputs/.
"""

from __future__ import annotations

import os
from pathlib import Path

# Tiny models gain nothing from many threads, and the suite must share the CPU politely.
for _var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# As in streamlit_app.py: streamlit-webrtc (aiortc -> pylibsrtp) loaded after TensorFlow
# segfaults the process, so a run that collects a training test before an app test (any
# selection or order of files) would die. Loading it first makes every order safe.
import streamlit_webrtc  # noqa: E402, F401  isort: skip

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from db_servers import mariadb_server, postgres_server  # noqa: E402, F401  (real servers for the store tests)
from PIL import Image  # noqa: E402

from src import config  # noqa: E402

FERPLUS_COLUMNS = [
    "Usage",
    "Image name",
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
]
SPLIT_SIZES = {"Training": 12, "PublicTest": 4, "PrivateTest": 4}  # rows per class


def make_fer_frame(per_class: dict[str, int] = SPLIT_SIZES, seed: int = 0) -> pd.DataFrame:
    """A FER2013-layout frame: every class in every split, random 48x48 pixels."""
    rng = np.random.default_rng(seed)
    rows = []
    for usage, n in per_class.items():
        for label in range(len(config.EMOTIONS)):
            for _ in range(n):
                pixels = rng.integers(0, 256, config.IMAGE_SIZE**2)
                rows.append({"emotion": label, "pixels": " ".join(map(str, pixels)), "Usage": usage})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def make_ferplus_frame(fer: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """FER+ votes aligned with ``fer``: mostly a 6-of-10 majority for the FER2013 label,
    every 5th row a 4/4/2 split (no strict majority), every 7th row dropped by FER+."""
    rng = np.random.default_rng(seed)
    to_plus = {v: k for k, v in config.FERPLUS_TO_EMOTION.items()}
    rows = []
    for i, (label, usage) in enumerate(zip(fer["emotion"], fer["Usage"])):
        row = {c: 0 for c in FERPLUS_COLUMNS}
        row.update({"Usage": usage, "Image name": f"fer{i:07d}.png"})
        own = to_plus[config.EMOTIONS[label]]
        other = to_plus[config.EMOTIONS[(label + 1 + rng.integers(0, 6)) % 7]]
        if i % 7 == 3:
            row.update({"Image name": None, "NF": 10})
        elif i % 5 == 1:
            row.update({own: 4, other: 4, "unknown": 2})
        else:
            row.update({own: 6, other: 4})
        rows.append(row)
    return pd.DataFrame(rows, columns=FERPLUS_COLUMNS)


def pytest_configure(config):
    # Keras' TensorFlow backend trips a NumPy 2 deprecation inside its own code; not ours to fix.
    config.addinivalue_line(
        "filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    )


@pytest.fixture(scope="session")
def fer_dir(tmp_path_factory) -> Path:
    """A folder holding fer2013.csv and its aligned fer2013new.csv."""
    root = tmp_path_factory.mktemp("fer")
    frame = make_fer_frame()
    frame.to_csv(root / "fer2013.csv", index=False)
    make_ferplus_frame(frame).to_csv(root / "fer2013new.csv", index=False)
    return root


@pytest.fixture(scope="session")
def fer_csv(fer_dir) -> Path:
    return fer_dir / "fer2013.csv"


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """train/<Class>/ (mixed-case names) and test/<class>/, no validation folder.

    Holds a stray text file and an unknown class folder the loader must skip.
    """
    root = tmp_path_factory.mktemp("folders")
    rng = np.random.default_rng(1)
    for split, n in (("train", 10), ("test", 3)):
        for k, name in enumerate(config.EMOTIONS):
            folder_name = name.capitalize() if (split == "train" and k % 2 == 0) else name
            if split == "train" and k == 3:
                folder_name = name.upper()
            folder = root / split / folder_name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (48, 48), dtype=np.uint8)
                ext = ".png" if i % 2 else ".jpg"
                Image.fromarray(pixels).save(folder / f"{i}{ext}")
    (root / "train" / "HAPPY" / "readme.txt").write_text("not a face")
    (root / "train" / "contempt").mkdir()
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(root / "train" / "contempt" / "0.png")
    return root


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory):
    """Point runs/ (training runs, dataset caches), outputs/ and the results database at temporary folders."""
    mp = pytest.MonkeyPatch()
    runs = tmp_path_factory.mktemp("runs")
    outputs = tmp_path_factory.mktemp("outputs")
    mp.setattr(config, "RUNS_DIR", runs)
    mp.setattr(config, "OUTPUTS_DIR", outputs)
    mp.setenv("FER_RUNS_DIR", str(runs))
    mp.setenv("FER_OUTPUTS_DIR", str(outputs))
    mp.setattr(config, "OUTPUT_VERSION", "")  # automatic, whatever the shell's FER_OUTPUT_VERSION
    mp.delenv("FER_OUTPUT_VERSION", raising=False)
    # The results store (src/analytics/store/) too: tests never write to the repository's outputs/results.db.
    database_url = f"sqlite:///{(outputs / 'results.db').as_posix()}"
    mp.setattr(config, "DATABASE_URL", database_url)
    mp.setenv("FER_DATABASE_URL", database_url)
    mp.setattr(config, "RETENTION_DAYS", 0)
    mp.delenv("FER_RETENTION_DAYS", raising=False)
    yield {"runs": runs, "outputs": outputs}
    mp.undo()


@pytest.fixture(scope="session")
def trained_model(fer_csv, isolated_dirs, tmp_path_factory) -> Path:
    """A tiny model trained with the smoke profile on the synthetic CSV and published
    to a temporary models folder; returns the .keras path."""
    from src.training.train import publish, train

    run_dir = train(str(fer_csv), "smoke", run_dir=isolated_dirs["runs"] / "smoke")
    models = tmp_path_factory.mktemp("models")
    return publish(run_dir, models / "fer_cnn.keras", version="test-smoke")


@pytest.fixture
def model_copy(trained_model, tmp_path) -> Path:
    """A private copy of the tiny model (tests that rewrite its manifest use this)."""
    import shutil

    from src.engine.manifest import manifest_path

    dest = tmp_path / "model" / trained_model.name
    dest.parent.mkdir()
    shutil.copy2(trained_model, dest)
    shutil.copy2(manifest_path(trained_model), manifest_path(dest))
    return dest


@pytest.fixture(scope="session")
def expw_dir(tmp_path_factory) -> Path:
    """An ExpW-style folder: 14 photos (the astronaut, shifted, mirrored and dimmed), labels.csv.

    Two faces share each source photo, so a split by source photo keeps pairs together.
    """
    from skimage import data

    root = tmp_path_factory.mktemp("expw")
    (root / "faces").mkdir()
    photo = data.astronaut()
    rows = []
    for i in range(14):
        dx = (i % 5) * 6
        crop = photo[0 + dx : 240 + dx, 100:340]
        if i % 2:
            crop = crop[:, ::-1]
        crop = (crop * (0.6 + 0.03 * i)).astype(np.uint8)
        name = f"{config.EMOTIONS[i % 7]}_photo_{i // 2}_{i % 2}.jpg"
        Image.fromarray(np.ascontiguousarray(crop)).save(root / "faces" / name, quality=90)
        rows.append(
            {
                "file": name,
                "source_image": f"photo_{i // 2}.jpg",
                "face_id": i % 2,
                "x": 80,
                "y": 60 - dx,
                "w": 90,
                "h": 110,
                "detector_conf": 50.0,
                "emotion": config.EMOTIONS[i % 7],
            }
        )
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


# AppTest (tests/app): st.navigation mode kept from run to run, and no browser session for
# streamlit-webrtc. Here rather than in tests/app/conftest.py, whose module name would shadow
# this one's for `from conftest import ...`.
@pytest.fixture
def navigation_mode(monkeypatch):
    """Keep AppTest in st.navigation mode from run to run.

    AppTest re-detects the legacy ``pages/`` mode before every run, where a real server
    does it once per process; each run would then go through ``ensure_navigation``'s
    rerun, which drops one-shot widget values such as a button click. The real-server
    path is covered by test_browser.py::test_deep_link_as_first_request_gets_the_full_app.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture
def no_webrtc_session(monkeypatch):
    """AppTest has no browser session for streamlit-webrtc to attach to."""
    import streamlit_webrtc.component as component

    monkeypatch.setattr(component, "get_this_session_info", lambda: None)
