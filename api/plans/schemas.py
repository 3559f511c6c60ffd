"""Treatment plan request and response models, with the clinical vocabulary and bounds (docs/plans.md).

Request models validate everything a plan may contain; a rule that spans fields raises its problem at the field
that has to change (e.g. ["protocol", "dose", "unit"] for esketamine dosed in mg/kg). Response models are
allow-lists without bounds, so a plan stored under older rules can always be read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
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
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from api.instruments.schemas import InstrumentCode, InstrumentCodeEnum
from api.sync import WATERMARK
from api.instruments.registry import INSTRUMENTS, get_instrument
from api.pagination import Page
from api.types import RequestModel, diastolic_below, rule_errors, trimmed_text, with_example
from models.plans import PlanStatus


class Medication(StrEnum):
    ketamine = "ketamine"
    esketamine = "esketamine"


class Route(StrEnum):
    iv = "iv"
    im = "im"
    intranasal = "intranasal"
    oral = "oral"
    sublingual = "sublingual"
    subcutaneous = "subcutaneous"


class DoseUnit(StrEnum):
    mg_per_kg = "mg/kg"
    mg = "mg"


class AdjunctKind(StrEnum):
    cbt = "cbt"
    psychotherapy = "psychotherapy"
    integration = "integration"
    mindfulness = "mindfulness"
    medication = "medication"
    other = "other"


class PriorTreatmentKind(StrEnum):
    ssri = "ssri"
    snri = "snri"
    tca = "tca"
    maoi = "maoi"
    bupropion = "bupropion"
    mirtazapine = "mirtazapine"
    buspirone = "buspirone"
    benzodiazepine = "benzodiazepine"
    pregabalin = "pregabalin"
    antipsychotic_augmentation = "antipsychotic_augmentation"
    lithium = "lithium"
    psychotherapy = "psychotherapy"
    ect = "ect"
    tms = "tms"
    ketamine = "ketamine"
    other = "other"


class TreatmentOutcome(StrEnum):
    no_response = "no_response"
    partial_response = "partial_response"
    response = "response"
    remission = "remission"
    not_tolerated = "not_tolerated"


# Treatment-resistant anxiety (domain.md): at least two adequate trials of first-line treatment without response.
# First-line for anxiety disorders (NICE CG113, WFSBP): SSRIs, SNRIs, pregabalin and CBT-based psychotherapy.
# Benzodiazepines, buspirone, augmentation and other agents do not count, however many were tried.
FIRST_LINE_KINDS = frozenset({PriorTreatmentKind.ssri, PriorTreatmentKind.snri, PriorTreatmentKind.pregabalin,
                              PriorTreatmentKind.psychotherapy})
# An adequate trial ending in one of these is a failed trial. Intolerance does not count: it says nothing about
# whether the treatment works.
FAILED_TRIAL_OUTCOMES = frozenset({TreatmentOutcome.no_response, TreatmentOutcome.partial_response})
TREATMENT_RESISTANT_AFTER = 2


class Contraindication(StrEnum):
    """Contraindications assessed before ketamine (domain.md); any one blocks activation without an override."""

    uncontrolled_hypertension = "uncontrolled_hypertension"
    aneurysmal_vascular_disease = "aneurysmal_vascular_disease"
    arteriovenous_malformation = "arteriovenous_malformation"
    intracerebral_hemorrhage_history = "intracerebral_hemorrhage_history"
    psychosis = "psychosis"
    active_substance_use = "active_substance_use"
    pregnancy = "pregnancy"
    unstable_cardiovascular_disease = "unstable_cardiovascular_disease"
    severe_hepatic_impairment = "severe_hepatic_impairment"
    hypersensitivity = "hypersensitivity"


# Upper dose bounds per unit: well above any subanaesthetic protocol (0.25–1 mg/kg), below anaesthetic use.
MAX_DOSE = {DoseUnit.mg_per_kg: 2.0, DoseUnit.mg: 500.0}
ESKETAMINE_MAX_MG = 84.0  # the Spravato label's largest session dose (56 or 84 mg)
MAX_INFUSION_MINUTES = 240
MAX_PHASES, MAX_PHASE_SESSIONS, MAX_INTERVAL_DAYS = 10, 100, 365
MAX_GOALS = MAX_ADJUNCTS = 20
MAX_ASSESSMENT_INTERVAL_DAYS = 90
MAX_PRIOR_TREATMENTS = 50
SYSTOLIC_RANGE, DIASTOLIC_RANGE = (90, 250), (50, 150)
EARLIEST_DATE, LATEST_DATE = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
MAX_REASON = 1000


def _problems(*problems: tuple[tuple[str | int, ...], str]) -> ValidationError:
    return rule_errors("plan", *problems)


def _plausible_date(value: dt.date) -> dt.date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise PydanticCustomError("date_range", "Must be between 2000-01-01 and 2100-12-31")
    return value


def _not_in_future(value: dt.date) -> dt.date:
    # A day of tolerance: the clinic's today can be the server's tomorrow (UTC+14).
    if value > dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1):
        raise PydanticCustomError("date_in_future", "An assessment cannot be dated in the future")
    return value


def _repeated(values: Iterable[Any]) -> list[int]:
    """Indexes of the values that already occurred earlier in the sequence."""
    seen: set[Any] = set()
    repeated = []
    for index, value in enumerate(values):
        if value in seen:
            repeated.append(index)
        seen.add(value)
    return repeated


_text = trimmed_text
Title, Indication, PhaseName, GoalDescription = _text(200), _text(1000), _text(50), _text(500)
Frequency, Provider, TreatmentName, Notes, Reason = _text(100), _text(200), _text(200), _text(2000), _text(MAX_REASON)
PlanDate = Annotated[dt.date, AfterValidator(_plausible_date)]


# --- requests ------------------------------------------------------------------------------------------------


class Dose(RequestModel):
    unit: DoseUnit
    amount: StrictFloat = Field(gt=0, description="mg/kg ≤ 2.0, mg ≤ 500 (esketamine ≤ 84 mg)")

    @field_validator("amount")
    @classmethod
    def _within_unit_bound(cls, amount: float, info: ValidationInfo) -> float:
        unit = info.data.get("unit")
        if unit is not None and amount > MAX_DOSE[unit]:
            raise PydanticCustomError("dose_too_high", "Must not exceed {limit} {unit}",
                                      {"limit": MAX_DOSE[unit], "unit": unit.value})
        return amount


class Phase(RequestModel):
    name: PhaseName
    sessions: StrictInt = Field(ge=1, le=MAX_PHASE_SESSIONS)
    interval_days: StrictInt = Field(ge=1, le=MAX_INTERVAL_DAYS, description="Days between sessions")


class Protocol(RequestModel):
    medication: Medication
    route: Route
    dose: Dose
    infusion_minutes: StrictInt | None = Field(
        default=None, ge=1, le=MAX_INFUSION_MINUTES, description="Required for iv, refused for other routes"
    )
    phases: list[Phase] = Field(min_length=1, max_length=MAX_PHASES)

    @field_validator("phases")
    @classmethod
    def _unique_names(cls, phases: list[Phase]) -> list[Phase]:
        repeated = _repeated(phase.name.casefold() for phase in phases)
        if repeated:
            raise _problems(*[((index, "name"), "Phase names must be unique") for index in repeated])
        return phases

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        if self.medication == Medication.esketamine:
            if self.route != Route.intranasal:
                problems.append((("route",), "Esketamine is only given intranasally"))
            if self.dose.unit != DoseUnit.mg:
                problems.append((("dose", "unit"), "Esketamine is dosed in mg"))
            elif self.dose.amount > ESKETAMINE_MAX_MG:
                problems.append((("dose", "amount"), f"Esketamine must not exceed {ESKETAMINE_MAX_MG:g} mg"))
        if self.route == Route.iv and self.infusion_minutes is None:
            problems.append((("infusion_minutes",), "Required for an iv infusion"))
        if self.route != Route.iv and self.infusion_minutes is not None:
            problems.append((("infusion_minutes",), "Only applies to the iv route"))
        if problems:
            raise _problems(*problems)
        return self


class Goal(RequestModel):
    description: GoalDescription
    instrument: InstrumentCode
    target_total: StrictInt = Field(description="Within the instrument's total range")
    by_date: PlanDate | None = Field(default=None, description="On or after the plan's start_date")

    @field_validator("target_total")
    @classmethod
    def _within_instrument_range(cls, total: int, info: ValidationInfo) -> int:
        instrument = get_instrument(info.data.get("instrument", ""))
        if instrument is not None and not instrument.total_min <= total <= instrument.total_max:
            raise PydanticCustomError("target_out_of_range", "{name} totals range from {low} to {high}",
                                      {"name": instrument.name, "low": instrument.total_min,
                                       "high": instrument.total_max})
        return total


class AdjunctTherapy(RequestModel):
    kind: AdjunctKind
    frequency: Frequency | None = Field(default=None, description="Free text, e.g. weekly")
    provider: Provider | None = None


class AssessmentSchedule(RequestModel):
    instrument: InstrumentCode
    every_days: StrictInt = Field(ge=1, le=MAX_ASSESSMENT_INTERVAL_DAYS)


class Safety(RequestModel):
    """Pre-dose blood-pressure hold thresholds (mmHg): a session above either one is flagged."""

    max_systolic: StrictInt = Field(ge=SYSTOLIC_RANGE[0], le=SYSTOLIC_RANGE[1])
    max_diastolic: StrictInt = Field(ge=DIASTOLIC_RANGE[0], le=DIASTOLIC_RANGE[1])

    _diastolic_below_systolic = diastolic_below("max_systolic", "max_diastolic")


class PriorTreatment(RequestModel):
    name: TreatmentName
    kind: PriorTreatmentKind
    adequate_trial: StrictBool = Field(description="Adequate dose for an adequate duration")
    outcome: TreatmentOutcome


class Suitability(RequestModel):
    assessed_at: Annotated[PlanDate, AfterValidator(_not_in_future)]
    contraindications: list[Contraindication] = Field(default=[], max_length=len(Contraindication))
    notes: Notes | None = Field(default=None, description="Clinician-only: never shown to the patient")

    @field_validator("contraindications")
    @classmethod
    def _listed_once(cls, codes: list[Contraindication]) -> list[Contraindication]:
        repeated = _repeated(codes)
        if repeated:
            raise _problems(*[((index,), "Listed twice") for index in repeated])
        return codes


def _goal_dates(start_date: dt.date, goals: list[Goal]) -> None:
    late = [index for index, goal in enumerate(goals) if goal.by_date is not None and goal.by_date < start_date]
    if late:
        raise _problems(*[(("goals", index, "by_date"), "Must not be before the plan's start_date") for index in late])


def _instrument_scheduled_once(schedules: list[AssessmentSchedule]) -> list[AssessmentSchedule]:
    repeated = _repeated(schedule.instrument for schedule in schedules)
    if repeated:
        raise _problems(*[((index, "instrument"), "This instrument is already scheduled") for index in repeated])
    return schedules


Goals = Annotated[list[Goal], Field(max_length=MAX_GOALS)]
Adjuncts = Annotated[list[AdjunctTherapy], Field(max_length=MAX_ADJUNCTS)]
Assessments = Annotated[list[AssessmentSchedule], Field(max_length=len(INSTRUMENTS)),
                        AfterValidator(_instrument_scheduled_once)]
PriorTreatments = Annotated[list[PriorTreatment], Field(max_length=MAX_PRIOR_TREATMENTS)]


class PlanCreate(RequestModel):
    """A plan's clinical content. Also what a PATCH is validated as once merged into the current plan."""

    model_config = with_example({
        "title": "Ketamine-assisted treatment for GAD", "indication": "Generalized anxiety disorder, treatment-resistant",
        "start_date": "2026-12-01",
        "protocol": {"medication": "ketamine", "route": "iv", "dose": {"amount": 0.5, "unit": "mg/kg"},
                     "infusion_minutes": 40,
                     "phases": [{"name": "induction", "sessions": 6, "interval_days": 3},
                                {"name": "maintenance", "sessions": 4, "interval_days": 28}]},
        "goals": [{"description": "Remission of anxiety", "instrument": "gad7", "target_total": 4,
                   "by_date": "2027-03-01"}],
        "adjunct_therapies": [{"kind": "cbt", "frequency": "weekly", "provider": "Dr. Rivera"}],
        "assessments": [{"instrument": "gad7", "every_days": 7}, {"instrument": "phq9", "every_days": 14}],
        "safety": {"max_systolic": 160, "max_diastolic": 100},
        "prior_treatments": [{"name": "sertraline", "kind": "ssri", "adequate_trial": True, "outcome": "no_response"},
                             {"name": "venlafaxine", "kind": "snri", "adequate_trial": True,
                              "outcome": "partial_response"}],
        "suitability": {"assessed_at": "2026-11-20", "contraindications": [],
                        "notes": "BP controlled; no psychosis history"},
    })

    title: Title
    indication: Indication
    start_date: PlanDate
    protocol: Protocol
    goals: Goals = []
    adjunct_therapies: Adjuncts = []
    assessments: Assessments = []
    safety: Safety | None = Field(default=None, description="null: the organization's default thresholds")
    prior_treatments: PriorTreatments = []
    suitability: Suitability | None = Field(default=None, description="null: not assessed; activation needs one")

    @model_validator(mode="after")
    def _goals_after_start(self) -> Self:
        _goal_dates(self.start_date, self.goals)
        return self


CONTENT_FIELDS = tuple(PlanCreate.model_fields)
NULLABLE_FIELDS = frozenset({"safety", "suitability"})


class PlanUpdate(RequestModel):
    """JSON merge patch per top-level field: a field sent replaces the whole field; `safety` and `suitability`
    may be cleared with null; fields not sent stay as they are. The status has its own endpoint."""

    title: Title | None = None
    indication: Indication | None = None
    start_date: PlanDate | None = None
    protocol: Protocol | None = None
    goals: Goals | None = None
    adjunct_therapies: Adjuncts | None = None
    assessments: Assessments | None = None
    safety: Safety | None = None
    prior_treatments: PriorTreatments | None = None
    suitability: Suitability | None = None
    status: SkipJsonSchema[Any] = Field(default=None, exclude=True)

    @field_validator("status", mode="before")
    @classmethod
    def _status_has_its_own_endpoint(cls, _value: Any) -> None:
        raise PydanticCustomError("status_not_patchable", "Change the status with POST /v1/plans/{plan_id}/status")

    @model_validator(mode="after")
    def _required_stay_set(self) -> Self:
        cleared = [name for name in self.model_fields_set - NULLABLE_FIELDS if getattr(self, name) is None]
        if cleared:
            raise _problems(*[((name,), "Cannot be null") for name in sorted(cleared)])
        return self


class StatusChange(RequestModel):
    status: PlanStatus
    reason: Reason | None = Field(default=None, description="Why, recorded in the revision history")
    override_reason: Reason | None = Field(
        default=None, description="Activating despite listed contraindications: the clinician's justification"
    )

    @field_validator("override_reason")
    @classmethod
    def _only_when_activating(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("status") not in (PlanStatus.active, None):
            raise PydanticCustomError("override_not_activation", "Only applies when activating a plan")
        return value


# --- responses -----------------------------------------------------------------------------------------------


class DosePublic(BaseModel):
    unit: DoseUnit
    amount: float


class PhasePublic(BaseModel):
    name: str
    sessions: int
    interval_days: int


class ProtocolPublic(BaseModel):
    medication: Medication
    route: Route
    dose: DosePublic
    infusion_minutes: int | None
    phases: list[PhasePublic]


class GoalPublic(BaseModel):
    description: str
    instrument: InstrumentCodeEnum
    target_total: int
    by_date: dt.date | None


class AdjunctTherapyPublic(BaseModel):
    kind: AdjunctKind
    frequency: str | None
    provider: str | None


class AssessmentSchedulePublic(BaseModel):
    instrument: InstrumentCodeEnum
    every_days: int


class SafetyPublic(BaseModel):
    max_systolic: int
    max_diastolic: int


class PriorTreatmentPublic(BaseModel):
    name: str
    kind: PriorTreatmentKind
    adequate_trial: bool
    outcome: TreatmentOutcome


class PatientSuitabilityPublic(BaseModel):
    assessed_at: dt.date
    contraindications: list[Contraindication]


class SuitabilityPublic(PatientSuitabilityPublic):
    notes: str | None


class PatientPlanPublic(BaseModel):
    """What the patient sees of their own plan: everything but clinician-only notes."""

    id: uuid.UUID
    patient_id: uuid.UUID
    status: PlanStatus
    revision: int
    title: str
    indication: str
    start_date: dt.date
    protocol: ProtocolPublic
    goals: list[GoalPublic]
    adjunct_therapies: list[AdjunctTherapyPublic]
    assessments: list[AssessmentSchedulePublic]
    safety: SafetyPublic | None
    prior_treatments: list[PriorTreatmentPublic]
    suitability: PatientSuitabilityPublic | None
    treatment_resistant: bool = Field(
        description="At least two adequate first-line trials (ssri, snri, pregabalin, psychotherapy) ending in "
                    "no_response or partial_response (derived)"
    )
    treatment_resistance_trials: list[int] = Field(
        description="Indexes in prior_treatments of the trials that count toward treatment_resistant (derived)"
    )
    created_by: uuid.UUID
    created_at: dt.datetime
    updated_by: uuid.UUID
    updated_at: dt.datetime


class PlanPublic(PatientPlanPublic):
    """The care team's and admins' view."""

    suitability: SuitabilityPublic | None


PlanView = PlanPublic | PatientPlanPublic


class PlanMinimal(BaseModel):
    """The plan's creation answered under `Prefer: return=minimal`: id and status only."""

    id: uuid.UUID
    status: PlanStatus


class PlanPage(Page[PlanView]):
    sync_watermark: dt.datetime = Field(description=WATERMARK)


class FieldChange(BaseModel):
    field: str
    before: Any = Field(description="null on creation")
    after: Any


class PlanRevisionPublic(BaseModel):
    plan_id: uuid.UUID
    revision: int
    kind: str = Field(description="create | update | status")
    changed_by: uuid.UUID
    changed_at: dt.datetime
    changes: list[FieldChange]
    reason: str | None
    override_reason: str | None
    overridden_contraindications: list[Contraindication] | None


class PlanRevisionPage(Page[PlanRevisionPublic]):
    pass
