"""Execute the three CRISP-DM notebooks end to end on a tiny generated FER2013 CSV.

The kernel is the interpreter running the tests (jupyter_client maps the
``python3`` kernel spec's ``python`` to ``sys.executable``), and it inherits the
environment: ``FER_DATA`` / ``FER_NB_OUTPUT`` point at temporary folders and
conftest has already redirected runs/ and outputs/, so nothing in the repository
is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from conftest import make_fer_frame  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "jupyter_notebooks"
NOTEBOOKS = ("01_data_collection.ipynb", "02_data_visualization.ipynb", "03_modelling_evaluation.ipynb")
HEADINGS = ("## Objectives", "## Inputs", "## Outputs")


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    """7 classes x 10 rows in each split, random pixels, columns emotion,pixels,Usage."""
    root = tmp_path_factory.mktemp("nb_data")
    make_fer_frame({"Training": 10, "PublicTest": 10, "PrivateTest": 10}, seed=3).to_csv(
        root / "fer2013.csv", index=False
    )
    return root / "fer2013.csv"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_documented_and_clean(name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert all(heading in first.source for heading in HEADINGS)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "commit notebooks without outputs"
            assert "streamlit" not in cell.source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tiny_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("FER_DATA", str(tiny_csv))
    monkeypatch.setenv("FER_NB_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("FER_NB_PROFILE", "smoke")
    # The kernel is another process: make it import this checkout's `src`, as the tests do,
    # even when the environment's editable install points at another checkout.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(NOTEBOOK_DIR.parent), os.environ.get("PYTHONPATH")]))
    )
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    assert (tmp_path / "out").is_dir()
    if name.startswith("03"):
        report = tmp_path / "out" / "report"
        for produced in ("metrics.json", "baseline.json", "model_comparison.csv"):
            assert (report / produced).exists(), produced
