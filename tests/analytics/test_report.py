"""The stakeholder report (src/analytics/report/): its content from a real SQLite store (the demo
filler plus a campaign with a hostile name), rendered as HTML and PDF; the PDF's pages are
turned into PNG images with poppler's pdftoppm and checked to be drawn."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from markupsafe import escape
from PIL import Image

from src import config
from src.analytics.demo import fill_demo_store
from src.analytics.report import (
    CONTENT_SECURITY_POLICY,
    EmptySelection,
    ModelFacts,
    Selection,
    build_report,
    render,
)
from src.analytics.report.charts import literal
from src.analytics.report.html import pct, share_range
from src.analytics.store import Store
from src.engine.manifest import read_manifest
from src.training import model_card
from src.training.error_model import load_error_model

HOSTILE = "<b>x</b> [y](http://z) =1+1"
NOW = datetime.now(UTC)  # runs in the past could meet a retention (FER_RETENTION_DAYS)
CAMPAIGNS = ["Spring ad A", "Spring ad B"]


def photo_rows(rng: np.random.Generator, mix, n: int, prefix: str) -> list[dict]:
    """``n`` photo faces (two per photo) with labels drawn from ``mix`` and probabilities around them."""
    rows = []
    for i in range(n):
        k = int(rng.choice(len(config.EMOTIONS), p=mix))
        probs = np.full(len(config.EMOTIONS), 0.3 / (len(config.EMOTIONS) - 1))
        probs[k] = 0.7
        rows.append(
            {
                "file": f"{prefix}_{i // 2:03d}.jpg",
                "face": i % 2,
                "x": 10,
                "y": 10,
                "w": 80,
                "h": 80,
                "emotion": config.EMOTIONS[k],
                "confidence": 0.7,
                **dict(zip(config.EMOTIONS, probs.tolist())),
                "status": "ok",
                "error": "",
            }
        )
    return rows


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "results.db"
    opened = Store(f"sqlite:///{path.as_posix()}")
    fill_demo_store(opened, seed=3, weeks=3, now=NOW)
    rng = np.random.default_rng(1)
    for k in range(3):
        opened.save_rows(
            "batch",
            photo_rows(rng, [0.1, 0.05, 0.05, 0.3, 0.1, 0.1, 0.3], 30, f"hostile{k}"),
            campaign=HOSTILE,
            location="Hall <i>1</i>",
            model_version="v3-ensemble-w24-w48",
            created_at=NOW - timedelta(days=k + 1),
        )
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def error_model():
    return load_error_model(config.MODEL_FILE)


@pytest.fixture(scope="module")
def facts() -> ModelFacts:
    manifest = read_manifest(config.MODEL_FILE)
    return ModelFacts.from_manifest(manifest, model_card.plain_name(manifest))


@pytest.fixture(scope="module")
def report(store, error_model, facts):
    return build_report(store, Selection.of(CAMPAIGNS), error_model, facts, now=NOW)


@pytest.fixture(scope="module")
def html(report) -> str:
    return render(report, "html").decode("utf-8")


@pytest.fixture(scope="module")
def pdf(report) -> bytes:
    return render(report, "pdf")


def test_content_counts_people_and_samples_as_the_store_does(store, report):
    people = store.people(campaign=CAMPAIGNS)
    runs = store.runs(campaign=CAMPAIGNS, status="ok")
    counts = report.total.counts
    assert counts.people == len(people) > 0
    assert counts.samples == int(runs.loc[runs["source"] != "live", "samples"].sum())
    assert counts.face_seconds == int(runs.loc[runs["source"] == "live", "samples"].sum()) > 0
    assert counts.runs == len(runs)
    assert [f.name for f in report.campaigns] == CAMPAIGNS
    assert sum(f.counts.people for f in report.campaigns) == counts.people


def test_content_corrects_shares_with_intervals_and_compares(report, facts):
    assert report.corrected and report.correction_sentence.startswith("Corrected shares undo")
    for rows in (report.total.emotions, report.total.sentiment, *(f.sentiment for f in report.campaigns)):
        assert sum(r.corrected for r in rows) == pytest.approx(1.0, abs=1e-6)
        assert sum(r.raw for r in rows) == pytest.approx(1.0, abs=1e-6)
        for r in rows:
            assert 0 <= r.low <= r.corrected <= r.high <= 1
    assert [r.label for r in report.total.sentiment] == ["positive", "neutral", "negative"]
    (comparison,) = report.comparisons
    assert comparison.names == tuple(CAMPAIGNS)
    assert comparison.sentiment.testable and comparison.sentiment.verdict
    assert report.model == facts and facts.version == read_manifest(config.MODEL_FILE)["version"]
    assert report.provenance.dataset == "ExpW" and report.provenance.faces > 900
    assert report.provenance.matches_model is True
    assert "demo" in report.run_models  # the demo runs' version differs from the model's: said in a note
    assert any("read by demo" in note for note in report.notes)


def test_html_holds_people_shares_intervals_verdict_and_model(report, html):
    assert html.startswith("<!DOCTYPE html>")
    assert f"{report.total.counts.people:,}" in html
    assert f"{report.total.counts.samples:,}" in html and "face-seconds" in html
    for row in (*report.total.emotions, *report.total.sentiment):
        assert f"<strong>{pct(row.corrected)}</strong>" in html
        assert share_range(row) in html
    for comparison in report.comparisons:
        assert str(escape(comparison.sentiment.verdict)) in html
        assert str(escape(comparison.emotions.verdict)) in html
    assert report.model.version in html and str(escape(report.model.name)) in html
    assert "Expressions, not feelings" in html and "On real photos the model labels about" in html


def test_html_is_self_contained(html):
    images = re.findall(r"<img[^>]*\ssrc=\"([^\"]*)\"", html)
    assert len(images) == 4 and all(src.startswith("data:image/png;base64,") for src in images)
    lowered = html.lower()
    assert not re.search(r"(src|href|action|poster)\s*=\s*[\"']?\s*(https?:)?//", lowered)
    assert "url(" not in lowered and "@import" not in lowered
    assert "<script" not in lowered and "<link" not in lowered and "<iframe" not in lowered
    # The page itself forbids fetching (the policy in a meta tag: an escaped attribute value).
    assert f'http-equiv="Content-Security-Policy" content="{escape(CONTENT_SECURITY_POLICY)}"' in html


def test_user_text_is_escaped_in_html_and_plain_in_pdf(store, error_model, facts, tmp_path):
    selection = Selection.of([HOSTILE, "Spring ad A"], locations=["Hall <i>1</i>", "Paris Opéra"])
    hostile = build_report(store, selection, error_model, facts, now=NOW)
    assert hostile.campaigns[0].counts.people == 90
    page = render(hostile, "html").decode("utf-8")
    assert "<b>x</b>" not in page and "<i>1</i>" not in page
    assert "&lt;b&gt;x&lt;/b&gt; [y](http://z) =1+1" in page
    assert "Hall &lt;i&gt;1&lt;/i&gt;" in page
    document = render(hostile, "pdf")
    assert b"/URI" not in document  # no link made of the name
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext not found: apt-get install -y poppler-utils")
    path = tmp_path / "hostile.pdf"
    path.write_bytes(document)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert HOSTILE in text and "Hall <i>1</i>" in text


def test_pdf_pages_render_as_non_blank_images(pdf, tmp_path):
    assert pdf.startswith(b"%PDF-")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm not found: apt-get install -y poppler-utils")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    for page in pages:
        with Image.open(page) as image:
            gray = np.asarray(image.convert("L"), dtype=float)
        assert gray.shape[0] > gray.shape[1]  # A4 portrait
        inked = (gray < 200).mean()
        assert 0.005 < inked < 0.5, f"{page.name}: {inked:.3%} of the page drawn"


def test_pdf_has_the_same_figures_as_the_html(report, pdf, tmp_path):
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext not found: apt-get install -y poppler-utils")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    assert f"{report.total.counts.people:,}" in flat
    for row in report.total.sentiment:
        assert share_range(row) in flat
    assert report.model.version in flat and "Pearson chi-square" in flat
    assert " ".join(report.comparisons[0].sentiment.verdict.split()[:6]) in flat


def test_without_an_error_model_the_shares_are_as_labelled(store, facts):
    plain = build_report(store, Selection.of(["Spring ad A"]), None, facts, now=NOW)
    assert not plain.corrected and plain.provenance is None and plain.comparisons == ()
    assert all(r.corrected is None for r in plain.total.emotions)
    page = render(plain, "html").decode("utf-8")
    assert "no error model is available" in page and "95% range" not in page
    assert render(plain, "pdf").startswith(b"%PDF-")


def test_an_error_model_of_other_weights_is_not_used(store, error_model, facts):
    other = dataclasses.replace(error_model, model_sha256="0" * 64)
    plain = build_report(store, Selection.of(["Spring ad B"]), other, facts, now=NOW)
    assert not plain.corrected and plain.provenance is None
    assert any("measured on other weights" in note for note in plain.notes)


def test_an_empty_selection_says_so(store, error_model):
    with pytest.raises(EmptySelection, match="No people in this selection"):
        build_report(store, Selection.of(["no such campaign"]), error_model)
    with pytest.raises(EmptySelection):
        build_report(store, Selection.of(CAMPAIGNS, since=date(2030, 1, 1)), error_model)


def test_selection_reads_the_dashboards_filters():
    picked = Selection.of(["(no campaign)", "A", "A"], ["Paris"], ["video"], since=date(2026, 5, 1), until="2026-05-03")
    assert picked.campaigns == ("", "A") and picked.locations == ("Paris",) and picked.sources == ("video",)
    assert picked.since == datetime(2026, 5, 1, tzinfo=UTC)
    assert picked.until == datetime(2026, 5, 4, tzinfo=UTC)  # a date includes that whole day
    assert Selection.of(["A"], until="2026-05-03T12:00:00").until == datetime(2026, 5, 3, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a date"):
        Selection.of(["A"], since="2026-13-40")


def test_chart_text_is_shown_literally():
    assert literal("$x$ costs $5") == r"\$x\$ costs \$5"
    assert literal("_hidden").startswith(" ")  # a legend would drop a label starting with "_"
    assert len(literal("n" * 200)) == 40
