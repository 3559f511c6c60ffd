from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator
from pydantic_core import PydanticCustomError

from api.instruments.registry import INSTRUMENTS, Instrument


def _registered(code: object) -> object:
    # Before the enum's own check, so an unknown code answers the list of known ones with its own error type.
    if isinstance(code, str) and code not in INSTRUMENTS:
        raise PydanticCustomError("unknown_instrument", "Unknown instrument; one of: {known}",
                                  {"known": ", ".join(INSTRUMENTS)})
    return code


# One enum per value set, built from the registry, so that the OpenAPI document has ONE component for each (and a
# generated client one type) instead of an inline enum per field and parameter. Members are StrEnum: they compare,
# hash, format and store as their plain string values.
InstrumentCodeEnum = StrEnum("InstrumentCode", {code.upper(): code for code in INSTRUMENTS})
InstrumentCodeEnum.__doc__ = "A registered instrument's code (GET /v1/instruments)."
ScoreSeverity = StrEnum("ScoreSeverity", {label.upper(): label for label in dict.fromkeys(
    band.label for instrument in INSTRUMENTS.values() for band in instrument.bands)})
ScoreSeverity.__doc__ = ("A severity band's label: a score's severity, and the label of an instrument's band (GAD-2's "
                         "two bands are its screen result).")

# A registered instrument's code, in any request (scores, plan goals and schedules, charts) and answer.
InstrumentCode = Annotated[InstrumentCodeEnum, BeforeValidator(_registered)]


class ItemPublic(BaseModel):
    index: int  # 0-based position in `items` of a score
    text: str
    loinc: str | None
    urgent: bool


class AnswerOptionPublic(BaseModel):
    value: int
    label: str


class BandPublic(BaseModel):
    label: ScoreSeverity
    min: int
    max: int


class InstrumentPublic(BaseModel):
    code: InstrumentCodeEnum
    name: str
    description: str
    prompt: str
    citation: str
    items: list[ItemPublic]
    answer_options: list[AnswerOptionPublic]
    item_min: int
    item_max: int
    total_min: int
    total_max: int
    bands: list[BandPublic]
    positive_screen_threshold: int | None
    clinically_meaningful_change: int | None
    remission_below: int | None
    response_baseline_min: int | None
    urgent_items: list[int]
    loinc_panel: str | None
    loinc_total: str | None

    @classmethod
    def of(cls, instrument: Instrument) -> InstrumentPublic:
        return cls(
            code=instrument.code,
            name=instrument.name,
            description=instrument.description,
            prompt=instrument.prompt,
            citation=instrument.citation,
            items=[ItemPublic(index=i, text=item.text, loinc=item.loinc, urgent=i in instrument.urgent_items)
                   for i, item in enumerate(instrument.items)],
            answer_options=[AnswerOptionPublic(value=o.value, label=o.label) for o in instrument.answer_options],
            item_min=instrument.item_min,
            item_max=instrument.item_max,
            total_min=instrument.total_min,
            total_max=instrument.total_max,
            bands=[BandPublic(label=b.label, min=b.min, max=b.max) for b in instrument.bands],
            positive_screen_threshold=instrument.positive_screen_threshold,
            clinically_meaningful_change=instrument.clinically_meaningful_change,
            remission_below=instrument.remission_below,
            response_baseline_min=instrument.response_baseline_min,
            urgent_items=list(instrument.urgent_items),
            loinc_panel=instrument.loinc_panel,
            loinc_total=instrument.loinc_total,
        )


class InstrumentList(BaseModel):
    """The whole registry in one answer (it is small and fixed), in the list shape of every other list."""

    items: list[InstrumentPublic]
    next_cursor: None = None
