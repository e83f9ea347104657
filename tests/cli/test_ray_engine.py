"""``predict --engine ray`` on a real local Ray instance gives the local engine's output, row for row.

Ray starts once for the module (``ray_session``); the CLI runs in this process on that
session, and once in a child process that joins it by ``--address``, as a client of a
cluster would. ``-m "not ray"`` leaves those tests out.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src import config
from src.cli import main

ROOT = Path(__file__).resolve().parents[2]
# Ray Data copies its context attribute by attribute, tripping its own deprecation warnings.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

# The child Python finds `ray` missing, as in an install without the ray extra.
WITHOUT_RAY = """
import importlib.abc, sys
class NoRay(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "ray":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, NoRay())
from src import config
from src.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Real photos with faces (the astronaut, mirrored, the cameraman), one without a face,
    a truncated JPEG, one nested in a sub-folder, names Ray Data cannot take as paths (not
    UTF-8, a tab), and two entries the folder walk skips."""
    from skimage import data as skdata

    root = tmp_path_factory.mktemp("ray_photos")
    astronaut = skdata.astronaut()
    Image.fromarray(astronaut).save(root / "astronaut.jpg", quality=92)
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(root / "mirrored #1 é.png")
    Image.fromarray(skdata.camera()).save(root / "cameraman.png")
    Image.fromarray(skdata.coffee()).save(root / "coffee.jpg")
    (root / "corrupt.jpg").write_bytes((root / "astronaut.jpg").read_bytes()[:4000])
    (root / "sub").mkdir()
    Image.fromarray(astronaut).resize((256, 256)).save(root / "sub" / "small.JPG")
    Image.fromarray(skdata.chelsea()).save(os.fsencode(root) + b"/caf\xe9.jpg")
    Image.fromarray(astronaut).resize((200, 200)).save(root / "tab\there.png")  # Ray Data would drop the tab
    (root / "notes.txt").write_text("not a photo")
    Image.fromarray(astronaut).save(root / ".hidden.jpg")
    return root


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance on 2 CPUs for the module; yields its address for other drivers."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    import ray

    from src.cli import ray_engine

    assert ray_engine.connect(num_cpus=2)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray_engine.shutdown()


def _inputs(photos: Path) -> list[str]:
    # The folder, a missing file, and a photo named a second time: every kind of input.
    return [str(photos), str(photos / "missing.jpg"), str(photos / "coffee.jpg")]


def _predict(args: list[str], capsys) -> str:
    assert main(["predict", *args]) == 1  # missing.jpg could not be read: exit 1, the rest written
    return capsys.readouterr().err


@pytest.mark.ray
def test_ray_csv_equals_local_csv(photos, trained_model, ray_session, tmp_path, capsys, monkeypatch):
    from src.analytics.store import open_store

    url = f"sqlite:///{(tmp_path / 'runs.db').as_posix()}"
    monkeypatch.setattr(config, "DATABASE_URL", url)
    common = [*_inputs(photos), "--model", str(trained_model)]
    local_err = _predict([*common, "--output", str(tmp_path / "local.csv")], capsys)
    ray_err = _predict([*common, "--output", str(tmp_path / "ray.csv"), "--engine", "ray", "--store"], capsys)

    local = (tmp_path / "local.csv").read_text()
    assert (tmp_path / "ray.csv").read_text() == local
    rows = list(csv.DictReader(io.StringIO(local)))
    # --store saves what was written: both engines feed the one row path.
    store = open_store(url)
    try:
        stored = store.results()
    finally:
        store.close()
    assert stored["status"].tolist() == [r["status"] for r in rows]
    assert stored["emotion"].fillna("").tolist() == [r["emotion"] for r in rows]
    ray_err = "\n".join(line for line in ray_err.splitlines() if not line.startswith("stored run ")) + "\n"
    by_file = {}
    for row in rows:
        by_file.setdefault(os.path.relpath(row["file"], photos), []).append(row)
    assert [r["status"] for r in by_file["astronaut.jpg"]] == ["ok"]
    assert by_file["sub/small.JPG"][0]["status"] == "ok"
    assert by_file["coffee.jpg"][0]["status"] == "no_face" and len(by_file["coffee.jpg"]) == 2
    assert by_file["corrupt.jpg"][0]["status"] == "error"
    assert by_file["corrupt.jpg"][0]["error"].startswith("corrupt image")
    assert by_file["missing.jpg"][0]["error"] == "file not found"
    assert by_file["caf\\xe9.jpg"][0]["status"] == "no_face"  # read by the driver, classified by the workers
    assert by_file["tab\there.png"][0]["status"] == "ok"

    # The same skipped entries and summary on stderr, apart from where the output went.
    assert ray_err.replace("ray.", "X.") == local_err.replace("local.", "X.")
    assert f"skipped {photos / '.hidden.jpg'}: hidden file" in ray_err
    assert f"skipped {photos / 'notes.txt'}: not an image or video file (.txt)" in ray_err
    assert "10 images: " in ray_err and "2 errors, 2 skipped" in ray_err


@pytest.mark.ray
def test_ray_jsonl_from_a_client_by_address_equals_local(photos, trained_model, ray_session, tmp_path, capsys):
    """A second driver joins the running instance by --address, as a client joins a cluster:
    the workers get `src` and the model from the job, not from this process."""
    common = [*_inputs(photos), "--model", str(trained_model), "--format", "jsonl", "--fast"]
    _predict([*common, "--output", str(tmp_path / "local.jsonl")], capsys)
    proc = subprocess.run(
        [sys.executable, "-m", "src.cli", "predict", *common, "--engine", "ray", "--address", ray_session],
        cwd=tmp_path,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    local = (tmp_path / "local.jsonl").read_text()
    assert proc.stdout == local
    records = [json.loads(line) for line in local.splitlines()]
    assert len(records) == len(proc.stdout.splitlines()) >= 10
    assert {"ok", "no_face", "error"} <= {r["status"] for r in records}


def test_without_ray_the_message_names_the_extra(photos, trained_model):
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_RAY, "predict", str(photos), "--model", str(trained_model), "--engine", "ray"],
        cwd=ROOT,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: the Ray engine needs Ray Data, which this install leaves out: pip install -e '.[ray]'"
    ]
