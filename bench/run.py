"""Measures Calmtrack against the reference floor (../shared/bench/floor) in one run, on this machine.

Both are seeded at the same scale (2,000 patients, a 500-patient panel, a year of daily GAD-7 scores each) in
their own PostgreSQL databases, served by ONE process each, and loaded by the same `wrk` command with the same
script. The floor and Calmtrack are measured alternately (`--rounds`) so that machine noise hits both; the
report gives every measurement and the ratio of the medians.

    .venv/bin/python bench/run.py [--scenario ingest] [--duration 10] [--connections 32] [--rounds 3]

Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
FLOOR = (ROOT.parent / "shared" / "bench" / "floor").resolve()
BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
PG = "postgresql://root@127.0.0.1:5432"
FLOOR_DB, OURS_DB = "floor", "calmtrack_bench"
FLOOR_PORT, OURS_PORT = 8900, 8901
SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"

# The same people on both sides: patient 0x7d0 (the 2,000th) posts scores; clinician 1111… has the panel (the
# first 500 patients by id), so the charted patient is patient 1.
PATIENT = uuid.UUID("00000000-0000-0000-0000-0000000007d0")
CHARTED = uuid.UUID("00000000-0000-0000-0000-000000000001")
PATIENT_USER = uuid.UUID("22222222-2222-2222-2222-222222222222")
CLINICIAN = uuid.UUID("11111111-1111-1111-1111-111111111111")
ORGANIZATION = uuid.UUID("33333333-3333-3333-3333-333333333333")


@dataclass(frozen=True)
class Scenario:
    name: str
    floor_path: str
    ours_path: str
    script: Path | None  # a wrk Lua script, or None for plain GETs
    floor_token_sub: uuid.UUID
    ours_role: str  # whose token Calmtrack gets: "patient" or "clinician"


SCENARIOS = {
    "ingest": Scenario("ingest", "/v1/me/scores", "/v1/me/scores", FLOOR / "post_score.lua", PATIENT, "patient"),
    "chart": Scenario("chart", f"/v1/patients/{CHARTED}/chart",
                      f"/v1/patients/{CHARTED}/chart?instrument=gad7&bucket=week", None, CLINICIAN, "clinician"),
}


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


async def recreate(database: str) -> None:
    admin = await asyncpg.connect(f"{PG}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()


def seed_floor(patients: int, panel: int, days: int) -> None:
    asyncio.run(recreate(FLOOR_DB))
    url = f"{PG}/{FLOOR_DB}"
    run(["psql", "-q", url, "-f", str(FLOOR / "schema.sql")])
    run(["psql", "-q", url, "-v", f"patients={patients}", "-v", f"panel={panel}", "-v", f"days={days}",
         "-f", str(FLOOR / "seed.sql")])


def seed_ours(patients: int, panel: int, days: int) -> None:
    asyncio.run(recreate(OURS_DB))
    url = f"{PG}/{OURS_DB}"
    run([str(ROOT / ".venv" / "bin" / "calmtrack"), "migrate"], env={**os.environ, "DATABASE_URL": url})
    run(["psql", "-q", url, "-v", f"patients={patients}", "-v", f"panel={panel}", "-v", f"days={days}",
         "-v", f"organization={ORGANIZATION}", "-v", f"clinician={CLINICIAN}", "-v", f"patient_user={PATIENT_USER}",
         "-f", str(BENCH / "seed.sql")])


def floor_token(sub: uuid.UUID) -> str:
    return run([PYTHON, str(FLOOR / "mktoken.py"), str(sub)]).stdout.strip()


def ours_token(role: str) -> str:
    from api.security.tokens import Caller, issue_access_token
    from api.settings import Settings
    from models.users import Role

    settings = Settings(environment="production", secret_key=SECRET_KEY, database_url=f"{PG}/{OURS_DB}")
    if role == "patient":
        caller = Caller(PATIENT_USER, ORGANIZATION, Role.patient, PATIENT)
    else:
        caller = Caller(CLINICIAN, ORGANIZATION, Role.clinician)
    return issue_access_token(settings, caller)[0]


def start(cmd: list[str], port: int, env: dict[str, str], ready_path: str) -> subprocess.Popen:
    process = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=1)
            return process
        except urllib.error.HTTPError:
            return process  # it answers (e.g. 401/405 without a token): it is up
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"server on port {port} did not start: {process.stderr.read() if process.stderr else ''}")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def wrk(url: str, token: str, script: Path | None, duration: int, connections: int) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           "-H", f"Authorization: Bearer {token}"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = run([*cmd, url], env={**os.environ, "TOKEN": token}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "non_2xx": int(errors.group(1)) if errors else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--panel", type=int, default=500)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    scenarios = [SCENARIOS[name] for name in (args.scenario or sorted(SCENARIOS))]

    print(f"seeding {args.patients} patients × {args.days} days (panel {args.panel}) for the floor and Calmtrack …")
    seed_floor(args.patients, args.panel, args.days)
    seed_ours(args.patients, args.panel, args.days)

    floor = start([PYTHON, "-m", "uvicorn", "--app-dir", str(FLOOR), "floor_app:app", "--port", str(FLOOR_PORT),
                   "--no-access-log"], FLOOR_PORT, {"FLOOR_DSN": f"{PG}/{FLOOR_DB}"}, "/v1/me/scores")
    ours = start([str(ROOT / ".venv" / "bin" / "calmtrack"), "serve", "--port", str(OURS_PORT)], OURS_PORT,
                 {"DATABASE_URL": f"{PG}/{OURS_DB}", "ENVIRONMENT": "production", "SECRET_KEY": SECRET_KEY,
                  # One token sends every request: the limit is raised so it is counted but never reached.
                  "LOG_LEVEL": "WARNING", "RATE_LIMIT": "100000000/minute"}, "/readyz")
    report: dict[str, dict] = {}
    try:
        for scenario in scenarios:
            f_token, o_token = floor_token(scenario.floor_token_sub), ours_token(scenario.ours_role)
            runs: dict[str, list[dict]] = {"floor": [], "calmtrack": []}
            for _ in range(args.rounds):
                runs["floor"].append(wrk(f"http://127.0.0.1:{FLOOR_PORT}{scenario.floor_path}", f_token,
                                         scenario.script, args.duration, args.connections))
                runs["calmtrack"].append(wrk(f"http://127.0.0.1:{OURS_PORT}{scenario.ours_path}", o_token,
                                             scenario.script, args.duration, args.connections))
            floor_rps = statistics.median(r["rps"] for r in runs["floor"])
            ours_rps = statistics.median(r["rps"] for r in runs["calmtrack"])
            report[scenario.name] = {"floor_rps": floor_rps, "calmtrack_rps": ours_rps,
                                     "ratio": round(ours_rps / floor_rps, 3), "runs": runs}
            print(f"{scenario.name}: floor {floor_rps:.0f}/s, calmtrack {ours_rps:.0f}/s, "
                  f"ratio {ours_rps / floor_rps:.2f}")
            for side, measurements in runs.items():
                for m in measurements:
                    print(f"    {side:9} {m['rps']:8.0f}/s  p50 {m['p50']:>8}  p99 {m['p99']:>8}  non-2xx {m['non_2xx']}")
                    if m["non_2xx"]:
                        print(f"    WARNING: {side} answered errors; its rate is not comparable")
    finally:
        stop(floor)
        stop(ours)

    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    meta = {"at": stamp, "duration_s": args.duration, "connections": args.connections, "rounds": args.rounds,
            "patients": args.patients, "panel": args.panel, "days": args.days, "cpus": os.cpu_count()}
    (results / f"{stamp}.json").write_text(json.dumps({"meta": meta, "scenarios": report}, indent=2))
    print(f"written bench/results/{stamp}.json")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
