"""The report as one self-contained HTML file: CSS inline, charts as embedded PNG (data: URLs),
nothing fetched from anywhere. Jinja2 with autoescape on, so every campaign or location name
is shown as the text it is, never as markup."""

from __future__ import annotations

import base64
import math

from jinja2 import Environment

from src.analytics.report import CONTENT_SECURITY_POLICY
from src.analytics.report.charts import report_charts
from src.analytics.report.content import Report, ShareRow


def pct(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.0%}"


def share_range(row: ShareRow) -> str:
    if row.low is None or row.high is None or math.isnan(row.low):
        return "—"
    return f"{row.low:.0%} to {row.high:.0%}"


def p_value(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


STYLE = """
body { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #1d1d1f; margin: 0; background: #f6f6f4; }
main { max-width: 52rem; margin: 0 auto; padding: 2rem 1.5rem 3rem; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; overflow-wrap: anywhere; }
p, li { line-height: 1.45; }
.muted { color: #666; font-size: .9rem; }
table { border-collapse: collapse; margin: .4rem 0 1rem; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e6e6e6; vertical-align: top; overflow-wrap: anywhere; }
th { background: #f1f1ee; font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
.kpis { display: flex; flex-wrap: wrap; gap: .8rem; margin: .8rem 0; }
.kpi { flex: 1 1 10rem; border: 1px solid #e3e3e3; border-radius: 6px; padding: .6rem .8rem; }
.kpi .value { font-size: 1.5rem; font-weight: 700; }
.kpi .label { font-size: .85rem; color: #555; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: .5rem .8rem; margin: .6rem 0; }
.verdict { background: #eef5ff; border-left: 4px solid #4c78a8; padding: .5rem .8rem; margin: .5rem 0; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; }
code { font-size: .85rem; overflow-wrap: anywhere; }
"""

TEMPLATE = (
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{{ policy }}">
<title>{{ r.title }}</title>
<style>"""
    + STYLE  # part of the template itself: no variable, so no escaping of its quotes
    + """</style>
</head>
<body>
<main>
<h1>{{ r.title }}</h1>
<p class="muted">Made {{ r.created.strftime("%Y-%m-%d %H:%M") }} UTC from the results store. Period: {{ r.period() }}.</p>

<h2>Selection</h2>
<table>
{% for key, value in r.selection_lines %}<tr><th scope="row">{{ key }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>

<h2>People counted</h2>
<div class="kpis">
<div class="kpi"><div class="value">{{ "{:,}".format(c.people) }}</div><div class="label">people counted (each person once)</div></div>
<div class="kpi"><div class="value">{{ "{:,}".format(c.samples) }}</div><div class="label">samples of photos and videos (a photo's face; one per face per sampled video frame)</div></div>
<div class="kpi"><div class="value">{{ "{:,}".format(c.face_seconds) }}</div><div class="label">face-seconds of the live camera</div></div>
<div class="kpi"><div class="value">{{ "{:,}".format(c.runs) }}</div><div class="label">runs ({{ r.period() }})</div></div>
</div>
<p>A face in a photo is one person; someone followed through a video or the live camera is one person too.
Shares below count people, not samples.</p>
{% for note in r.notes %}<p class="note">{{ note }}</p>
{% endfor %}
<h2>Shares{% if r.corrected %}, corrected for the model's mistakes{% endif %}</h2>
{% if r.corrected %}<p>{{ r.correction_sentence }}</p>{% else %}<p class="note">These shares are as the model labelled people: no error model is available to correct them.</p>{% endif %}
{% for caption, png in charts[:2] %}<figure><img alt="{{ caption }}" src="data:image/png;base64,{{ png }}"><figcaption>{{ caption }}</figcaption></figure>
{% endfor %}
{% for title, rows in (("Sentiment", r.total.sentiment), ("Emotions", r.total.emotions)) %}
<h3>{{ title }} of all selected people</h3>
<table>
<tr><th>{{ "group" if title == "Sentiment" else "emotion" }}</th><th class="num">as labelled</th>{% if r.corrected %}<th class="num">corrected</th><th class="num">95% range</th>{% endif %}</tr>
{% for row in rows %}<tr><td>{{ row.label }}</td><td class="num">{{ pct(row.raw) }}</td>{% if r.corrected %}<td class="num"><strong>{{ pct(row.corrected) }}</strong></td><td class="num">{{ share_range(row) }}</td>{% endif %}</tr>
{% endfor %}</table>
{% endfor %}
{% if r.corrected %}<p class="muted">{{ r.total.units_sentence() }}</p>{% endif %}

{% if r.campaigns %}
<h2>Campaigns</h2>
<table>
<tr><th>campaign</th><th class="num">people</th><th class="num">samples</th><th class="num">face-seconds</th><th class="num">runs</th></tr>
{% for f in r.campaigns %}<tr><td>{{ f.name }}</td><td class="num">{{ "{:,}".format(f.counts.people) }}</td><td class="num">{{ "{:,}".format(f.counts.samples) }}</td><td class="num">{{ "{:,}".format(f.counts.face_seconds) }}</td><td class="num">{{ "{:,}".format(f.counts.runs) }}</td></tr>
{% endfor %}</table>
<h3>Sentiment by campaign</h3>
<table>
<tr><th>campaign</th><th>group</th><th class="num">as labelled</th>{% if r.corrected %}<th class="num">corrected</th><th class="num">95% range</th>{% endif %}</tr>
{% for f in r.campaigns %}{% for row in f.sentiment %}<tr><td>{{ f.name if loop.first else "" }}</td><td>{{ row.label }}</td><td class="num">{{ pct(row.raw) }}</td>{% if r.corrected %}<td class="num"><strong>{{ pct(row.corrected) }}</strong></td><td class="num">{{ share_range(row) }}</td>{% endif %}</tr>
{% endfor %}{% endfor %}</table>
{% for caption, png in charts[2:] %}<figure><img alt="{{ caption }}" src="data:image/png;base64,{{ png }}"><figcaption>{{ caption }}</figcaption></figure>
{% endfor %}
<h3>Emotions by campaign</h3>
<table>
<tr><th>campaign</th>{% for label in r.emotion_labels %}<th class="num">{{ label }}</th>{% endfor %}</tr>
{% for f in r.campaigns %}<tr><td>{{ f.name }}</td>{% for row in f.emotions %}<td class="num">{% if r.corrected %}<strong>{{ pct(row.corrected) }}</strong><br><span class="muted">{{ share_range(row) }}</span>{% else %}{{ pct(row.raw) }}{% endif %}</td>{% endfor %}</tr>
{% endfor %}</table>

<h2>Comparison</h2>
{% if r.comparison_note %}<p class="note">{{ r.comparison_note }}</p>{% endif %}
{% for cmp in r.comparisons %}
<h3>{{ cmp.names[0] }} against {{ cmp.names[1] }}</h3>
<p class="verdict"><strong>Sentiment:</strong> {{ cmp.sentiment.verdict }}</p>
<p class="verdict"><strong>Emotions:</strong> {{ cmp.emotions.verdict }}</p>
{% for name, t in (("sentiment", cmp.sentiment), ("emotions", cmp.emotions)) %}{% if t.test %}<p class="muted">Test of the {{ name }} mix: Pearson chi-square = {{ "%.2f"|format(t.test.pearson) }} on {{ "%.0f"|format(t.test.df1) }} degrees of freedom, p {{ p_value(t.test.p_value) }}, each person one independent unit (the Rao-Scott test with a design effect of 1).</p>{% endif %}{% endfor %}
{% endfor %}
{% endif %}

<h2>Method and limits</h2>
{% for heading, text in r.method %}<h3>{{ heading }}</h3><p>{{ text }}</p>
{% endfor %}

<h2>Model and error model</h2>
<table>
{% if r.model %}<tr><th scope="row">Model</th><td>{{ r.model.name }}</td></tr>
<tr><th scope="row">Version id</th><td><code>{{ r.model.version }}</code></td></tr>{% endif %}
<tr><th scope="row">Faces read by</th><td>{{ r.run_models|join(", ") if r.run_models else "not recorded" }}</td></tr>
{% if r.provenance %}{% set p = r.provenance %}
<tr><th scope="row">Error model data</th><td>{{ p.split or p.dataset }}</td></tr>
<tr><th scope="row">Error model faces</th><td>{{ "{:,}".format(p.faces) }} faces found in {{ "{:,}".format(p.photos) }} photos ({{ "{:,}".format(p.labelled_faces) }} labelled; the model never trained on them)</td></tr>
<tr><th scope="row">Error model date</th><td>{{ p.created or "unknown" }}</td></tr>
<tr><th scope="row">Measured with</th><td>{{ p.model_file or "unknown file" }} <code>{{ p.model_sha256[:12] }}</code></td></tr>
{% else %}<tr><th scope="row">Error model</th><td>none: shares are not corrected</td></tr>{% endif %}
</table>
<p class="muted">It estimates facial expressions, not feelings.</p>
</main>
</body>
</html>
"""
)

_ENV = Environment(autoescape=True, trim_blocks=False, lstrip_blocks=False)
_TEMPLATE = _ENV.from_string(TEMPLATE)


def render_html(report: Report, charts: list[tuple[str, bytes]] | None = None) -> str:
    """The report as one HTML document (UTF-8 text); ``charts`` defaults to ``report_charts(report)``."""
    charts = report_charts(report) if charts is None else charts
    encoded = [(caption, base64.b64encode(png).decode("ascii")) for caption, png in charts]
    return _TEMPLATE.render(
        r=report,
        policy=CONTENT_SECURITY_POLICY,
        c=report.total.counts,
        charts=encoded,
        pct=pct,
        share_range=share_range,
        p_value=p_value,
    )
