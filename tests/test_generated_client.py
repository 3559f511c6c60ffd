"""A client generated from /openapi.json with openapi-python-client runs the README's walk-through.

What a mobile or integration team does first: generate a client and call the API through it. This checks that the
document generates one without errors in the parts that matter, that its function names are the readable
operationIds, and that every answer of the walk-through parses into the generated models.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from api.instruments.registry import INSTRUMENTS
from api.users.schemas import UserCreate
from api.users.service import bootstrap_admin
from tests.conftest import openapi_document

PACKAGE = "calmtrack_api_client"


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    """The generated package, imported (once per test process)."""
    where = tmp_path_factory.mktemp("client")
    document = where / "openapi.json"
    document.write_text(json.dumps(openapi_document()))
    done = subprocess.run(
        [str(Path(sys.executable).with_name("openapi-python-client")), "generate", "--path", str(document),
         "--meta", "none", "--output-path", str(where / PACKAGE)],
        capture_output=True, text=True, cwd=where, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # The one part it cannot type is the report's PDF body, which a client reads as bytes.
    warnings = [line for line in done.stdout.splitlines() if line.startswith("WARNING")]
    assert all("/report" in line for line in warnings), warnings
    sys.path.insert(0, str(where))
    try:
        yield lambda module: importlib.import_module(f"{PACKAGE}.{module}")
    finally:
        sys.path.remove(str(where))


def client_for(generated, app, token: str | None = None):
    transport = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://calmtrack.test",
                                  headers={"Authorization": f"Bearer {token}"} if token else {})
    client = generated("client")
    made = client.AuthenticatedClient(base_url="http://calmtrack.test", token=token or "-")
    return made.set_async_httpx_client(transport)


async def call(generated, module: str, status: int, **kwargs):
    """Calls `<tag>.<operation>` (the operationId's module) and returns the parsed answer."""
    tag = module.split("_", 1)[0]
    operation = generated(f"api.{tag}.{module}")
    response = await operation.asyncio_detailed(**kwargs)
    assert response.status_code == status, response.content
    return response.parsed


async def test_the_readme_walkthrough_through_a_generated_client(generated, app):
    models = generated("models")
    async with app.state.sessions() as session:
        await bootstrap_admin(session, "Calm Clinic", UserCreate(
            email="admin@calm.example", full_name="admin@calm.example", role="admin", password="admin passphrase 1"))
    anonymous = client_for(generated, app)

    async def login(email: str, password: str) -> str:
        pair = await call(generated, "auth_login", 200, client=anonymous,
                          body=models.LoginRequest(email=email, password=password))
        assert isinstance(pair, models.TokenPair)
        return pair.access_token

    admin = client_for(generated, app, await login("admin@calm.example", "admin passphrase 1"))
    clinician = await call(generated, "users_create_user", 201, client=admin, body=models.UserCreate.from_dict({
        "email": "rivera@calm.example", "full_name": "Dr. Rivera", "role": "clinician",
        "password": "clinician passphrase"}))
    doctor = client_for(generated, app, await login("rivera@calm.example", "clinician passphrase"))
    patient = await call(generated, "patients_create_patient", 201, client=doctor, body=models.PatientCreate.from_dict(
        {"full_name": "Alex Doe", "date_of_birth": "1988-02-14", "timezone": "America/New_York"}))
    assert [member.role for member in patient.care_team] == [models.CareTeamRole.PRESCRIBER]
    code = await call(generated, "patients_issue_enrollment_code", 201, client=doctor, patient_id=patient.id)
    pair = await call(generated, "auth_enroll", 201, client=anonymous, body=models.EnrollRequest(
        code=code.code, email="alex@example.com", password="patient passphrase"))
    phone = client_for(generated, app, pair.access_token)
    me = await call(generated, "auth_read_me", 200, client=phone)
    assert me.patient_id == patient.id

    score = await call(generated, "scores_create_my_score", 201, client=phone, body=models.ScoreCreate.from_dict({
        "id": str(uuid.uuid4()), "instrument": "gad7", "items": [2, 1, 2, 3, 1, 0, 2],
        "recorded_at": "2026-11-20T08:30:00+01:00"}))
    assert (score.total, str(score.severity)) == (11, "moderate")
    listed = await call(generated, "scores_list_my_scores", 200, client=phone)
    assert [item.id for item in listed.items] == [score.id]
    # The offline queue sent with ?return=minimal: ids and statuses parse into the declared minimal answer.
    queued = {"id": str(uuid.uuid4()), "instrument": "gad7", "items": [1, 1, 1, 1, 1, 1, 1],
              "recorded_at": "2026-11-19T08:30:00+01:00"}
    synced = await call(generated, "scores_create_my_scores", 200, client=phone,
                        body=models.ScoreBatch.from_dict({"scores": [queued, {**queued, "items": [9]}]}),
                        return_=models.ScoresCreateMyScoresReturnType0.MINIMAL)
    assert isinstance(synced, models.BatchMinimalAnswer)
    stored, refused = synced.results
    assert isinstance(stored, models.BatchStored) and (str(stored.id), stored.status.value) == (queued["id"], 201)
    assert isinstance(refused, models.BatchProblem) and refused.problem.code == "validation_error"

    plan = await call(generated, "plans_create_plan", 201, client=doctor, patient_id=patient.id,
                      body=models.PlanCreate.from_dict({
                          "title": "Ketamine-assisted treatment for GAD", "indication": "Generalized anxiety disorder",
                          "start_date": "2026-11-01",
                          "protocol": {"medication": "ketamine", "route": "iv",
                                       "dose": {"amount": 0.5, "unit": "mg/kg"}, "infusion_minutes": 40,
                                       "phases": [{"name": "induction", "sessions": 6, "interval_days": 3}]},
                          "goals": [], "adjunct_therapies": [], "assessments": [{"instrument": "gad7",
                                                                                  "every_days": 7}],
                          "prior_treatments": [], "suitability": {"assessed_at": "2026-10-30",
                                                                  "contraindications": []}}))
    active = await call(generated, "plans_change_plan_status", 200, client=doctor, plan_id=plan.id,
                        body=models.StatusChange.from_dict({"status": "active"}))
    assert str(active.status) == "active"

    session = await call(generated, "sessions_create_session", 201, client=doctor, patient_id=patient.id,
                         body=models.SessionCreate.from_dict({
                             "plan_id": str(plan.id), "supervising_clinician_id": str(clinician.id),
                             "started_at": "2026-11-24T09:00:00-05:00", "ended_at": "2026-11-24T11:10:00-05:00",
                             "medication": "ketamine", "route": "iv", "dose_mg": 36.0, "weight_kg": 70.0,
                             "vitals": [{"at": "2026-11-24T08:55:00-05:00", "phase": "pre", "systolic": 128,
                                         "diastolic": 82, "heart_rate": 74, "spo2": 98}],
                             "discharge": {"at": "2026-11-24T11:10:00-05:00", "criteria_met": True}}))
    assert [warning.code for warning in session.warnings] == ["dose_exceeds_plan"]
    signed = await call(generated, "sessions_sign_session", 200, client=doctor, session_id=session.id)
    assert str(signed.status) == "signed"

    chart = await call(generated, "charts_patient_chart", 200, client=doctor, patient_id=patient.id,
                       instrument=models.InstrumentCode.GAD7)
    assert chart.latest.total == 11
    page = await call(generated, "dashboard_read_dashboard", 200, client=doctor)
    [row] = page.items
    assert (row.patient_id, row.latest.total, str(row.plan_status)) == (patient.id, 11, "active")
    events = await call(generated, "audit_list_audit_events", 200, client=admin, patient_id=patient.id)
    assert {event.action for event in events.items} >= {"patient.create", "score.create", "session.sign",
                                                         "dashboard.read"}


def _enums_with(value: object, path: tuple = ()) -> list[tuple]:
    """Where in the document an enum lists any of `value`'s members."""
    found = []
    if isinstance(value, dict):
        if isinstance(value.get("enum"), list) and set(map(str, value["enum"])) & set(INSTRUMENTS):
            found.append(path)
        for key, item in value.items():
            found += _enums_with(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _enums_with(item, (*path, index))
    return found


def test_one_instrument_code_enum_in_the_document_and_in_the_client(generated):
    document = openapi_document()
    schemas = document["components"]["schemas"]
    assert _enums_with(document) == [("components", "schemas", "InstrumentCode")]
    assert schemas["InstrumentCode"]["enum"] == list(INSTRUMENTS)
    # Every instrument field and parameter refers to it: requests, answers and query parameters alike.
    references = json.dumps(document).count('"#/components/schemas/InstrumentCode"')
    assert references >= 12
    # Severity and band labels share one enum; the adverse events' own is not a bare "Severity".
    assert "Severity" not in schemas and schemas["AdverseEventSeverity"]["enum"] == ["mild", "moderate", "severe"]
    severity = schemas["ScorePublic"]["properties"]["severity"]["anyOf"]
    assert {"$ref": "#/components/schemas/ScoreSeverity"} in severity
    assert schemas["BandPublic"]["properties"]["label"] == {"$ref": "#/components/schemas/ScoreSeverity"}
    assert set(schemas["ScoreSeverity"]["enum"]) == {band.label for i in INSTRUMENTS.values() for band in i.bands}

    models = generated("models")
    folder = Path(models.__file__).parent
    defining = sorted(path.name for path in folder.glob("*.py")
                      if re.search(r'^\s+GAD7 = "gad7"$', path.read_text(), re.MULTILINE))
    assert defining == ["instrument_code.py"]
    assert {member.value for member in models.InstrumentCode} == set(INSTRUMENTS)
    assert models.ScoreSeverity("moderately_severe") and models.AdverseEventSeverity("severe")
    assert not hasattr(models, "Severity")
