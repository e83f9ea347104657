"""The stakeholder report: one content model, rendered as a self-contained HTML file and a PDF.

* ``content``: ``build_report(store, selection, error_model, model)`` reads the results store
  and returns a typed ``Report`` (people counted, raw and corrected shares with 95% ranges,
  comparisons with plain verdicts, the method and its limits, the model and the error model).
* ``charts``: its charts as PNG bytes (matplotlib).
* ``html``: ``render_html(report)``, Jinja2 with autoescape, CSS inline, charts embedded.
* ``pdf``: ``render_pdf(report)``, fpdf2, the same content.

The entry points (``python -m src.cli report``, ``GET /v1/report``, the History & trends tab)
load the error model and describe the model, then call ``render(report, fmt)``.
"""

from __future__ import annotations

from src.analytics.report.content import (
    NO_CAMPAIGN,
    EmptySelection,
    ModelFacts,
    Report,
    Selection,
    build_report,
    file_stem,
)

FORMATS = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
# The HTML file's own policy (a meta tag), for servers to send as a header too: its styles and
# embedded images, nothing fetched.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def render(report: Report, fmt: str) -> bytes:
    """The report as a file's bytes: ``html`` (UTF-8) or ``pdf``; charts are drawn once per call."""
    from src.analytics.report.charts import report_charts

    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")
    charts = report_charts(report)
    if fmt == "html":
        from src.analytics.report.html import render_html

        return render_html(report, charts).encode("utf-8")
    from src.analytics.report.pdf import render_pdf

    return render_pdf(report, charts)


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "FORMATS",
    "NO_CAMPAIGN",
    "EmptySelection",
    "ModelFacts",
    "Report",
    "Selection",
    "build_report",
    "file_stem",
    "render",
]
