"""Server-computed safety warnings of a dosing session (docs/sessions.md lists each rule).

Pure functions of the session's content, its linked plan and its organization's defaults: the service recomputes
them on every draft edit and once more when the session is signed, after which they are frozen with the record.
"Above" and "exceeds" are strict everywhere: a reading exactly at a threshold is no warning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from api.plans.schemas import DoseUnit, Medication, Route
from api.sessions.schemas import SessionCreate, Severity, VitalPhase
from models.organizations import Organization
from models.plans import TreatmentPlan

# Esketamine label: observe for at least 2 hours after dosing, discharge only when clinically stable.
ESKETAMINE_OBSERVATION = dt.timedelta(hours=2)
# Its own alert kind (urgent) when the session is signed; every other warning raises one "session_warning" alert.
SEVERE_ADVERSE_EVENT = "severe_adverse_event"
# Doses are compared with this absolute slack (mg), so float rounding of amount × weight never warns by itself.
DOSE_TOLERANCE_MG = 1e-9


@dataclass(frozen=True)
class Thresholds:
    max_systolic: int
    max_diastolic: int
    source: str  # whose thresholds: "the plan's" or "the organization's default"


def thresholds(plan: TreatmentPlan | None, organization: Organization) -> Thresholds:
    """The plan's safety thresholds when it sets them, else the organization's defaults."""
    if plan is not None and plan.safety is not None:
        return Thresholds(plan.safety["max_systolic"], plan.safety["max_diastolic"], "the plan's")
    return Thresholds(organization.default_max_systolic, organization.default_max_diastolic,
                      "the organization's default")


def compute(content: SessionCreate, plan: TreatmentPlan | None, organization: Organization) -> list[dict[str, str]]:
    """Every warning the session raises, as [{code, message}] in a fixed order."""
    found = [
        _pre_dose_blood_pressure(content, thresholds(plan, organization)),
        *_dose_against_plan(content, plan),
        _observation_time(content),
        _discharge_criteria(content),
        _severe_adverse_events(content),
    ]
    return [warning for warning in found if warning is not None]


def _warning(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _pre_dose_blood_pressure(content: SessionCreate, limit: Thresholds) -> dict[str, str] | None:
    for vital in content.vitals:
        if vital.phase == VitalPhase.pre and (vital.systolic > limit.max_systolic
                                             or vital.diastolic > limit.max_diastolic):
            return _warning(
                "pre_dose_bp_above_threshold",
                f"Pre-dose blood pressure {vital.systolic}/{vital.diastolic} mmHg is above {limit.source} hold "
                f"threshold of {limit.max_systolic}/{limit.max_diastolic} mmHg",
            )
    return None


def _dose_against_plan(content: SessionCreate, plan: TreatmentPlan | None) -> list[dict[str, str]]:
    """The recorded dose against the plan's protocol. A session given with another medication or route than the
    plan's is flagged rather than refused (the record must say what happened), and its dose is not compared: the
    plan's dose is for its own medication and route."""
    if plan is None:
        return []
    protocol: dict[str, Any] = plan.protocol
    if (content.medication, content.route) != (protocol["medication"], protocol["route"]):
        return [_warning(
            "protocol_differs_from_plan",
            f"Given as {content.medication.value} {content.route.value}; the plan's protocol is "
            f"{Medication(protocol['medication']).value} {Route(protocol['route']).value}",
        )]
    amount, unit = protocol["dose"]["amount"], DoseUnit(protocol["dose"]["unit"])
    if unit == DoseUnit.mg:
        planned, basis = amount, f"{amount:g} mg"
    elif content.weight_kg is None:
        return [_warning("weight_missing_for_weight_based_dose",
                         f"The plan doses {amount:g} mg/kg; record weight_kg to check the dose")]
    else:
        planned, basis = amount * content.weight_kg, f"{amount:g} mg/kg × {content.weight_kg:g} kg"
    if content.dose_mg > planned + DOSE_TOLERANCE_MG:
        return [_warning("dose_exceeds_plan",
                         f"Dose {content.dose_mg:g} mg exceeds the planned {planned:g} mg ({basis})")]
    return []


def _observation_time(content: SessionCreate) -> dict[str, str] | None:
    """Intranasal esketamine needs 2 h of observation after dosing; judged once a discharge time is recorded."""
    if content.medication != Medication.esketamine or content.route != Route.intranasal or content.discharge is None:
        return None
    observed = content.discharge.at - content.started_at
    if observed < ESKETAMINE_OBSERVATION:
        minutes = int(observed.total_seconds() // 60)
        return _warning("observation_shorter_than_required",
                        f"Discharged {minutes} min after dosing; intranasal esketamine requires at least 120 min")
    return None


def _discharge_criteria(content: SessionCreate) -> dict[str, str] | None:
    if content.discharge is not None and not content.discharge.criteria_met:
        return _warning("discharge_criteria_not_met", "The patient left without meeting the discharge criteria")
    return None


def _severe_adverse_events(content: SessionCreate) -> dict[str, str] | None:
    kinds = [event.kind.value for event in content.adverse_events if event.severity == Severity.severe]
    if kinds:
        return _warning(SEVERE_ADVERSE_EVENT, f"Severe adverse event: {', '.join(kinds)}")
    return None
