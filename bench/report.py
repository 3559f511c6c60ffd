"""Times the progress report (issue 9: under 2 s for a year of daily scores of two instruments).

Builds one patient through the API of a real server (`calmtrack serve`, one process, production mode, PostgreSQL):
an active plan scheduling GAD-7 and PHQ-9, a score of each every day for a year, a signed dosing session every
week (every fourth with a dose above the plan's, hence a warning, a note and an open alert). Then fetches the
report as the prescriber, sequentially, and prints each time and the median, measured by the client over HTTP.

    .venv/bin/python bench/report.py [--database calmtrack_report_bench] [--requests 10] [--save report.pdf]

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, as run.py); no wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
from pypdf import PdfReader

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from run import PG, ROOT, recreate, run, start, stop  # noqa: E402 (the harness's helpers)

PORT = 8902
SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"
ADMIN, CLINICIAN = "admin@report.example", "clinician@report.example"
PASSWORD = "bench password of some length"
DAYS = 365
PLAN = {
    "title": "Ketamine-assisted treatment for GAD", "indication": "Generalized anxiety disorder, treatment-resistant",
    "protocol": {"medication": "ketamine", "route": "iv", "dose": {"amount": 0.5, "unit": "mg/kg"},
                 "infusion_minutes": 40, "phases": [{"name": "induction", "sessions": 6, "interval_days": 3},
                                                    {"name": "maintenance", "sessions": 46, "interval_days": 7}]},
    "goals": [{"description": "Remission of anxiety", "instrument": "gad7", "target_total": 4}],
    "adjunct_therapies": [{"kind": "cbt", "frequency": "weekly", "provider": "Dr. Rivera"}],
    "assessments": [{"instrument": "gad7", "every_days": 1}, {"instrument": "phq9", "every_days": 1}],
    "suitability": {"assessed_at": "2025-01-01", "contraindications": []},
}


def items(count: int, total: int) -> list[int]:
    values = []
    for _ in range(count):
        values.append(min(3, total - sum(values)))
    return values


async def seed(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """The patient's id, after a year of treatment recorded through the API, and the prescriber's headers."""
    admin = (await client.post("/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})).json()
    staff = {"Authorization": f"Bearer {admin['access_token']}"}
    created = await client.post("/v1/users", headers=staff, json={
        "email": CLINICIAN, "full_name": "Robin Prescriber", "role": "clinician", "password": PASSWORD})
    created.raise_for_status()
    clinician = created.json()["id"]
    login = (await client.post("/v1/auth/login", json={"email": CLINICIAN, "password": PASSWORD})).json()
    headers = {"Authorization": f"Bearer {login['access_token']}"}

    patient = (await client.post("/v1/patients", headers=headers, json={
        "full_name": "Alex Example", "date_of_birth": "1984-03-09", "timezone": "America/New_York",
        "external_id": "MRN-0001"})).json()["id"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start_day = (now - dt.timedelta(days=DAYS - 14)).date()
    plan = (await client.post(f"/v1/patients/{patient}/plans", headers=headers,
                              json={**PLAN, "start_date": start_day.isoformat()})).json()["id"]
    (await client.post(f"/v1/plans/{plan}/status", headers=headers, json={"status": "active"})).raise_for_status()

    for day in range(DAYS, 0, -1):
        taken = now - dt.timedelta(days=day)
        gad7 = max(2, 17 - (DAYS - day) // 30 + day % 3)
        for instrument, count, total, hour in (("gad7", 7, gad7, 13), ("phq9", 9, min(26, gad7 + 3), 23)):
            response = await client.post(f"/v1/patients/{patient}/scores", headers=headers, json={
                "id": str(uuid.uuid4()), "instrument": instrument, "items": items(count, total),
                "recorded_at": taken.replace(hour=hour).isoformat()})
            assert response.status_code == 201, response.text

    for week in range(DAYS // 7 - 2, 0, -1):
        begins = (now - dt.timedelta(days=7 * week)).replace(hour=14, minute=0, second=0)

        def at(minutes: int) -> str:
            return (begins + dt.timedelta(minutes=minutes)).isoformat()

        flagged = week % 4 == 0
        draft = await client.post(f"/v1/patients/{patient}/sessions", headers=headers, json={
            "plan_id": plan, "supervising_clinician_id": clinician,
            "started_at": at(0), "ended_at": at(130), "medication": "ketamine", "route": "iv",
            "dose_mg": 50.0 if flagged else 35.0, "weight_kg": 70.0, "dissociation_cadss": 10 + week % 20,
            "vitals": [{"at": at(-5), "phase": "pre", "systolic": 128, "diastolic": 82, "heart_rate": 74,
                        "spo2": 98}],
            "notes": "Dose raised after review; patient tolerated it well." if flagged else None,
            "discharge": {"at": at(130), "criteria_met": True}})
        draft.raise_for_status()
        (await client.post(f"/v1/sessions/{draft.json()['id']}/sign", headers=headers)).raise_for_status()
    return patient, headers


async def measure(requests: int, save: Path | None) -> list[float]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=60) as client:
        patient, headers = await seed(client)
        timings = []
        for index in range(requests + 1):  # the first one warms the process up and is not counted
            began = time.perf_counter()
            response = await client.get(f"/v1/patients/{patient}/report", headers=headers)
            elapsed = time.perf_counter() - began
            response.raise_for_status()
            if index:
                timings.append(elapsed)
        if save is not None:
            save.write_bytes(response.content)
        document = PdfReader(io.BytesIO(response.content))
        print(f"report: {len(response.content) / 1024:.0f} kB, {len(document.pages)} pages")
        return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="calmtrack_report_bench")
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--save", type=Path, help="write the last report here, to look at")
    args = parser.parse_args()
    url = f"{PG}/{args.database}"
    env = {**os.environ, "DATABASE_URL": url, "ENVIRONMENT": "production", "SECRET_KEY": SECRET_KEY,
           "LOG_LEVEL": "WARNING", "RATE_LIMIT": "100000000/minute"}
    calmtrack = str(ROOT / ".venv" / "bin" / "calmtrack")
    asyncio.run(recreate(args.database))
    run([calmtrack, "migrate"], env=env)
    run([calmtrack, "create-admin", "--organization", "Report Bench Clinic", "--email", ADMIN, "--password", PASSWORD],
        env=env)
    server = start([calmtrack, "serve", "--port", str(PORT)], PORT, env, "/readyz")
    try:
        timings = asyncio.run(measure(args.requests, args.save))
    finally:
        stop(server)
    print("  ".join(f"{t:.2f}" for t in timings))
    print(f"median {statistics.median(timings):.2f} s, max {max(timings):.2f} s over {len(timings)} requests "
          f"({os.cpu_count()} cores, {dt.date.today()})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
