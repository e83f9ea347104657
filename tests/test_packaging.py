"""Packaging: every third-party import of the product is a pinned runtime dependency in
pyproject.toml, the one list of versions, and nothing patches sys.path to find ``src``."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        assert version, f"{requirement!r} is not an exact pin"
        pins[_canonical(name.partition("[")[0])] = version  # ray[data] pins the distribution ray
    return pins


def _third_party_imports(files: list[Path]) -> set[str]:
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "src"}


def _extras() -> dict[str, list[str]]:
    """The optional groups, without the dev group's references to the others (``fer-analytics[...]``)."""
    name = _canonical(PYPROJECT["project"]["name"])
    return {
        group: [r for r in requirements if not _canonical(r).startswith(name + "[")]
        for group, requirements in PYPROJECT["project"]["optional-dependencies"].items()
    }


def test_every_product_import_is_a_pinned_dependency():
    # The serving install (dependencies) must not need the extras: tests/engine/test_runtime.py runs
    # predict with TensorFlow blocked; training, export and Ray import theirs lazily.
    runtime = _pins(PYPROJECT["project"]["dependencies"])
    for group in ("train", "ray"):
        runtime |= _pins(_extras()[group])
    product = [*(ROOT / "src").glob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "streamlit_app.py"]
    distributions = packages_distributions()
    undeclared = {}
    for module in sorted(_third_party_imports(product)):
        names = {_canonical(d) for d in distributions.get(module, [])}
        if not names & runtime.keys():
            undeclared[module] = sorted(names)
    assert not undeclared, f"imported but not pinned in pyproject.toml: {undeclared}"


def test_dev_group_is_pinned_and_requirements_files_only_point_at_pyproject():
    _pins(_extras()["dev"])
    assert "fer-analytics[train,ray]" in PYPROJECT["project"]["optional-dependencies"]["dev"]
    for name, expected in (("requirements.txt", "-e ."), ("requirements-dev.txt", "-e .[dev]")):
        lines = [line.strip() for line in (ROOT / name).read_text().splitlines()]
        assert [line for line in lines if line and not line.startswith("#")] == [expected], name


def test_nothing_patches_sys_path():
    files = [*(ROOT / "bench").glob("*.py"), *(ROOT / "tests").glob("*.py"), *(ROOT / "src").glob("*.py")]
    files += [*(ROOT / "pages").glob("*.py"), *(ROOT / "jupyter_notebooks").glob("*.ipynb"), ROOT / "streamlit_app.py"]
    offenders = [p.name for p in files if p != Path(__file__).resolve() and "sys.path.insert" in p.read_text()]
    assert not offenders
