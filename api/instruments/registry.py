"""The validated self-report instruments, as published (see ../shared/design/domain.md for sources).

Adding an instrument is adding an `Instrument(...)` to `INSTRUMENTS`: scoring, validation, the API listing, and
everything built on this registry (charts, alerts, plans, FHIR export) read these fields and have no per-instrument
code paths. `Instrument.__post_init__` refuses inconsistent data at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Item:
    text: str
    loinc: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerOption:
    value: int
    label: str


@dataclass(frozen=True, slots=True)
class Band:
    """A published severity band; both bounds inclusive."""

    label: str
    min: int
    max: int


@dataclass(frozen=True, slots=True)
class Scored:
    total: int
    severity: str | None
    # Indexes of the instrument's urgent items answered above the minimum (PHQ-9 item 9): same-day attention.
    urgent_items: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Instrument:
    code: str
    name: str
    description: str
    # The stem shown above the items, including the recall period.
    prompt: str
    items: tuple[Item, ...]  # in published order
    item_min: int
    item_max: int
    # Labelled answer values; for a rating scale (SUDS) only the labelled anchors of the range.
    answer_options: tuple[AnswerOption, ...]
    citation: str
    bands: tuple[Band, ...] = ()  # contiguous, covering the total range; empty when the instrument has none
    positive_screen_threshold: int | None = None  # total ≥ threshold is a positive screen
    clinically_meaningful_change: int | None = None  # minimal clinically important difference, in points
    remission_below: int | None = None  # total < this is remission
    # Response and remission are judged from a baseline of at least this total (the lowest non-minimal band): below
    # it there is nothing to respond or remit from. None: never judged (a screen, a momentary rating).
    response_baseline_min: int | None = None
    urgent_items: tuple[int, ...] = ()  # item indexes where any answer above item_min needs same-day attention
    loinc_panel: str | None = None
    loinc_total: str | None = None

    def __post_init__(self) -> None:
        if not self.items or self.item_min >= self.item_max:
            raise ValueError(f"{self.code}: needs items and a non-empty item range")
        if any(not self.item_min <= option.value <= self.item_max for option in self.answer_options):
            raise ValueError(f"{self.code}: answer option outside the item range")
        if any(not 0 <= index < len(self.items) for index in self.urgent_items):
            raise ValueError(f"{self.code}: urgent item index out of range")
        if self.response_baseline_min is not None and self.remission_below is None:
            raise ValueError(f"{self.code}: an instrument judged for response needs a remission threshold")
        if self.bands:
            expected = self.total_min
            for band in self.bands:
                if band.min != expected or band.max < band.min:
                    raise ValueError(f"{self.code}: bands must be contiguous from the minimum total")
                expected = band.max + 1
            if expected != self.total_max + 1:
                raise ValueError(f"{self.code}: bands must end at the maximum total")

    @property
    def item_count(self) -> int:
        return len(self.items)

    @property
    def total_min(self) -> int:
        return self.item_min * len(self.items)

    @property
    def total_max(self) -> int:
        return self.item_max * len(self.items)

    def severity(self, total: int) -> str | None:
        for band in self.bands:
            if band.min <= total <= band.max:
                return band.label
        return None

    def item_problems(self, items: Sequence[int]) -> list[tuple[tuple[int, ...], str]]:
        """What is wrong with an answer vector, as (location within `items`, message) pairs; empty when valid."""
        if len(items) != len(self.items):
            return [((), f"{self.name} has {len(self.items)} items, got {len(items)}")]
        return [
            ((index,), f"{self.name} item {index + 1} must be between {self.item_min} and {self.item_max}")
            for index, value in enumerate(items)
            if not self.item_min <= value <= self.item_max
        ]

    def score(self, items: Sequence[int]) -> Scored:
        """Total, severity band and urgent answers of a valid answer vector (see `item_problems`)."""
        problems = self.item_problems(items)
        if problems:
            raise ValueError(problems[0][1])
        total = sum(items)
        return Scored(total=total, severity=self.severity(total), urgent_items=self.urgent_answers(items))

    def urgent_answers(self, items: Sequence[int]) -> tuple[int, ...]:
        return tuple(index for index in self.urgent_items if items[index] > self.item_min)


# GAD-7 and PHQ-9 share the answer scale and the two-week recall period.
_FREQUENCY = (
    AnswerOption(0, "Not at all"),
    AnswerOption(1, "Several days"),
    AnswerOption(2, "More than half the days"),
    AnswerOption(3, "Nearly every day"),
)
_TWO_WEEKS = "Over the last 2 weeks, how often have you been bothered by the following problems?"

_GAD7_ITEMS = (
    Item("Feeling nervous, anxious, or on edge"),
    Item("Not being able to stop or control worrying"),
    Item("Worrying too much about different things"),
    Item("Trouble relaxing"),
    Item("Being so restless that it is hard to sit still"),
    Item("Becoming easily annoyed or irritable"),
    Item("Feeling afraid, as if something awful might happen"),
)

GAD7 = Instrument(
    code="gad7",
    name="GAD-7",
    description="Generalized Anxiety Disorder 7-item scale: severity of anxiety symptoms.",
    prompt=_TWO_WEEKS,
    items=_GAD7_ITEMS,
    item_min=0,
    item_max=3,
    answer_options=_FREQUENCY,
    citation="Spitzer RL, Kroenke K, Williams JBW, Löwe B. Arch Intern Med 2006;166:1092-1097.",
    bands=(Band("minimal", 0, 4), Band("mild", 5, 9), Band("moderate", 10, 14), Band("severe", 15, 21)),
    clinically_meaningful_change=4,
    remission_below=5,
    response_baseline_min=5,
    loinc_panel="69737-5",
    loinc_total="70274-6",
)

PHQ9 = Instrument(
    code="phq9",
    name="PHQ-9",
    description="Patient Health Questionnaire 9-item depression scale.",
    prompt=_TWO_WEEKS,
    items=(
        Item("Little interest or pleasure in doing things"),
        Item("Feeling down, depressed, or hopeless"),
        Item("Trouble falling or staying asleep, or sleeping too much"),
        Item("Feeling tired or having little energy"),
        Item("Poor appetite or overeating"),
        Item("Feeling bad about yourself, or that you are a failure or have let yourself or your family down"),
        Item("Trouble concentrating on things, such as reading the newspaper or watching television"),
        Item("Moving or speaking so slowly that other people could have noticed, or the opposite: being so "
             "fidgety or restless that you have been moving around a lot more than usual"),
        Item("Thoughts that you would be better off dead, or of hurting yourself in some way", loinc="44260-8"),
    ),
    item_min=0,
    item_max=3,
    answer_options=_FREQUENCY,
    citation="Kroenke K, Spitzer RL, Williams JBW. J Gen Intern Med 2001;16:606-613.",
    bands=(
        Band("minimal", 0, 4),
        Band("mild", 5, 9),
        Band("moderate", 10, 14),
        Band("moderately_severe", 15, 19),
        Band("severe", 20, 27),
    ),
    clinically_meaningful_change=5,
    remission_below=5,
    response_baseline_min=5,
    urgent_items=(8,),
    loinc_panel="44249-1",
    loinc_total="44261-6",
)

# GAD-2 is a screen, not a severity scale: its two "bands" are the screen result, so `severity` reads
# negative_screen / positive_screen like any other instrument's band. LOINC codes not yet verified: left out.
GAD2 = Instrument(
    code="gad2",
    name="GAD-2",
    description="Generalized Anxiety Disorder 2-item screen (the first two GAD-7 items).",
    prompt=_TWO_WEEKS,
    items=_GAD7_ITEMS[:2],
    item_min=0,
    item_max=3,
    answer_options=_FREQUENCY,
    citation="Kroenke K, Spitzer RL, Williams JBW, Monahan PO, Löwe B. Ann Intern Med 2007;146:317-325.",
    bands=(Band("negative_screen", 0, 2), Band("positive_screen", 3, 6)),
    positive_screen_threshold=3,
)

SUDS = Instrument(
    code="suds",
    name="SUDS",
    description="Subjective Units of Distress Scale: a single 0-100 rating, e.g. before and after a session.",
    prompt="How much distress do you feel right now?",
    items=(Item("Your distress right now, from 0 (none) to 100 (the worst you can imagine)"),),
    item_min=0,
    item_max=100,
    answer_options=(AnswerOption(0, "No distress, totally calm"), AnswerOption(100, "The worst distress imaginable")),
    citation="Wolpe J. The Practice of Behavior Therapy. Pergamon, 1969.",
)

INSTRUMENTS: dict[str, Instrument] = {instrument.code: instrument for instrument in (GAD7, PHQ9, GAD2, SUDS)}


def get_instrument(code: str) -> Instrument | None:
    return INSTRUMENTS.get(code)
