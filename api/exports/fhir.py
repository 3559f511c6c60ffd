"""A patient's record as a FHIR R4 `Bundle` of type `collection` (docs/integrations.md has the mapping).

Built with the `fhir.resources` R4B models, which validate every resource as it is constructed: a record that
would not make valid FHIR fails here, not in the receiving EHR. Resources are addressed by `urn:uuid:` full URLs
(their Calmtrack ids), and refer to each other by those.

Codes: instrument totals and items are LOINC where LOINC has a code in `api.instruments.registry` (GAD-7 total
70274-6 and panel 69737-5, PHQ-9 total 44261-6, panel 44249-1 and item 9 44260-8); instruments without one (GAD-2,
SUDS) are coded in Calmtrack's own system, `LOCAL_INSTRUMENTS`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from api.instruments.registry import INSTRUMENTS, Instrument
from models.dosing_sessions import DosingSession
from models.patients import Patient
from models.plans import TreatmentPlan
from models.scores import Score

LOINC = "http://loinc.org"
LOCAL_INSTRUMENTS = "urn:calmtrack:instrument"  # code: the instrument's code (gad2, suds), display: its name
LOCAL_QUESTIONNAIRES = "urn:calmtrack:questionnaire:"  # + instrument code, for those without a LOINC panel
EXTERNAL_ID = "urn:calmtrack:external-id"  # the clinic's own patient identifier (e.g. its MRN)
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"

# Calmtrack's plan lifecycle onto FHIR's CarePlan.status (request-status).
CAREPLAN_STATUS = {"draft": "draft", "active": "active", "paused": "on-hold", "completed": "completed",
                   "discontinued": "revoked"}


def observation_id(score_id: uuid.UUID) -> uuid.UUID:
    """The Observation of a score: a stable id of its own (the QuestionnaireResponse has the score's id)."""
    return uuid.uuid5(score_id, "observation")


def _url(resource_id: object) -> str:
    return f"urn:uuid:{resource_id}"


def _ref(resource_id: object, display: str | None = None) -> dict[str, Any]:
    return {"reference": _url(resource_id), **({"display": display} if display else {})}


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def patient_resource(patient: Patient) -> FhirPatient:
    values: dict[str, Any] = {"id": str(patient.id), "name": [{"text": patient.full_name}],
                              "birthDate": patient.date_of_birth.isoformat()}
    if patient.external_id:
        values["identifier"] = [{"system": EXTERNAL_ID, "value": patient.external_id}]
    if patient.email:
        values["telecom"] = [{"system": "email", "value": patient.email}]
    return FhirPatient(**values)


def care_plan(plan: TreatmentPlan) -> CarePlan:
    protocol = plan.protocol or {}
    dose = protocol.get("dose") or {}
    summary = (f"{protocol.get('medication', '')} {protocol.get('route', '')} "
               f"{dose.get('amount', '')} {dose.get('unit', '')}").strip()
    values: dict[str, Any] = {
        "id": str(plan.id), "status": CAREPLAN_STATUS[str(plan.status)], "intent": "plan", "title": plan.title,
        "description": plan.indication, "subject": _ref(plan.patient_id),
        "period": {"start": plan.start_date.isoformat()}, "created": _instant(plan.created_at),
    }
    if summary:
        values["activity"] = [{"detail": {"status": "not-started" if plan.status == "draft" else "in-progress",
                                          "description": f"Supervised dosing: {summary}"}}]
    return CarePlan(**values)


def procedure(record: DosingSession, *, with_notes: bool) -> Procedure:
    """A signed dosing session. Clinician-only notes only when the reader may see them."""
    period = {"start": _instant(record.started_at)}
    if record.ended_at is not None:
        period["end"] = _instant(record.ended_at)
    values: dict[str, Any] = {
        "id": str(record.id), "status": "completed", "subject": _ref(record.patient_id),
        "code": {"text": f"Supervised {record.medication} dosing session ({record.route}, {record.dose_mg:g} mg)"},
        "performedPeriod": period,
    }
    if record.plan_id is not None:
        values["basedOn"] = [_ref(record.plan_id)]
    if with_notes and record.notes:
        values["note"] = [{"text": record.notes}]
    return Procedure(**values)


def _instrument_code(instrument: Instrument) -> dict[str, Any]:
    if instrument.loinc_total:
        return {"coding": [{"system": LOINC, "code": instrument.loinc_total,
                            "display": f"{instrument.name} total score"}], "text": f"{instrument.name} total score"}
    return {"coding": [{"system": LOCAL_INSTRUMENTS, "code": instrument.code, "display": instrument.name}],
            "text": f"{instrument.name} total score"}


def questionnaire_response(score: Score) -> QuestionnaireResponse:
    instrument = INSTRUMENTS[score.instrument]
    questionnaire = (f"{LOINC}/q/{instrument.loinc_panel}" if instrument.loinc_panel
                     else LOCAL_QUESTIONNAIRES + instrument.code)
    items = []
    for index, (item, answer) in enumerate(zip(instrument.items, score.items, strict=True)):
        entry: dict[str, Any] = {"linkId": str(index + 1), "text": item.text, "answer": [{"valueInteger": answer}]}
        if item.loinc:
            entry["definition"] = f"{LOINC}/{item.loinc}"
        items.append(entry)
    values: dict[str, Any] = {
        "id": str(score.id), "status": "completed", "questionnaire": questionnaire, "subject": _ref(score.patient_id),
        "authored": _instant(score.recorded_at), "item": items,
    }
    if score.source == "patient":
        values["source"] = _ref(score.patient_id)
    return QuestionnaireResponse(**values)


def observation(score: Score) -> Observation:
    """The total score, derived from the QuestionnaireResponse (whose id is the score's; the Observation's is
    derived from it, `observation_id`). PHQ-9 item 9 (LOINC 44260-8) is repeated as a component: it is the answer that
    needs same-day attention."""
    instrument = INSTRUMENTS[score.instrument]
    values: dict[str, Any] = {
        "id": str(observation_id(score.id)), "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": _instrument_code(instrument), "subject": _ref(score.patient_id),
        "effectiveDateTime": _instant(score.recorded_at), "issued": _instant(score.received_at),
        "valueQuantity": {"value": score.total, "unit": "{score}", "system": UCUM, "code": "{score}"},
        "derivedFrom": [_ref(score.id)],
    }
    if score.severity:
        values["interpretation"] = [{"text": score.severity}]
    components = [
        {"code": {"coding": [{"system": LOINC, "code": item.loinc, "display": item.text}]},
         "valueInteger": score.items[index]}
        for index, item in enumerate(instrument.items) if item.loinc
    ]
    if components:
        values["component"] = components
    return Observation(**values)


def bundle(
    patient: Patient, plans: Sequence[TreatmentPlan], sessions: Iterable[DosingSession], scores: Iterable[Score],
    *, with_notes: bool, now: dt.datetime,
) -> Bundle:
    resources: list[Any] = [patient_resource(patient), *(care_plan(plan) for plan in plans)]
    resources += [procedure(record, with_notes=with_notes) for record in sessions]
    for score in scores:
        resources += [questionnaire_response(score), observation(score)]
    entries = [{"fullUrl": _url(resource.id), "resource": resource} for resource in resources]
    return Bundle(type="collection", timestamp=_instant(now), entry=entries)
