"""Layering of src/: which modules may import Streamlit, and which must load without TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STREAMLIT_MODULES = {"app_cache.py", "webrtc_fix.py"}  # the dashboard's adapters; everything else is UI-free
KERAS_FREE = (
    "src.analytics",
    "src.reports",
    "src.model_card",
    "src.manifest",
    "src.outputs",
    # The serving path: the model runs through ONNX Runtime (src/runtime.py).
    "src.runtime",
    "src.inference",
    "src.live",
    "src.video",
    "src.cli",
    "src.ray_engine",
    "src.api",
    "src.store",
    # The dashboard's side of the results store.
    "src.trends",
    "src.persist",
)


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, anywhere in the file (deferred imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_adapters_import_streamlit():
    sources = sorted((ROOT / "src").glob("*.py"))
    assert {p.name for p in sources} >= STREAMLIT_MODULES | {"live.py", "analytics.py"}
    importers = {p.name for p in sources if any(m.startswith("streamlit") for m in imported_modules(p))}
    assert importers == STREAMLIT_MODULES


def test_the_scan_sees_deferred_and_aliased_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import streamlit.runtime as rt\n    from streamlit_webrtc import x\n")
    assert imported_modules(sample) == {"streamlit", "streamlit_webrtc"}


@pytest.mark.parametrize("module", KERAS_FREE)
def test_module_loads_without_tensorflow_or_keras(module):
    code = (
        f"import {module}, sys; "
        "loaded = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules); "
        "assert not loaded, loaded"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
