"""``python -m src.cli report`` (src/cli/report.py): the report of a demo store as HTML and PDF files,
and exit 2 (nothing written) for an empty selection, an unknown format or a bad date."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from src import config
from src.analytics.demo import fill_demo_store
from src.analytics.store import Store
from src.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory) -> str:
    url = f"sqlite:///{(tmp_path_factory.mktemp('cli_report') / 'results.db').as_posix()}"
    with Store(url) as store:
        fill_demo_store(store, seed=5, weeks=2)
    return url


def run_cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FER_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "src.cli", "report", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_report_writes_html_and_pdf_from_the_suffix(demo_url, tmp_path):
    html, pdf = tmp_path / "report.html", tmp_path / "Report.PDF"
    done = run_cli(demo_url, "--campaign", "Spring ad A", "--campaign", "Spring ad B", "--output", str(html))
    assert done.returncode == 0, done.stderr
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "Rao-Scott" in html.read_text(encoding="utf-8")  # two campaigns: compared
    assert f"wrote {html} (HTML" in done.stdout and "people" in done.stdout and "shares corrected" in done.stdout
    done = run_cli(demo_url, "--campaign", "Spring ad B", "--source", "batch", "--since", "2000-01-01", "-o", str(pdf))
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF-")


def test_format_option_wins_over_the_suffix(demo_url, tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DATABASE_URL", demo_url)
    out = tmp_path / "report.bin"
    assert main(["report", "--campaign", "Loyalty week", "--format", "pdf", "--output", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--campaign", "No such campaign", "--output", "{tmp}/r.html"], "No people in this selection"),
        (["--campaign", "Spring ad A", "--until", "2001-01-01", "--output", "{tmp}/r.html"], "No people"),
        (["--campaign", "Spring ad A", "--output", "{tmp}/r.txt"], "name it .html or .pdf"),
        (["--campaign", "Spring ad A", "--since", "2026-02-31", "--output", "{tmp}/r.pdf"], "not a date"),
    ],
)
def test_user_errors_exit_2_and_write_nothing(demo_url, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.setattr(config, "DATABASE_URL", demo_url)
    assert main(["report", *(a.format(tmp=tmp_path) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
