"""Layering of src/: which package may import which, no import cycle, Streamlit only in the
app's helpers, and the serving path loads without TensorFlow.

The layers, bottom up (README, "Where things live"):

    config, common  <  engine  <  analytics, training  <  streams  <  app, api  <  cli
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# What each package (or top-level module) may import from src, besides itself.
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "common": {"config"},
    "engine": {"config", "common"},
    "analytics": {"config", "common", "engine"},
    "training": {"config", "common", "engine"},
    "streams": {"config", "common", "engine", "analytics"},
    "app": {"config", "common", "engine", "analytics", "training", "streams"},
    "api": {"config", "common", "engine", "analytics", "training", "streams"},
    "cli": {"config", "common", "engine", "analytics", "training", "streams", "api"},
}
# The dashboard's adapters (cached loaders, the streamlit-webrtc patch, the tabs of a page):
# everything else in src/ is UI-free.
STREAMLIT_PACKAGES = {"src.app"}
STREAMLIT_FREE_IN_APP = {"src.app.plots", "src.app.dataset_view", "src.app.reports", "src.app.uploads"}
KERAS_FREE = (
    "src.analytics.aggregates",
    "src.app.reports",
    "src.training.model_card",
    "src.engine.manifest",
    "src.training.outputs",
    # The serving path: the model runs through ONNX Runtime (src/engine/runtime.py).
    "src.engine.runtime",
    "src.engine.inference",
    "src.streams.live",
    "src.streams.video",
    "src.cli",
    "src.cli.ray_engine",
    "src.api.app",
    "src.analytics.store",
    # The dashboard's side of the results store.
    "src.analytics.trends",
    "src.analytics.persist",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (deferred imports too), as dotted names;
    ``from pkg import mod`` counts as ``pkg.mod`` when that is a module."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in MODULES else node.module)
    return names


def layer(module: str) -> str:
    """``src.engine.faces`` -> ``engine``; ``src.config`` -> ``config``."""
    return module.split(".")[1]


def src_imports(module: str) -> set[str]:
    return {m for m in imports(MODULES[module]) if m in MODULES and m != module}


def test_every_module_sits_in_a_known_layer():
    assert {layer(m) for m in MODULES if m != "src"} == set(ALLOWED)
    assert "import" not in MODULES["src"].read_text()


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_lower_layers_never_import_upper_ones(package):
    wrong = {
        f"{module} imports {target}"
        for module in MODULES
        if module != "src" and layer(module) == package
        for target in src_imports(module)
        if target != "src" and layer(target) != package and layer(target) not in ALLOWED[package]
    }
    assert not wrong, sorted(wrong)


def test_no_import_cycle():
    graph = {m: {t for t in src_imports(m) if not MODULES[t].name == "__init__.py"} for m in MODULES}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_the_cycle_check_sees_a_cycle():
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).static_order())


def test_only_the_app_helpers_import_streamlit():
    importers = {m for m, p in MODULES.items() if any(i.split(".")[0] == "streamlit" for i in imports(p))}
    assert importers, "the scan found no Streamlit import at all"
    assert all(m.startswith(tuple(f"{p}." for p in STREAMLIT_PACKAGES)) for m in importers), sorted(importers)
    assert not importers & STREAMLIT_FREE_IN_APP


def test_pages_hold_no_tensorflow_paths_or_engine_calls():
    for page in [ROOT / "streamlit_app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        top = {name.split(".")[0] for name in imports(page)}
        assert not top & {"tensorflow", "keras", "cv2", "sqlalchemy", "onnxruntime"}, page.name


def test_the_scan_sees_deferred_and_aliased_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import streamlit.runtime as rt\n    from streamlit_webrtc import x\n")
    assert imports(sample) == {"streamlit.runtime", "streamlit_webrtc"}


@pytest.mark.parametrize("module", KERAS_FREE)
def test_module_loads_without_tensorflow_or_keras(module):
    code = (
        f"import {module}, sys; "
        "loaded = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules); "
        "assert not loaded, loaded"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
