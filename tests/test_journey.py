"""One journey through every capability, played by the real users in order, as the clinic would live it.

Each domain has its own detailed tests; this one checks that the pieces fit: what one user does is what the next
one sees. It runs on both databases like everything else.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid

from pypdf import PdfReader

from api.schedules.service import sweep_overdue
from api.users.schemas import UserCreate
from api.users.service import bootstrap_admin

NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.date()


def day(offset: int) -> str:
    return (TODAY + dt.timedelta(days=offset)).isoformat()


def at(days_ago: float) -> str:
    return (NOW - dt.timedelta(days=days_ago)).isoformat()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json() if response.content and response.headers["content-type"].endswith("json") else {}


async def login(client, email: str, password: str) -> dict:
    return await ok(await client.post("/v1/auth/login", json={"email": email, "password": password}))


async def test_a_patients_treatment_from_enrollment_to_the_progress_report(client, app):
    # The clinic's first admin, from the console.
    async with app.state.sessions() as session:
        await bootstrap_admin(session, "Calm Clinic", UserCreate(
            email="admin@calm.example", full_name="Ada Admin", role="admin", password="admin passphrase 1"))
    admin = bearer((await login(client, "admin@calm.example", "admin passphrase 1"))["access_token"])

    # Staff: a prescriber and a monitor who watches the dosing sessions.
    for email, name in (("rivera@calm.example", "Dr. Rivera"), ("moss@calm.example", "Nurse Moss")):
        await ok(await client.post("/v1/users", headers=admin, json={
            "email": email, "full_name": name, "role": "clinician", "password": "clinician passphrase"}), 201)
    doctor = bearer((await login(client, "rivera@calm.example", "clinician passphrase"))["access_token"])
    nurse = bearer((await login(client, "moss@calm.example", "clinician passphrase"))["access_token"])
    nurse_id = (await ok(await client.get("/v1/me", headers=nurse)))["id"]

    # The prescriber registers the patient and puts the monitor on the care team.
    patient = await ok(await client.post("/v1/patients", headers=doctor, json={
        "full_name": "Alex Doe", "date_of_birth": "1988-02-14", "timezone": "America/New_York"}), 201)
    pid = patient["id"]
    await ok(await client.put(f"/v1/patients/{pid}/care-team/{nurse_id}", headers=doctor,
                              json={"role": "monitor"}), 201)

    # The phone enrolls with the printed code, then syncs a week of GAD-7s taken before treatment.
    code = (await ok(await client.post(f"/v1/patients/{pid}/enrollment-codes", headers=doctor), 201))["code"]
    pair = await ok(await client.post("/v1/auth/enroll", json={
        "code": code, "email": "alex@example.com", "password": "patient passphrase"}), 201)
    phone = bearer(pair["access_token"])
    before = [{"id": str(uuid.uuid4()), "instrument": "gad7", "items": [3, 2, 2, 3, 2, 2, 2],
               "recorded_at": at(days)} for days in (20, 18, 16)]
    batch = await ok(await client.post("/v1/me/scores/batch", headers=phone, json={"scores": before}))
    assert [r["status"] for r in batch["results"]] == [201, 201, 201]

    # The prescriber writes the plan and starts it; only the prescriber may.
    body = {
        "title": "Ketamine-assisted treatment for GAD", "indication": "Generalized anxiety disorder",
        "start_date": day(-14),
        "protocol": {"medication": "ketamine", "route": "iv", "dose": {"amount": 0.5, "unit": "mg/kg"},
                     "infusion_minutes": 40, "phases": [{"name": "induction", "sessions": 6, "interval_days": 3}]},
        "goals": [{"description": "Remission", "instrument": "gad7", "target_total": 4}],
        "adjunct_therapies": [{"kind": "cbt", "frequency": "weekly", "provider": "Dr. Rivera"}],
        "assessments": [{"instrument": "gad7", "every_days": 7}],
        "prior_treatments": [{"name": "sertraline", "kind": "ssri", "adequate_trial": True, "outcome": "no_response"},
                             {"name": "venlafaxine", "kind": "snri", "adequate_trial": True,
                              "outcome": "no_response"}],
        "suitability": {"assessed_at": day(-15), "contraindications": []},
    }
    assert (await client.post(f"/v1/patients/{pid}/plans", headers=nurse, json=body)).status_code == 403
    plan = await ok(await client.post(f"/v1/patients/{pid}/plans", headers=doctor, json=body), 201)
    assert plan["treatment_resistant"] is True
    await ok(await client.post(f"/v1/plans/{plan['id']}/status", headers=doctor, json={"status": "active"}))

    # The monitor supervises the first infusion, records it and signs it.
    started = NOW - dt.timedelta(days=13)
    minutes = lambda m: (started + dt.timedelta(minutes=m)).isoformat()  # noqa: E731
    session = await ok(await client.post(f"/v1/patients/{pid}/sessions", headers=nurse, json={
        "plan_id": plan["id"], "supervising_clinician_id": nurse_id, "started_at": minutes(0),
        "ended_at": minutes(130), "medication": "ketamine", "route": "iv", "dose_mg": 35.0, "weight_kg": 70.0,
        "vitals": [{"at": minutes(-5), "phase": "pre", "systolic": 128, "diastolic": 82, "heart_rate": 74,
                    "spo2": 98},
                   {"at": minutes(60), "phase": "post", "systolic": 131, "diastolic": 84, "heart_rate": 76,
                    "spo2": 98}],
        "dissociation_cadss": 18, "sedation_moaas": 5, "notes": "tolerated well; clinician-only",
        "discharge": {"at": minutes(130), "criteria_met": True}}), 201)
    assert session["warnings"] == []
    assert (await client.post(f"/v1/sessions/{session['id']}/sign", headers=doctor)).status_code == 403
    await ok(await client.post(f"/v1/sessions/{session['id']}/sign", headers=nurse))

    # The phone reports relief, and one PHQ-9 with item 9 answered: an urgent alert for the care team.
    for days, items in ((12, [1, 1, 1, 1, 1, 1, 1]), (5, [1, 0, 1, 1, 0, 1, 1])):
        await ok(await client.post("/v1/me/scores", headers=phone, json={
            "id": str(uuid.uuid4()), "instrument": "gad7", "items": items, "recorded_at": at(days)}), 201)
    await ok(await client.post("/v1/me/scores", headers=phone, json={
        "id": str(uuid.uuid4()), "instrument": "phq9", "items": [1, 1, 1, 1, 1, 1, 1, 1, 1],
        "recorded_at": at(1)}), 201)

    # The chart: the pre-treatment baseline, response and rapid onset.
    chart = await ok(await client.get(f"/v1/patients/{pid}/chart", params={"instrument": "gad7"}, headers=doctor))
    assert (chart["baseline"]["total"], chart["baseline"]["pre_treatment"], chart["latest"]["total"]) == (16, True, 5)
    assert chart["response"] is True and chart["onset"] is not None and len(chart["sessions"]) == 1
    assert await ok(await client.get("/v1/me/chart", params={"instrument": "gad7"}, headers=phone)) == chart

    # The phone's schedule and the clinician's dashboard agree.
    schedule = await ok(await client.get("/v1/me/schedule", headers=phone))
    [row] = (await ok(await client.get("/v1/dashboard", headers=doctor)))["items"]
    assert row["next_assessment_due"] == schedule["items"][0]["next_due_on"]
    assert (row["baseline_total"], row["change"], row["urgent_alerts"]) == (16, -11, 1)

    # The care team acknowledges the alert; the patient never sees alerts.
    [alert] = (await ok(await client.get("/v1/alerts", params={"status": "open"}, headers=nurse)))["items"]
    assert alert["kind"] == "phq9_item9_positive"
    await ok(await client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=nurse,
                               json={"note": "Called the patient; safety plan reviewed"}))
    assert (await client.get("/v1/alerts", headers=phone)).status_code == 403

    # The overdue sweep finds nothing due: the last GAD-7 is 5 days old on a weekly schedule.
    assert await sweep_overdue(app.state.sessions) == 0

    # The progress report: the clinician's copy has the session note, the patient's does not.
    for headers, note_expected in ((doctor, True), (phone, False)):
        report = await client.get(f"/v1/patients/{pid}/report", headers=headers)
        assert report.status_code == 200 and report.headers["content-type"] == "application/pdf"
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(report.content)).pages)
        assert "Alex Doe" in text
        assert ("clinician-only" in text) is note_expected

    # The phone refreshes its login; the admin can see who read and changed the record.
    refreshed = await ok(await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}))
    assert (await client.get("/v1/me", headers=bearer(refreshed["access_token"]))).status_code == 200
    events = (await ok(await client.get("/v1/audit-events", params={"patient_id": pid, "limit": 200},
                                        headers=admin)))["items"]
    actions = {event["action"] for event in events}
    assert {"patient.create", "plan.create", "session.sign", "score.create", "chart.read", "dashboard.read",
            "alert.acknowledge", "report.read"} <= actions
