"""Server-computed safety warnings of a dosing session (docs/sessions.md lists each rule with its source).

Pure functions of the session's content, its linked plan, its organization's settings and the patient's time zone:
the service recomputes them on every draft edit and once more when the session is signed, after which they are
frozen with the record. "Above" and "exceeds" are strict everywhere: a reading or dose exactly at its limit is no
warning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from api.plans.schemas import DoseUnit, Medication, Route
from api.sessions.schemas import AdverseEventSeverity, SessionCreate, VitalPhase, VitalSign, WarningCode
from models.organizations import Organization
from models.plans import TreatmentPlan

# Esketamine label: observe for at least 2 hours after dosing, discharge only when clinically stable.
ESKETAMINE_OBSERVATION = dt.timedelta(hours=2)
# The contract's recheck window: any reading from 30 minutes after dosing on (the label rechecks at about 40).
ESKETAMINE_RECHECK_FROM = dt.timedelta(minutes=30)
# Its own alert kind (urgent) when the session is signed; every other warning raises one "session_warning" alert.
SEVERE_ADVERSE_EVENT = WarningCode.severe_adverse_event.value
# Doses are compared with this absolute slack (mg), so float rounding of amount × weight never warns by itself.
DOSE_TOLERANCE_MG = 1e-9
AFTER_DOSING = {VitalPhase.during: "during", VitalPhase.post: "after"}
# Which organization setting caps each ketamine route (domain.md groups iv, im and subcutaneous).
KETAMINE_CEILINGS = {
    Route.iv: "ketamine_parenteral_max_mg_per_kg",
    Route.im: "ketamine_parenteral_max_mg_per_kg",
    Route.subcutaneous: "ketamine_parenteral_max_mg_per_kg",
    Route.oral: "ketamine_oral_max_mg_per_kg",
    Route.sublingual: "ketamine_sublingual_max_mg_per_kg",
    Route.intranasal: "ketamine_intranasal_max_mg_per_kg",
}


@dataclass(frozen=True)
class Thresholds:
    max_systolic: int
    max_diastolic: int
    source: str  # whose thresholds: "the plan's", "the esketamine label's" or "the organization's default"


# The esketamine label's "elevated" blood pressure (> 140 systolic or > 90 diastolic).
ESKETAMINE_LABEL = Thresholds(140, 90, "the esketamine label's")


def thresholds(medication: Medication, plan: TreatmentPlan | None, organization: Organization) -> Thresholds:
    """The plan's safety thresholds when it sets them; else, for esketamine, the label's; else the organization's
    defaults (a ketamine clinic's own hold thresholds)."""
    if plan is not None and plan.safety is not None:
        return Thresholds(plan.safety["max_systolic"], plan.safety["max_diastolic"], "the plan's")
    if medication == Medication.esketamine:
        return ESKETAMINE_LABEL
    return Thresholds(organization.default_max_systolic, organization.default_max_diastolic,
                      "the organization's default")


@dataclass(frozen=True)
class DoseLimit:
    """A dose a session must not exceed: the plan's or the organization's ceiling, in mg or mg/kg."""

    code: WarningCode
    amount: float
    unit: DoseUnit
    name: str  # e.g. "the plan's dose", "the organization's ceiling for ketamine iv"

    def mg(self, weight_kg: float | None) -> float | None:
        """The limit in mg for this weight; None when it is per kg and no weight is recorded."""
        if self.unit == DoseUnit.mg:
            return self.amount
        return None if weight_kg is None else self.amount * weight_kg

    def explained(self, weight_kg: float | None) -> str:
        """The limit in mg for this weight, with the arithmetic when it is per kg: "35 mg (0.5 mg/kg × 70 kg)"."""
        if self.unit == DoseUnit.mg:
            return f"{self.amount:g} mg"
        return f"{self.mg(weight_kg):g} mg ({self.amount:g} mg/kg × {weight_kg:g} kg)"


def ceiling(medication: Medication, route: Route, organization: Organization) -> DoseLimit | None:
    """The organization's dose ceiling for this medication and route; None where it sets none."""
    if medication == Medication.esketamine:
        amount, unit = organization.esketamine_max_mg, DoseUnit.mg
    else:
        amount, unit = getattr(organization, KETAMINE_CEILINGS[route]), DoseUnit.mg_per_kg
    if amount is None:
        return None
    return DoseLimit(WarningCode.dose_above_ceiling, amount, unit,
                     f"the organization's ceiling for {medication.value} {route.value}")


def compute(content: SessionCreate, plan: TreatmentPlan | None, organization: Organization,
            zone: ZoneInfo) -> list[dict[str, str]]:
    """Every warning the session raises, as [{code, message}] in a fixed order."""
    found = [
        *_blood_pressure(content, thresholds(content.medication, plan, organization)),
        _recheck(content),
        _before_plan_start(content, plan, zone),
        *_dose(content, plan, organization),
        _observation_time(content),
        _discharge_criteria(content),
        _severe_adverse_events(content),
    ]
    return [warning for warning in found if warning is not None]


def _warning(code: WarningCode, message: str) -> dict[str, str]:
    return {"code": code.value, "message": message}


def _above(vital: VitalSign, limit: Thresholds) -> bool:
    return vital.systolic > limit.max_systolic or vital.diastolic > limit.max_diastolic


def _blood_pressure(content: SessionCreate, limit: Thresholds) -> list[dict[str, str] | None]:
    """A pre-dose reading is required for every session; any reading above the thresholds, before dosing or during
    and after it, is flagged (the first one of each kind is named)."""
    pre = [vital for vital in content.vitals if vital.phase == VitalPhase.pre]
    high_pre = next((vital for vital in pre if _above(vital, limit)), None)
    high_after = next((vital for vital in content.vitals if vital.phase in AFTER_DOSING and _above(vital, limit)),
                      None)
    thresholds_named = f"{limit.source} threshold of {limit.max_systolic}/{limit.max_diastolic} mmHg"
    return [
        None if pre else _warning(WarningCode.pre_dose_bp_missing,
                                  "No pre-dose blood pressure is recorded; every session needs one before dosing"),
        None if high_pre is None else _warning(
            WarningCode.pre_dose_bp_above_threshold,
            f"Pre-dose blood pressure {high_pre.systolic}/{high_pre.diastolic} mmHg is above {limit.source} hold "
            f"threshold of {limit.max_systolic}/{limit.max_diastolic} mmHg"),
        None if high_after is None else _warning(
            WarningCode.bp_above_threshold_after_dose,
            f"Blood pressure {high_after.systolic}/{high_after.diastolic} mmHg {AFTER_DOSING[high_after.phase]} "
            f"dosing is above {thresholds_named}"),
    ]


def _recheck(content: SessionCreate) -> dict[str, str] | None:
    """Esketamine raises blood pressure most about 40 minutes after dosing: some reading from 30 minutes on."""
    if content.medication != Medication.esketamine:
        return None
    due = content.started_at + ESKETAMINE_RECHECK_FROM
    if any(vital.at >= due for vital in content.vitals):
        return None
    return _warning(WarningCode.post_dose_bp_recheck_missing,
                    "No blood pressure from 30 min after dosing on; esketamine needs a recheck (about 40 min)")


def _before_plan_start(content: SessionCreate, plan: TreatmentPlan | None, zone: ZoneInfo) -> dict[str, str] | None:
    """Dosed on a local day (the patient's zone) before the linked plan's start date."""
    if plan is None:
        return None
    day = content.started_at.astimezone(zone).date()
    if day >= plan.start_date:
        return None
    return _warning(WarningCode.session_before_plan_start,
                    f"Given on {day.isoformat()} (the patient's local date), before the plan's start date "
                    f"{plan.start_date.isoformat()}")


def _dose(content: SessionCreate, plan: TreatmentPlan | None, organization: Organization) -> list[dict[str, str]]:
    """The recorded dose against the plan's protocol and the organization's ceiling, whatever else differs: a
    session given with another medication or route than the plan's is flagged rather than refused (the record must
    say what happened), and its dose is still compared with both."""
    found, limits = [], []
    if plan is not None:
        protocol: dict[str, Any] = plan.protocol
        if (content.medication, content.route) != (protocol["medication"], protocol["route"]):
            found.append(_warning(
                WarningCode.protocol_differs_from_plan,
                f"Given as {content.medication.value} {content.route.value}; the plan's protocol is "
                f"{Medication(protocol['medication']).value} {Route(protocol['route']).value}"))
        limits.append(DoseLimit(WarningCode.dose_exceeds_plan, protocol["dose"]["amount"],
                                DoseUnit(protocol["dose"]["unit"]), "the plan's dose"))
    cap = ceiling(content.medication, content.route, organization)
    if cap is not None:
        limits.append(cap)
    weight = content.weight_kg
    unchecked = [f"{limit.name} ({limit.amount:g} mg/kg)" for limit in limits if limit.mg(weight) is None]
    if unchecked:
        found.append(_warning(WarningCode.weight_missing_for_weight_based_dose,
                              f"Record weight_kg to check the dose against {' and '.join(unchecked)}"))
    for limit in limits:
        most = limit.mg(weight)
        if most is not None and content.dose_mg > most + DOSE_TOLERANCE_MG:
            found.append(_warning(limit.code,
                                  f"Dose {content.dose_mg:g} mg exceeds {limit.name}, {limit.explained(weight)}"))
    return found


def _observation_time(content: SessionCreate) -> dict[str, str] | None:
    """Intranasal esketamine needs 2 h of observation after dosing; judged once a discharge time is recorded."""
    if content.medication != Medication.esketamine or content.route != Route.intranasal or content.discharge is None:
        return None
    observed = content.discharge.at - content.started_at
    if observed < ESKETAMINE_OBSERVATION:
        minutes = int(observed.total_seconds() // 60)
        return _warning(WarningCode.observation_shorter_than_required,
                        f"Discharged {minutes} min after dosing; intranasal esketamine requires at least 120 min")
    return None


def _discharge_criteria(content: SessionCreate) -> dict[str, str] | None:
    if content.discharge is not None and not content.discharge.criteria_met:
        return _warning(WarningCode.discharge_criteria_not_met,
                        "The patient left without meeting the discharge criteria")
    return None


def _severe_adverse_events(content: SessionCreate) -> dict[str, str] | None:
    kinds = [event.kind.value for event in content.adverse_events
             if event.severity == AdverseEventSeverity.severe]
    if kinds:
        return _warning(WarningCode.severe_adverse_event, f"Severe adverse event: {', '.join(kinds)}")
    return None
