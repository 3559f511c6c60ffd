"""Drawing the progress report: matplotlib charts (Agg) typeset with reportlab's platypus into one PDF.

Pure functions of the data the service gathered (`ReportData`): no database, no request, no clock. The service runs
`pdf()` in a worker thread, so nothing here is shared between calls: each chart is its own `Figure` (no pyplot and
its global current figure), each document its own template and canvas. Fonts are registered once, at import.

What a section shows is what the viewer's models carry: a session's notes, addenda and warnings appear only when
the service presented it as `SessionPublic` (the care team's view), a plan's suitability notes only in `PlanPublic`,
and alerts only when the service gathered them. The patient's copy is built from the patient's views.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import matplotlib
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.ticker import MaxNLocator
from matplotlib.figure import Figure
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from api.alerts.schemas import AlertPublic
from api.charts.schemas import ChartPublic
from api.patients.schemas import PatientPublic
from api.plans.schemas import PlanPublic, PlanView
from api.sessions.schemas import SessionPublic, SessionView


@dataclass(frozen=True, slots=True)
class InstrumentChart:
    """One scheduled instrument: its registry name and total range, and the chart service's answer."""

    name: str
    total_max: int
    chart: ChartPublic


@dataclass(frozen=True, slots=True)
class ReportData:
    organization: str
    patient: PatientPublic
    generated_at: dt.datetime  # aware
    date_from: dt.date  # the period shown, in the patient's calendar (the charts' own range)
    date_to: dt.date
    plan: PlanView | None
    charts: Sequence[InstrumentChart]
    sessions: Sequence[SessionView]  # signed, in the period, earliest first
    alerts: Sequence[AlertPublic] | None  # None: not the viewer's to see (the patient's copy)
    instrument_names: Mapping[str, str]  # code → published name, for goals and schedules


# --- fonts, colours and styles -------------------------------------------------------------------------------------

# DejaVu Sans ships with matplotlib: the same face in charts and text, and Unicode beyond the PDF standard fonts'
# Latin-1, so names print as written.
_FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT, BOLD, ITALIC = "DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique"
for _name, _file in ((FONT, "DejaVuSans.ttf"), (BOLD, "DejaVuSans-Bold.ttf"), (ITALIC, "DejaVuSans-Oblique.ttf")):
    pdfmetrics.registerFont(TTFont(_name, str(_FONTS / _file)))
pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=ITALIC, boldItalic=BOLD)

INK_HEX, MUTED_HEX = "#1d2730", "#5b6770"
INK, MUTED, ACCENT = colors.HexColor(INK_HEX), colors.HexColor(MUTED_HEX), colors.HexColor("#1f4e5a")
RULE, HEADER_FILL, STRIPE = colors.HexColor("#c9d3d8"), colors.HexColor("#e6eef0"), colors.HexColor("#f6f8f9")
URGENT = colors.HexColor("#a61b1b")
LINE_COLOUR, RANGE_COLOUR, SESSION_COLOUR, BASELINE_COLOUR = "#1f4e79", "#6c8fb3", "#7b3294", "#4d4d4d"

PAGE_WIDTH, PAGE_HEIGHT = LETTER
MARGIN = 0.75 * inch
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN
CHART_SIZE = (FRAME_WIDTH / inch, 2.75)  # inches
CHART_DPI = 200  # sharp in print; a year's report with two charts stays under 200 kB

BODY = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12, textColor=INK)
SMALL = ParagraphStyle("small", BODY, fontSize=7.5, leading=9.5, textColor=MUTED)
CELL = ParagraphStyle("cell", BODY, fontSize=8.5, leading=10.5)
CELL_HEAD = ParagraphStyle("cell_head", CELL, fontName=BOLD, textColor=ACCENT)
LABEL = ParagraphStyle("label", CELL, textColor=MUTED)
ORGANIZATION = ParagraphStyle("organization", BODY, fontName=BOLD, fontSize=9, textColor=ACCENT)
TITLE = ParagraphStyle("title", BODY, fontName=BOLD, fontSize=20, leading=24, spaceBefore=2, spaceAfter=2)
PATIENT = ParagraphStyle("patient", BODY, fontName=BOLD, fontSize=13, leading=16, textColor=ACCENT)
COPY = ParagraphStyle("copy", SMALL, alignment=TA_RIGHT)
H1 = ParagraphStyle("h1", BODY, fontName=BOLD, fontSize=12.5, leading=15, textColor=ACCENT, spaceBefore=14,
                    spaceAfter=6)
# A subheading stays on the page of what follows it (one of the plan's short tables).
H2 = ParagraphStyle("h2", BODY, fontName=BOLD, fontSize=10, leading=13, textColor=INK, spaceBefore=8, spaceAfter=3,
                    keepWithNext=1)
# A section starts on a new page rather than with less than this below its heading. (Keeping a heading with a
# whole table would push a table that could have started here onto the next page.)
SECTION_ROOM = 1.4 * inch
NOTE_HEAD = ParagraphStyle("note_head", BODY, fontName=BOLD, spaceBefore=5, keepWithNext=1)
NOTE = ParagraphStyle("note", BODY, leftIndent=10, spaceAfter=2)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # every control character but the line feed
DASH = "—"  # a value that does not apply or is not known


def text(value: object) -> str:
    """Stored text as paragraph markup: escaped (a stored `<` is a character, never a tag), line breaks kept."""
    return escape(_CONTROL.sub(" ", str(value))).replace("\n", "<br/>")


def para(value: object, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(text(value), style)


def section(title: str) -> list[Flowable]:
    return [CondPageBreak(SECTION_ROOM), para(title, H1)]


# --- formatting -----------------------------------------------------------------------------------------------------


def day(value: dt.date) -> str:
    return f"{value.day} {value:%b %Y}"


def local_day(instant: dt.datetime, zone: ZoneInfo) -> str:
    return day(instant.astimezone(zone).date())


def local_time(instant: dt.datetime, zone: ZoneInfo, *, named: bool = False) -> str:
    """Day and wall-clock time in the patient's zone; `named` adds the zone's abbreviation (EST, CET, +0530)."""
    local = instant.astimezone(zone)
    return f"{day(local.date())} {local:%H:%M}" + (f" {local:%Z}" if named else "")


def yes_no(value: bool | None) -> str:
    return DASH if value is None else ("Yes" if value else "No")


def signed(value: float, unit: str = "") -> str:
    return f"{'+' if value > 0 else '−' if value < 0 else '±'}{abs(value):g}{unit}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


_ACRONYMS = frozenset({"iv", "im", "cbt"})


def label(code: str) -> str:
    """An enum value as words: "moderately_severe" → "Moderately severe"; acronyms ("iv", "cbt") in capitals."""
    if code in _ACRONYMS:
        return code.upper()
    return code.replace("_", " ").capitalize()


def every(days: int) -> str:
    return "daily" if days == 1 else f"every {days} days"


def age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# --- tables ---------------------------------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[float]) -> Table:
    """A data table: a tinted header row repeated on every page it spans, light rules, striped rows. Cells are
    paragraphs so that long values wrap inside their column."""
    data = [[Paragraph(text(cell), CELL_HEAD) for cell in header]]
    data += [[cell if isinstance(cell, Flowable) else para(cell, CELL) for cell in row] for row in rows]
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, ACCENT),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
    ]
    style += [("BACKGROUND", (0, index), (-1, index), STRIPE) for index in range(2, len(data), 2)]
    return Table(data, colWidths=list(widths), repeatRows=1, style=TableStyle(style), hAlign="LEFT")


def facts(pairs: Sequence[tuple[str, object]], columns: int = 1) -> Table:
    """Label–value pairs, `columns` pairs to a row, without rules: the title block's and the plan's details."""
    label_width = 1.3 * inch
    value_width = FRAME_WIDTH / columns - label_width
    cells = [(para(name, LABEL), value if isinstance(value, Flowable) else para(value, CELL)) for name, value in pairs]
    rows = [[item for pair in cells[start:start + columns] for item in pair] for start in range(0, len(cells), columns)]
    rows[-1] += [""] * (2 * columns - len(rows[-1]))
    style = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
             ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)]
    return Table(rows, colWidths=[label_width, value_width] * columns, style=TableStyle(style), hAlign="LEFT")


# --- charts ---------------------------------------------------------------------------------------------------------


# A bucket's legend adjective and its time axis.
_BUCKETS = {"day": ("Daily", "Local day"), "week": ("Weekly", "Week starting Monday"), "month": ("Monthly", "Month")}


def chart_png(item: InstrumentChart, zone: ZoneInfo) -> bytes:
    """The instrument's bucket means over the period, with each bucket's range, its severity bands shaded lightly,
    the baseline, and a marker at every signed dosing session."""
    chart = item.chart
    figure = Figure(figsize=CHART_SIZE, dpi=CHART_DPI)
    # Fixed margins rather than a computed layout: every chart's axes line up on the page, whatever its labels.
    figure.subplots_adjust(left=0.075, right=0.855, top=0.88, bottom=0.17)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    top = item.total_max
    axes.set_ylim(0, top)
    axes.set_xlim(chart.date_from, chart.date_to + dt.timedelta(days=1))

    palette = colormaps["RdYlGn_r"]
    for index, band in enumerate(chart.bands):
        shade = palette(0.1 + 0.8 * index / max(1, len(chart.bands) - 1))
        low, high = max(0, band.min - 0.5), min(top, band.max + 0.5)
        axes.axhspan(low, high, color=shade, alpha=0.16, linewidth=0, zorder=0)
        axes.text(1.005, (low + high) / 2, label(band.label).lower(), transform=axes.get_yaxis_transform(),
                  fontsize=6.5, color=MUTED_HEX, va="center", ha="left")

    if chart.sessions:
        when = [row.started_at.astimezone(zone).replace(tzinfo=None) for row in chart.sessions]
        axes.vlines(when, 0, top, colors=SESSION_COLOUR, linewidth=0.6, alpha=0.22, zorder=1)
        axes.plot(when, [top] * len(when), linestyle="none", marker="v", markersize=4, color=SESSION_COLOUR,
                  clip_on=False, zorder=3, label="Dosing session")
    if chart.baseline is not None:
        axes.axhline(chart.baseline.total, color=BASELINE_COLOUR, linestyle=(0, (4, 3)), linewidth=0.8, zorder=1,
                     label=f"Baseline ({chart.baseline.total})")
    if chart.points:
        starts = [point.bucket_start for point in chart.points]
        axes.vlines(starts, [p.min for p in chart.points], [p.max for p in chart.points], colors=RANGE_COLOUR,
                    linewidth=2.2, alpha=0.45, zorder=2, label=f"{_BUCKETS[chart.bucket][0]} range")
        axes.plot(starts, [p.mean for p in chart.points], color=LINE_COLOUR, linewidth=1.3, marker="o",
                  markersize=2.6, zorder=3, label=f"{_BUCKETS[chart.bucket][0]} mean")
    else:
        axes.text(0.5, 0.5, "No scores in this period", transform=axes.transAxes, ha="center", va="center",
                  fontsize=9, color=MUTED_HEX)

    locator = AutoDateLocator(minticks=4, maxticks=10)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    axes.set_xlabel(f"{_BUCKETS[chart.bucket][1]} ({chart.timezone})", fontsize=7.5, color=MUTED_HEX)
    axes.set_ylabel(f"{item.name} total", fontsize=7.5, color=MUTED_HEX)
    axes.tick_params(labelsize=7, colors=INK_HEX)
    axes.grid(axis="y", color="#ffffff", linewidth=0.6)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if axes.get_legend_handles_labels()[0]:
        figure.legend(loc="upper left", bbox_to_anchor=(0.065, 0.995), ncols=4, frameon=False, fontsize=7,
                      handlelength=1.6)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CHART_DPI)
    return buffer.getvalue()


# --- sections -------------------------------------------------------------------------------------------------------


def title_block(data: ReportData, zone: ZoneInfo) -> list[Flowable]:
    patient = data.patient
    today = data.generated_at.astimezone(zone).date()
    team = ", ".join(f"{member.full_name} ({member.role})" for member in patient.care_team) or DASH
    copy = ("Care-team copy: includes clinician-only notes, warnings and alerts" if data.alerts is not None
            else "Patient copy")
    details = [
        ("Date of birth", f"{day(patient.date_of_birth)} (age {age(patient.date_of_birth, today)})"),
        ("Record number", patient.external_id or DASH),
        ("Period", f"{day(data.date_from)} – {day(data.date_to)}"),
        ("Time zone", patient.timezone),
        ("Generated", local_time(data.generated_at, zone, named=True)),
        ("Care team", team),
    ]
    heading = Table([[para(data.organization.upper(), ORGANIZATION), para(copy, COPY)]],
                    colWidths=[FRAME_WIDTH * 0.5] * 2,
                    style=TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    return [heading, para("Progress report", TITLE), para(patient.full_name, PATIENT), Spacer(0, 6),
            facts(details, columns=2), Spacer(0, 4), _Rule()]


def plan_section(plan: PlanView | None, instrument_names: Mapping[str, str]) -> list[Flowable]:
    story: list[Flowable] = section("Treatment plan")
    if plan is None:
        return [*story, para("No treatment plan has been started.")]
    protocol = plan.protocol
    dose = f"{protocol.dose.amount:g} {protocol.dose.unit}"
    infusion = f", infused over {protocol.infusion_minutes} minutes" if protocol.infusion_minutes else ""
    phases = "; ".join(f"{phase.name}: {plural(phase.sessions, 'session')} {every(phase.interval_days)}"
                       for phase in protocol.phases)
    assessments = ", ".join(f"{instrument_names.get(a.instrument, a.instrument)} {every(a.every_days)}"
                            for a in plan.assessments) or DASH
    details: list[tuple[str, object]] = [
        ("Plan", plan.title),
        ("Status", f"{label(plan.status)}, started {day(plan.start_date)}"),
        ("Indication", plan.indication),
        ("Protocol", f"{label(protocol.medication)}, {label(protocol.route)}, {dose}{infusion}"),
        ("Phases", phases),
        ("Assessments", assessments),
        ("Treatment-resistant", "Yes" if plan.treatment_resistant else "No"),
    ]
    if plan.suitability is not None:
        found = ", ".join(label(code) for code in plan.suitability.contraindications) or "none"
        details.append(("Suitability", f"Assessed {day(plan.suitability.assessed_at)}; contraindications: {found}"))
        if isinstance(plan, PlanPublic) and plan.suitability.notes:
            details.append(("Suitability notes", plan.suitability.notes))
    story.append(facts(details))
    story.append(para("Goals", H2))
    if plan.goals:
        story.append(table(
            ["Goal", "Instrument", "Target total", "By"],
            [[goal.description, instrument_names.get(goal.instrument, goal.instrument), goal.target_total,
              day(goal.by_date) if goal.by_date else DASH] for goal in plan.goals],
            [3.6 * inch, 1.2 * inch, 1.0 * inch, 1.2 * inch]))
    else:
        story.append(para("No goals recorded."))
    story.append(para("Adjunct therapies", H2))
    if plan.adjunct_therapies:
        story.append(table(
            ["Therapy", "Frequency", "Provider"],
            [[label(therapy.kind), therapy.frequency or DASH, therapy.provider or DASH]
             for therapy in plan.adjunct_therapies],
            [2.2 * inch, 2.2 * inch, 2.6 * inch]))
    else:
        story.append(para("No adjunct therapies recorded."))
    return story


def _durability(chart: ChartPublic, zone: ZoneInfo) -> str:
    found = chart.durability
    if found is None:
        return DASH
    lapses = plural(found.lapses, "lapse")
    if found.responding_now and found.response_since is not None:
        return f"Responding since {local_day(found.response_since, zone)} ({found.days_sustained:g} days); {lapses}"
    return f"Not responding now; first response {local_day(found.first_response_at, zone)}; {lapses}"


def outcomes_section(charts: Sequence[InstrumentChart], zone: ZoneInfo) -> list[Flowable]:
    """Per instrument, the chart service's clinical facts: worked out over every score on record."""
    def score(point) -> str:
        return DASH if point is None else f"{point.total} on {local_day(point.recorded_at, zone)}"

    def baseline(chart: ChartPublic) -> str:
        if chart.baseline is None:
            return DASH
        when = "before the first dose" if chart.baseline.pre_treatment else "first score on record"
        return f"{score(chart.baseline)} ({when})"

    def change(chart: ChartPublic) -> str:
        if chart.change is None:
            return DASH
        percent = "" if chart.percent_change is None else f" ({signed(chart.percent_change, ' %')})"
        return f"{signed(chart.change)} points{percent}"

    rows = [
        ("Baseline", [baseline(item.chart) for item in charts]),
        ("Latest", [score(item.chart.latest) for item in charts]),
        ("Change", [change(item.chart) for item in charts]),
        ("Response (≥ 50 % reduction)", [yes_no(item.chart.response) for item in charts]),
        ("Remission", [yes_no(item.chart.remission) for item in charts]),
        ("Clinically meaningful change", [yes_no(item.chart.clinically_meaningful_change) for item in charts]),
        ("Onset of response", [DASH if item.chart.onset is None else f"{item.chart.onset:g} days after the first "
                               f"session" for item in charts]),
        ("Durability", [_durability(item.chart, zone) for item in charts]),
    ]
    first = 1.9 * inch
    widths = [first] + [(FRAME_WIDTH - first) / len(charts)] * len(charts)
    return [
        *section("Outcomes"),
        table(["", *(item.name for item in charts)], [[name, *values] for name, values in rows], widths),
        Spacer(0, 3),
        para(f"Worked out over every score on record, not only the period shown. {DASH}: does not apply, or not "
             "reached yet.", SMALL),
    ]


def charts_section(charts: Sequence[InstrumentChart], zone: ZoneInfo) -> list[Flowable]:
    story: list[Flowable] = []
    for item in charts:
        image = Image(io.BytesIO(chart_png(item, zone)), width=CHART_SIZE[0] * inch, height=CHART_SIZE[1] * inch)
        count = sum(point.n for point in item.chart.points)
        # The section's heading goes with its first chart.
        story.append(KeepTogether([
            *([] if story else [para("Scores over time", H1)]),
            para(f"{item.name} · {plural(count, 'score')} in the period", H2), image, Spacer(0, 4)]))
    return story


def sessions_section(sessions: Sequence[SessionView], zone: ZoneInfo) -> list[Flowable]:
    story: list[Flowable] = section("Dosing sessions")
    if not sessions:
        return [*story, para("No signed dosing sessions in this period.")]
    with_warnings = all(isinstance(row, SessionPublic) for row in sessions)
    header = ["Date", "Medication", "Dose", "CADSS"] + (["Warnings"] if with_warnings else [])
    widths = [1.35 * inch, 1.35 * inch, 0.75 * inch, 0.6 * inch]
    widths += [FRAME_WIDTH - sum(widths)] if with_warnings else []
    rows = []
    for row in sessions:
        cadss = DASH if row.dissociation_cadss is None else row.dissociation_cadss
        cells: list[object] = [local_time(row.started_at, zone), f"{label(row.medication)}, {label(row.route)}",
                               f"{row.dose_mg:g} mg", cadss]
        if with_warnings:
            cells.append(Paragraph("<br/>".join(text(w.message) for w in row.warnings) or "None", CELL))
        rows.append(cells)
    return [*story, table(header, rows, widths), Spacer(0, 3),
            para(f"Signed sessions only, {plural(len(sessions), 'session')}. CADSS: dissociation, 0–92.", SMALL)]


def notes_section(sessions: Sequence[SessionView], zone: ZoneInfo) -> list[Flowable]:
    """Clinician-only notes and addenda of the care team's views of the sessions; nothing for the patient's."""
    clinical = [row for row in sessions if isinstance(row, SessionPublic)]
    if not clinical:
        return []
    story: list[Flowable] = section("Session notes and addenda")
    written = [row for row in clinical if row.notes or row.addenda]
    if not written:
        return [*story, para("None recorded.")]
    for row in written:
        story.append(para(f"Session of {local_time(row.started_at, zone)}", NOTE_HEAD))
        if row.notes:
            story.append(para(row.notes, NOTE))
        for addendum in row.addenda:
            story.append(Paragraph(f"<i>Addendum, {text(local_time(addendum.created_at, zone))}:</i> "
                                   f"{text(addendum.text)}", NOTE))
    return story


def alerts_section(alerts: Sequence[AlertPublic] | None, zone: ZoneInfo) -> list[Flowable]:
    if alerts is None:
        return []
    story: list[Flowable] = section("Open alerts")
    if not alerts:
        return [*story, para("No open alerts.")]
    rows = [[local_time(alert.raised_at, zone),
             Paragraph(f'<font color="{URGENT.hexval()}"><b>Urgent</b></font>' if alert.priority == "urgent"
                       else label(alert.priority), CELL),
             label(alert.kind), alert.message] for alert in alerts]
    return [*story, table(["Raised", "Priority", "Kind", "Alert"], rows,
                          [1.35 * inch, 0.75 * inch, 1.5 * inch, FRAME_WIDTH - 3.6 * inch])]


class _Rule(Flowable):
    """A hairline across the frame."""

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        self.width = available_width
        return available_width, 1

    def draw(self) -> None:
        self.canv.setStrokeColor(RULE)
        self.canv.setLineWidth(0.6)
        self.canv.line(0, 0, self.width, 0)


# --- the document ---------------------------------------------------------------------------------------------------


class _NumberedCanvas(Canvas):
    """Holds the pages back until the end, so that each can say "page N of M"."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._held: list[dict] = []

    def showPage(self) -> None:  # noqa: N802 (reportlab's name)
        self._held.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        for state in self._held:
            self.__dict__.update(state)
            self.setFont(FONT, 7.5)
            self.setFillColor(MUTED)
            self.drawRightString(PAGE_WIDTH - MARGIN, 0.45 * inch, f"Page {self._pageNumber} of {len(self._held)}")
            super().showPage()
        super().save()


def _furniture(data: ReportData):
    """Every page names the patient (pages get separated) and says what the document holds."""
    patient = data.patient
    running = f"{patient.full_name} · born {day(patient.date_of_birth)}"
    if patient.external_id:
        running += f" · record {patient.external_id}"

    def draw(canvas: Canvas, doc: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.setFillColor(MUTED)
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        if doc.page > 1:
            canvas.drawString(MARGIN, PAGE_HEIGHT - 0.5 * inch, f"Progress report · {running}")
            canvas.line(MARGIN, PAGE_HEIGHT - 0.56 * inch, PAGE_WIDTH - MARGIN, PAGE_HEIGHT - 0.56 * inch)
        canvas.line(MARGIN, 0.62 * inch, PAGE_WIDTH - MARGIN, 0.62 * inch)
        canvas.drawString(MARGIN, 0.45 * inch, f"{data.organization} · Confidential: protected health information")
        canvas.restoreState()

    return draw


def pdf(data: ReportData) -> bytes:
    """The whole report as PDF bytes."""
    zone = ZoneInfo(data.patient.timezone)
    buffer = io.BytesIO()
    document = BaseDocTemplate(
        buffer, pagesize=LETTER, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=0.75 * inch,
        bottomMargin=0.85 * inch, title=f"Progress report: {data.patient.full_name}", author=data.organization,
        subject=f"{day(data.date_from)} – {day(data.date_to)}", creator="Calmtrack", invariant=False,
    )
    frame = Frame(document.leftMargin, document.bottomMargin, document.width, document.height, id="body",
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    document.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=_furniture(data))])
    story = [
        *title_block(data, zone),
        *plan_section(data.plan, data.instrument_names),
        *outcomes_section(data.charts, zone),
        *charts_section(data.charts, zone),
        *sessions_section(data.sessions, zone),
        *notes_section(data.sessions, zone),
        *alerts_section(data.alerts, zone),
    ]
    document.build(story, canvasmaker=_NumberedCanvas)
    return buffer.getvalue()
