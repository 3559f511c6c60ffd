"""Supervised dosing session request and response models, with the physiologic ranges (docs/sessions.md).

Request models validate everything a session record may contain; a rule that spans fields raises its problem at the
field that has to change (e.g. ["vitals", 2, "at"] for a reading outside the session's time window). Response
models are allow-lists without bounds, so a session stored under older rules can always be read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)

from api.sync import WATERMARK
from api.pagination import Page
from api.plans.schemas import Medication, Route
from api.scores.schemas import RecordedAt
from api.types import RequestModel, diastolic_below, rule_errors, trimmed_text, with_example
from models.dosing_sessions import SessionStatus

MAX_SESSION_LENGTH = dt.timedelta(hours=12)
# Vitals and adverse events may be recorded this long before dosing starts and after the session ends.
TIME_WINDOW_MARGIN = dt.timedelta(hours=2)
MAX_DOSE_MG = 500.0  # above any subanaesthetic ketamine dose for a 300 kg patient at 1 mg/kg; catches unit slips
WEIGHT_KG = (20.0, 300.0)
SYSTOLIC, DIASTOLIC, HEART_RATE, SPO2, RESPIRATORY_RATE = (50, 300), (20, 200), (20, 250), (50, 100), (4, 60)
CADSS, MOAAS, SUDS = (0, 92), (0, 5), (0, 100)
MAX_VITALS, MAX_ADVERSE_EVENTS = 200, 50


class VitalPhase(StrEnum):
    pre = "pre"
    during = "during"
    post = "post"


class AdverseEventKind(StrEnum):
    nausea = "nausea"
    vomiting = "vomiting"
    hypertension = "hypertension"
    tachycardia = "tachycardia"
    dissociation = "dissociation"
    anxiety = "anxiety"
    headache = "headache"
    dizziness = "dizziness"
    sedation = "sedation"
    respiratory_depression = "respiratory_depression"
    other = "other"


class WarningCode(StrEnum):
    """The server's session warnings, in the order a session lists them (docs/sessions.md)."""

    pre_dose_bp_missing = "pre_dose_bp_missing"
    pre_dose_bp_above_threshold = "pre_dose_bp_above_threshold"
    bp_above_threshold_after_dose = "bp_above_threshold_after_dose"
    post_dose_bp_recheck_missing = "post_dose_bp_recheck_missing"
    session_before_plan_start = "session_before_plan_start"
    protocol_differs_from_plan = "protocol_differs_from_plan"
    weight_missing_for_weight_based_dose = "weight_missing_for_weight_based_dose"
    dose_exceeds_plan = "dose_exceeds_plan"
    dose_above_ceiling = "dose_above_ceiling"
    observation_shorter_than_required = "observation_shorter_than_required"
    discharge_criteria_not_met = "discharge_criteria_not_met"
    severe_adverse_event = "severe_adverse_event"


class AdverseEventSeverity(StrEnum):
    mild = "mild"
    moderate = "moderate"
    severe = "severe"


def _rule_errors(*problems: tuple[tuple[str | int, ...], str]) -> ValidationError:
    return rule_errors("session", *problems)


def _range(bounds: tuple[float, float]) -> Any:
    return Field(ge=bounds[0], le=bounds[1])


Notes, AddendumText, Reason, Action, Description, Person = (
    trimmed_text(10_000), trimmed_text(10_000), trimmed_text(1000), trimmed_text(1000), trimmed_text(500),
    trimmed_text(200))
# RFC 3339 with an offset, not before 2000 nor more than 5 minutes in the future (as scores), answered in UTC.
Instant = Annotated[RecordedAt, AfterValidator(lambda value: value.astimezone(dt.UTC))]
DoseMg = Annotated[StrictFloat, Field(gt=0, le=MAX_DOSE_MG, description="The dose given, in mg")]
WeightKg = Annotated[StrictFloat, _range(WEIGHT_KG)]
Cadss = Annotated[StrictInt, _range(CADSS), Field(description="CADSS total: 23 items scored 0–4")]
Moaas = Annotated[StrictInt, _range(MOAAS), Field(description="MOAA/S: 5 responds readily to name … 0 no response")]
Suds = Annotated[StrictInt, _range(SUDS)]


# --- requests ------------------------------------------------------------------------------------------------


class VitalSign(RequestModel):
    at: Instant
    phase: VitalPhase
    systolic: StrictInt = _range(SYSTOLIC)
    diastolic: StrictInt = Field(ge=DIASTOLIC[0], le=DIASTOLIC[1], description="Below systolic")
    heart_rate: StrictInt = _range(HEART_RATE)
    spo2: StrictInt = _range(SPO2)
    respiratory_rate: StrictInt | None = Field(default=None, ge=RESPIRATORY_RATE[0], le=RESPIRATORY_RATE[1])

    _diastolic_below_systolic = diastolic_below("systolic", "diastolic")


class AdverseEvent(RequestModel):
    kind: AdverseEventKind
    severity: AdverseEventSeverity
    action: Action = Field(description="What was done, e.g. 'ondansetron 4 mg' or 'observed, resolved'")
    description: Description | None = Field(default=None, description="Required when kind is other")
    at: Instant | None = None

    @model_validator(mode="after")
    def _other_is_described(self) -> Self:
        if self.kind == AdverseEventKind.other and self.description is None:
            raise _rule_errors((("description",), "Describe an adverse event of kind other"))
        return self


class Discharge(RequestModel):
    at: Instant = Field(description="Not before started_at")
    criteria_met: StrictBool
    accompanied_by: Person | None = Field(default=None, description="Who took the patient home (no driving today)")


class SessionCreate(RequestModel):
    """A session record's content. Also what a PATCH is validated as once merged into the stored draft."""

    model_config = with_example({
        "plan_id": "3f2a9c1e-6b7d-4e8f-9a0b-1c2d3e4f5a6b", "supervising_clinician_id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
        "started_at": "2026-12-01T09:00:00-05:00", "ended_at": "2026-12-01T11:10:00-05:00",
        "medication": "ketamine", "route": "iv", "dose_mg": 35.0, "weight_kg": 70.0,
        "vitals": [{"at": "2026-12-01T08:55:00-05:00", "phase": "pre", "systolic": 128, "diastolic": 82,
                    "heart_rate": 74, "spo2": 98}],
        "dissociation_cadss": 18, "sedation_moaas": 5, "pre_suds": 70, "post_suds": 30,
        "adverse_events": [{"kind": "nausea", "severity": "mild", "action": "ondansetron 4 mg"}],
        "notes": "clinician-only", "discharge": {"at": "2026-12-01T11:10:00-05:00", "criteria_met": True},
    })

    plan_id: uuid.UUID | None = Field(
        description="The patient's active plan; null (sent explicitly) for an unplanned session, with a reason")
    unplanned_reason: Reason | None = Field(default=None, description="Required, and only allowed, without plan_id")
    supervising_clinician_id: uuid.UUID = Field(description="An active clinician on the patient's care team")
    started_at: Instant = Field(description="When dosing started")
    ended_at: Instant | None = Field(default=None, description="After started_at, at most 12 h later; needed to sign")
    medication: Medication
    route: Route
    dose_mg: DoseMg
    weight_kg: WeightKg | None = Field(default=None, description="kg; needed to check an mg/kg plan's dose")
    vitals: list[VitalSign] = Field(default=[], max_length=MAX_VITALS)
    dissociation_cadss: Cadss | None = None
    sedation_moaas: Moaas | None = None
    pre_suds: Suds | None = None
    post_suds: Suds | None = None
    adverse_events: list[AdverseEvent] = Field(default=[], max_length=MAX_ADVERSE_EVENTS)
    notes: Notes | None = Field(default=None, description="Clinician-only: never shown to the patient")
    discharge: Discharge | None = Field(default=None, description="Needed to sign")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = [*self._plan_link_problems(), *self._time_problems()]
        if self.medication == Medication.esketamine and self.route != Route.intranasal:
            problems.append((("route",), "Esketamine is only given intranasally"))
        if problems:
            raise _rule_errors(*problems)
        return self

    def _plan_link_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        if self.plan_id is None and self.unplanned_reason is None:
            return [(("unplanned_reason",), "Required for an unplanned session (plan_id null)")]
        if self.plan_id is not None and self.unplanned_reason is not None:
            return [(("unplanned_reason",), "Only for unplanned sessions (plan_id null)")]
        return []

    def _time_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if self.ended_at is not None and self.ended_at <= self.started_at:
            problems.append((("ended_at",), "Must be after started_at"))
        elif self.ended_at is not None and self.ended_at - self.started_at > MAX_SESSION_LENGTH:
            problems.append((("ended_at",), "A session lasts at most 12 hours"))
        earliest, latest = self.time_window()
        window = "within 2 hours before started_at and 2 hours after the session ends"
        for index, vital in enumerate(self.vitals):
            if not earliest <= vital.at <= latest:
                problems.append((("vitals", index, "at"), f"Must be {window}"))
        for index, event in enumerate(self.adverse_events):
            if event.at is not None and not earliest <= event.at <= latest:
                problems.append((("adverse_events", index, "at"), f"Must be {window}"))
        if self.discharge is not None:
            if self.discharge.at < self.started_at:
                problems.append((("discharge", "at"), "Must not be before started_at"))
            elif self.discharge.at > latest:
                problems.append((("discharge", "at"), "Must be within 2 hours after the session ends"))
        return problems

    def time_window(self) -> tuple[dt.datetime, dt.datetime]:
        """When readings of this session may be taken: from 2 h before dosing to 2 h after the end (the longest
        possible session while no valid end is recorded, so one wrong field is reported once, at that field)."""
        longest = self.started_at + MAX_SESSION_LENGTH
        valid_end = self.ended_at is not None and self.started_at < self.ended_at <= longest
        end = self.ended_at if valid_end else longest
        return self.started_at - TIME_WINDOW_MARGIN, end + TIME_WINDOW_MARGIN


CONTENT_FIELDS = tuple(SessionCreate.model_fields)
REQUIRED_FIELDS = frozenset({"supervising_clinician_id", "started_at", "medication", "route", "dose_mg", "vitals",
                             "adverse_events"})


class SessionUpdate(RequestModel):
    """JSON merge patch per top-level field: a field sent replaces the whole field (send the full `vitals` list to
    add a reading); optional fields may be cleared with null; fields not sent stay as they are."""

    plan_id: uuid.UUID | None = None
    unplanned_reason: Reason | None = None
    supervising_clinician_id: uuid.UUID | None = None
    started_at: Instant | None = None
    ended_at: Instant | None = None
    medication: Medication | None = None
    route: Route | None = None
    dose_mg: DoseMg | None = None
    weight_kg: WeightKg | None = None
    vitals: Annotated[list[VitalSign], Field(max_length=MAX_VITALS)] | None = None
    dissociation_cadss: Cadss | None = None
    sedation_moaas: Moaas | None = None
    pre_suds: Suds | None = None
    post_suds: Suds | None = None
    adverse_events: Annotated[list[AdverseEvent], Field(max_length=MAX_ADVERSE_EVENTS)] | None = None
    notes: Notes | None = None
    discharge: Discharge | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> Self:
        cleared = [name for name in self.model_fields_set & REQUIRED_FIELDS if getattr(self, name) is None]
        if cleared:
            raise _rule_errors(*[((name,), "Cannot be null") for name in sorted(cleared)])
        return self


class AddendumCreate(RequestModel):
    text: AddendumText = Field(description="The correction or later observation, 1–10000 characters")


# --- responses -----------------------------------------------------------------------------------------------


class VitalSignPublic(BaseModel):
    at: dt.datetime
    phase: VitalPhase
    systolic: int
    diastolic: int
    heart_rate: int
    spo2: int
    respiratory_rate: int | None


class AdverseEventPublic(BaseModel):
    kind: AdverseEventKind
    severity: AdverseEventSeverity
    action: str
    description: str | None
    at: dt.datetime | None


class DischargePublic(BaseModel):
    at: dt.datetime
    criteria_met: bool
    accompanied_by: str | None


class SessionWarning(BaseModel):
    # A plain string, not the enum: a session signed under older rules keeps the codes it was signed with.
    code: str = Field(description=" | ".join(WarningCode))
    message: str


class AddendumPublic(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    text: str
    author_id: uuid.UUID
    created_at: dt.datetime


class PatientSessionPublic(BaseModel):
    """What the patient sees of their own signed session: what was given and measured, without what clinicians
    wrote for each other (notes, unplanned_reason, addenda) and without the server's warnings."""

    id: uuid.UUID
    patient_id: uuid.UUID
    status: SessionStatus
    revision: int
    plan_id: uuid.UUID | None
    supervising_clinician_id: uuid.UUID
    started_at: dt.datetime
    ended_at: dt.datetime | None
    medication: Medication
    route: Route
    dose_mg: float
    weight_kg: float | None
    vitals: list[VitalSignPublic]
    dissociation_cadss: int | None
    sedation_moaas: int | None
    pre_suds: int | None
    post_suds: int | None
    adverse_events: list[AdverseEventPublic]
    discharge: DischargePublic | None
    created_by: uuid.UUID
    created_at: dt.datetime
    updated_by: uuid.UUID
    updated_at: dt.datetime
    signed_by: uuid.UUID | None
    signed_at: dt.datetime | None


class SessionPublic(PatientSessionPublic):
    """The care team's and admins' view."""

    unplanned_reason: str | None
    notes: str | None
    warnings: list[SessionWarning] = Field(
        description="Server-computed; recomputed on every draft edit, frozen at signing")
    addenda: list[AddendumPublic] = Field(description="Oldest first")


SessionView = SessionPublic | PatientSessionPublic


class SessionMinimal(BaseModel):
    """The session's creation answered under `Prefer: return=minimal`: id and status only."""

    id: uuid.UUID
    status: SessionStatus


class SessionPage(Page[SessionView]):
    sync_watermark: dt.datetime = Field(description=WATERMARK)
