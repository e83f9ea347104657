"""The report as a PDF with the content of the HTML file, drawn with fpdf2 (pure Python).

Text is set in DejaVu Sans, the TrueType font matplotlib ships (``mpl-data/fonts/ttf``), so
campaign names in any European script print as typed; fpdf2 embeds the glyphs used, and a
character the font lacks (CJK, emoji) prints as U+FFFD rather than as a silent gap. Every
piece of user text goes through ``multi_cell``/table cells with markdown off: it is printed
as plain text, never interpreted. Charts are the same PNGs as the HTML file's.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import TableCellFillMode, XPos, YPos

from src.analytics.report.charts import report_charts
from src.analytics.report.content import Report
from src.analytics.report.html import p_value, pct, share_range
from src.common import sanitize

FONT = "DejaVu"
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
MARGIN_MM = 15
BODY_PT = 9.5
LINE_MM = 5
INK = (29, 29, 31)
MUTED = (100, 100, 100)
HEAD_FILL = (241, 241, 238)
NOTE_FILL = (255, 247, 224)
VERDICT_FILL = (238, 245, 255)
RULE = (205, 205, 205)


def plain(value: object) -> str:
    """User or report text for the PDF: valid Unicode, control characters shown as ``\\xNN``."""
    return sanitize.line(str(value))


def _rows_height(rows: list[list], widths: tuple[float, ...]) -> float:
    """About how tall a table is (mm): a line per row, more for the longest wrapped cell."""
    chars = [max(2.0, w / 1.75) for w in widths]  # characters a column holds per line at the table's size
    lines = 0
    for row in rows:
        lines += max((len(v) if isinstance(v, tuple) else len(str(v)) // int(c) + 1) for v, c in zip(row, chars))
    return lines * 4.6 + len(rows) * 2.4 + 4


class _Document(FPDF):
    """A4 pages with the report's title in the footer and page numbers."""

    def __init__(self, footer_text: str):
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_text = footer_text
        self.add_font(FONT, "", FONT_DIR / "DejaVuSans.ttf")
        self.add_font(FONT, "B", FONT_DIR / "DejaVuSans-Bold.ttf")
        self.glyphs = frozenset(self.fonts[FONT.lower()].cmap) & frozenset(self.fonts[FONT.lower() + "B"].cmap)
        self.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
        self.set_auto_page_break(True, margin=MARGIN_MM + 3)
        self.set_text_color(*INK)
        self.set_draw_color(*RULE)
        self.set_line_width(0.2)

    def footer(self) -> None:
        self.set_y(-MARGIN_MM + 2)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*MUTED)
        text = self.footer_text if len(self.footer_text) <= 90 else self.footer_text[:89] + "…"
        self.cell(0, 4, f"{self.printable(text)} · page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(*INK)

    def printable(self, value: object) -> str:
        """``plain(value)`` with the characters the font has no glyph for as U+FFFD."""
        return "".join(ch if ord(ch) in self.glyphs or ch == " " else "\ufffd" for ch in plain(value))

    # -- blocks

    def heading(self, text: str, size: float = 13) -> None:
        if self.get_y() > self.h - 45:  # no heading alone at the foot of a page
            self.add_page()
        self.ln(3)
        self.set_font(FONT, "B", size)
        self.multi_cell(0, size * 0.5, self.printable(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)
        self.set_font(FONT, "", BODY_PT)

    def paragraph(self, text: str, *, muted: bool = False, fill: tuple[int, int, int] | None = None) -> None:
        self.set_font(FONT, "", BODY_PT - (1 if muted else 0))
        if muted:
            self.set_text_color(*MUTED)
        if fill:
            self.set_fill_color(*fill)
            # A boxed paragraph (a verdict, a note) is not split over two pages.
            height = self.multi_cell(0, LINE_MM, self.printable(text), padding=1.5, dry_run=True, output="HEIGHT")
            if self.get_y() + height > self.page_break_trigger:
                self.add_page()
        self.multi_cell(
            0,
            LINE_MM,
            self.printable(text),
            align="L",
            fill=bool(fill),
            padding=1.5 if fill else 0,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.set_text_color(*INK)
        self.set_fill_color(255, 255, 255)  # tables draw their cells with the current fill colour
        self.ln(1.5)

    def table_rows(self, rows: list[list], widths: tuple[float, ...], *, numbers_from: int = 1) -> None:
        """A table whose first row is its header; columns from ``numbers_from`` on are right-aligned.
        A cell is text, or a tuple of texts set on lines of their own."""
        needed = _rows_height(rows, widths)
        if self.get_y() + needed > self.page_break_trigger and needed < self.eph * 0.8:
            self.add_page()  # a short table is not split over two pages
        self.set_font(FONT, "", BODY_PT - 1)
        align = tuple("LEFT" if i < numbers_from else "RIGHT" for i in range(len(widths)))
        with self.table(
            col_widths=widths,
            text_align=align,
            line_height=4.6,
            headings_style=_heading_style(),
            borders_layout="HORIZONTAL_LINES",
            cell_fill_mode=TableCellFillMode.NONE,
            padding=1.2,
            markdown=False,
        ) as table:
            for row in rows:
                cells = table.row()
                for value in row:
                    lines = value if isinstance(value, tuple) else (value,)
                    cells.cell("\n".join(self.printable(v) for v in lines))
        self.ln(2)
        self.set_font(FONT, "", BODY_PT)

    def key_values(self, pairs: list[tuple[str, str]]) -> None:
        self.set_font(FONT, "", BODY_PT - 1)
        with self.table(
            col_widths=(35, 145),
            text_align=("LEFT", "LEFT"),
            first_row_as_headings=False,
            line_height=4.6,
            borders_layout="HORIZONTAL_LINES",
            cell_fill_mode=TableCellFillMode.NONE,
            padding=1.2,
            markdown=False,
        ) as table:
            for key, value in pairs:
                row = table.row()
                row.cell(self.printable(key))
                row.cell(self.printable(value))
        self.ln(2)
        self.set_font(FONT, "", BODY_PT)

    def chart(self, caption: str, png: bytes) -> None:
        width = self.w - 2 * MARGIN_MM
        from PIL import Image  # pillow is a dependency; only the image size is read

        with Image.open(io.BytesIO(png)) as image:
            height = width * image.height / image.width
        if self.get_y() + height + 8 > self.h - MARGIN_MM - 3:
            self.add_page()
        self.image(io.BytesIO(png), x=MARGIN_MM, w=width, alt_text=self.printable(caption))
        self.paragraph(caption, muted=True)


def _heading_style():
    from fpdf.fonts import FontFace

    return FontFace(family=FONT, emphasis="BOLD", fill_color=HEAD_FILL)


def render_pdf(report: Report, charts: list[tuple[str, bytes]] | None = None) -> bytes:
    """The report as PDF bytes; ``charts`` defaults to ``report_charts(report)``."""
    charts = report_charts(report) if charts is None else charts
    c = report.total.counts
    doc = _Document(plain(report.title))
    doc.set_title(plain(report.title))
    doc.set_creator("fer-analytics")
    doc.set_creation_date(report.created)
    doc.add_page()

    doc.set_font(FONT, "B", 17)
    doc.multi_cell(0, 8, doc.printable(report.title), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.paragraph(
        f"Made {report.created:%Y-%m-%d %H:%M} UTC from the results store. Period: {report.period()}.", muted=True
    )

    doc.heading("Selection")
    doc.key_values(list(report.selection_lines))

    doc.heading("People counted")
    doc.table_rows(
        [
            ["what", "count"],
            ["people counted (each person once)", f"{c.people:,}"],
            ["samples of photos and videos (a photo's face; one per face per sampled video frame)", f"{c.samples:,}"],
            ["face-seconds of the live camera", f"{c.face_seconds:,}"],
            [f"runs ({report.period()})", f"{c.runs:,}"],
        ],
        (150, 30),
    )
    doc.paragraph("Shares below count people, not samples.")
    for note in report.notes:
        doc.paragraph(note, fill=NOTE_FILL)

    doc.heading("Shares, corrected for the model's mistakes" if report.corrected else "Shares")
    if report.corrected:
        doc.paragraph(report.correction_sentence)
    else:
        doc.paragraph(
            "These shares are as the model labelled people: no error model is available to correct them.",
            fill=NOTE_FILL,
        )
    for caption, png in charts[:2]:
        doc.chart(caption, png)
    for title, rows, what in (
        ("Sentiment", report.total.sentiment, "group"),
        ("Emotions", report.total.emotions, "emotion"),
    ):
        doc.heading(f"{title} of all selected people", 11)
        if report.corrected:
            table = [[what, "as labelled", "corrected", "95% range"]]
            table += [[r.label, pct(r.raw), pct(r.corrected), share_range(r)] for r in rows]
            doc.table_rows(table, (60, 35, 35, 50))
        else:
            doc.table_rows([[what, "as labelled"], *([r.label, pct(r.raw)] for r in rows)], (120, 60))
    if report.corrected:
        doc.paragraph(report.total.units_sentence(), muted=True)

    if report.campaigns:
        doc.add_page()
        doc.heading("Campaigns")
        doc.table_rows(
            [
                ["campaign", "people", "samples", "face-seconds", "runs"],
                *(
                    [
                        f.name,
                        f"{f.counts.people:,}",
                        f"{f.counts.samples:,}",
                        f"{f.counts.face_seconds:,}",
                        f"{f.counts.runs:,}",
                    ]
                    for f in report.campaigns
                ),
            ],
            (80, 25, 25, 28, 22),
        )
        doc.heading("Sentiment by campaign", 11)
        if report.corrected:
            head = ["campaign", "group", "as labelled", "corrected", "95% range"]
            body = [
                [f.name if i == 0 else "", r.label, pct(r.raw), pct(r.corrected), share_range(r)]
                for f in report.campaigns
                for i, r in enumerate(f.sentiment)
            ]
            doc.table_rows([head, *body], (62, 28, 28, 28, 34), numbers_from=2)
        else:
            head = ["campaign", "group", "as labelled"]
            body = [
                [f.name if i == 0 else "", r.label, pct(r.raw)]
                for f in report.campaigns
                for i, r in enumerate(f.sentiment)
            ]
            doc.table_rows([head, *body], (90, 45, 45), numbers_from=2)
        for caption, png in charts[2:]:
            doc.chart(caption, png)
        doc.heading("Emotions by campaign" + (" (corrected, 95% range)" if report.corrected else ""), 11)
        emotions = list(report.emotion_labels)
        body = [[f.name, *(_cell(r, report.corrected) for r in f.emotions)] for f in report.campaigns]
        doc.table_rows([["campaign", *emotions], *body], (33, *(147 / len(emotions),) * len(emotions)))

        doc.heading("Comparison")
        if report.comparison_note:
            doc.paragraph(report.comparison_note, fill=NOTE_FILL)
        for cmp in report.comparisons:
            doc.heading(f"{cmp.names[0]} against {cmp.names[1]}", 11)
            doc.paragraph(f"Sentiment: {cmp.sentiment.verdict}", fill=VERDICT_FILL)
            doc.paragraph(f"Emotions: {cmp.emotions.verdict}", fill=VERDICT_FILL)
            for name, test in (("sentiment", cmp.sentiment), ("emotions", cmp.emotions)):
                if test.test is not None:
                    t = test.test
                    doc.paragraph(
                        f"Test of the {name} mix: Pearson chi-square = {t.pearson:.2f} on {t.df1:.0f} degrees of "
                        f"freedom, p {p_value(t.p_value)}, each person one independent unit (the Rao-Scott test "
                        "with a design effect of 1).",
                        muted=True,
                    )

    doc.heading("Method and limits")
    for heading, text in report.method:
        if doc.get_y() > doc.h - 40:  # a sub-heading goes with its paragraph
            doc.add_page()
        doc.set_font(FONT, "B", BODY_PT)
        doc.multi_cell(0, LINE_MM, doc.printable(heading), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        doc.paragraph(text)

    doc.heading("Model and error model")
    pairs: list[tuple[str, str]] = []
    if report.model is not None:
        pairs += [("Model", report.model.name), ("Version id", report.model.version)]
    pairs.append(("Faces read by", ", ".join(report.run_models) or "not recorded"))
    p = report.provenance
    if p is not None:
        pairs += [
            ("Error model data", p.split or p.dataset),
            (
                "Error model faces",
                f"{p.faces:,} faces found in {p.photos:,} photos ({p.labelled_faces:,} labelled; "
                "the model never trained on them)",
            ),
            ("Error model date", p.created or "unknown"),
            ("Measured with", f"{p.model_file or 'unknown file'} {p.model_sha256[:12]}"),
        ]
    else:
        pairs.append(("Error model", "none: shares are not corrected"))
    doc.key_values(pairs)
    doc.paragraph("It estimates facial expressions, not feelings.", muted=True)
    return bytes(doc.output())


def _cell(row, corrected: bool) -> str | tuple[str, str]:
    """A share in a campaigns-by-emotions table: the corrected share over its range, or the raw one."""
    return (pct(row.corrected), share_range(row)) if corrected else pct(row.raw)
