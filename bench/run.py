"""Measures Calmtrack against the reference floor (../shared/bench/floor) in one run, on this machine.

Both are seeded at the same scale in their own PostgreSQL databases, served by ONE process each, and loaded by the
same `wrk` command. The floor and Calmtrack are measured alternately (`--rounds`) so that machine noise hits both;
the report gives every measurement, the medians, their ratio, the p99 latencies and their ratio, and Calmtrack's
memory after each scenario, then one markdown row per scenario for bench/README.md.

    .venv/bin/python bench/run.py [--scale small|large] [--scenario chart ...] [--rounds 3] [--duration 10]

Scales: small = 2,000 patients, large = 10,000 patients; both with a 500-patient panel and a year of daily GAD-7
scores per patient (`--patients/--panel/--days` override them). A database that already holds the requested scale
(seeded by this script from the same seed files and migrations, in the last week) is reused: `--reseed` forces a
new seed.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
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
SCALES = {"small": {"patients": 2000, "panel": 500, "days": 365},
          "large": {"patients": 10000, "panel": 500, "days": 365}}
REUSE_FOR = dt.timedelta(days=7)  # scores are dated from the seed's day: older seeds drift from "today"
RSS_TARGET_MB = 150

# The same people on both sides: the last patient posts scores (patient_id(args.patients)); clinician 1111… has
# the panel (the first --panel patients by id), so the charted patient is patient 1.
CHARTED = uuid.UUID("00000000-0000-0000-0000-000000000001")
PATIENT_USER = uuid.UUID("22222222-2222-2222-2222-222222222222")
CLINICIAN = uuid.UUID("11111111-1111-1111-1111-111111111111")
ORGANIZATION = uuid.UUID("33333333-3333-3333-3333-333333333333")
CHART = f"/v1/patients/{CHARTED}/chart?instrument=gad7&bucket=week"


def patient_id(number: int) -> uuid.UUID:
    """The seeds' patient ids: 00000000-0000-0000-0000-<number in hex>."""
    return uuid.UUID(f"00000000-0000-0000-0000-{number:012x}")


@dataclass(frozen=True)
class Scenario:
    name: str
    floor_path: str
    ours_path: str
    script: Path | None  # a wrk Lua script, or None for plain GETs
    role: str  # whose token each side gets: "patient" or "clinician"
    conditional: bool = False  # send If-None-Match with Calmtrack's current ETag of ours_path


SCENARIOS = {
    "ingest": Scenario("ingest", "/v1/me/scores", "/v1/me/scores", FLOOR / "post_score.lua", "patient"),
    "chart": Scenario("chart", f"/v1/patients/{CHARTED}/chart", CHART, None, "clinician"),
    # The contract's conditional GET (what phones poll) against the floor's full chart, which has no ETag.
    "chart_304": Scenario("chart_304", f"/v1/patients/{CHARTED}/chart", CHART, None, "clinician", conditional=True),
    "dashboard": Scenario("dashboard", "/v1/dashboard", "/v1/dashboard?sort=name&limit=100", None, "clinician"),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


# --- seeding -------------------------------------------------------------------------------------------------


async def _admin(statement: str, *args) -> object:
    admin = await asyncpg.connect(f"{PG}/postgres")
    try:
        return await admin.fetchval(statement, *args)
    finally:
        await admin.close()


async def recreate(database: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{database}"')


def seeded_as(database: str) -> dict | None:
    """What this script recorded on the database (its comment) after seeding it completely, if anything."""
    comment = asyncio.run(_admin("select shobj_description(oid, 'pg_database') from pg_database where datname = $1",
                                 database))
    try:
        return json.loads(comment) if comment else None
    except ValueError:
        return None


def mark_seeded(database: str, marker: dict) -> None:
    literal = json.dumps(marker).replace("'", "''")
    asyncio.run(_admin(f"COMMENT ON DATABASE \"{database}\" IS '{literal}'"))


def digest(*paths: Path) -> str:
    return hashlib.sha256(b"".join(path.read_bytes() for path in paths)).hexdigest()[:16]


def wanted(scale: dict, files: tuple[Path, ...], **extra: str) -> dict:
    return {**scale, "seed": digest(*files), **extra}


def reusable(database: str, marker: dict, reseed: bool) -> bool:
    found = None if reseed else seeded_as(database)
    if not found:
        return False
    at = dt.datetime.fromisoformat(found.pop("seeded_at", "1970-01-01T00:00:00+00:00"))
    if found != marker or dt.datetime.now(dt.UTC) - at > REUSE_FOR:
        return False
    log(f"{database}: reusing the seed of {at:%Y-%m-%d %H:%M} UTC ({marker['patients']:,} patients, "
        f"{marker['days']} days, panel {marker['panel']}); --reseed to seed again")
    return True


def psql_vars(scale: dict) -> list[str]:
    return [arg for name, value in scale.items() for arg in ("-v", f"{name}={value}")]


FLOOR_FILES = (FLOOR / "schema.sql", FLOOR / "seed.sql")
OURS_FILES = (BENCH / "seed.sql",)


@dataclass
class Seeding:
    process: subprocess.Popen
    marker: dict
    started: float


def seed_floor(scale: dict, reseed: bool) -> Seeding | None:
    """Starts seeding the floor in the background (its seed.sql has no progress lines: its total is logged)."""
    marker = wanted(scale, FLOOR_FILES)
    if reusable(FLOOR_DB, marker, reseed):
        return None
    asyncio.run(recreate(FLOOR_DB))
    url = f"{PG}/{FLOOR_DB}"
    script = (f"psql -q -v ON_ERROR_STOP=1 {url} -f {FLOOR_FILES[0]} && "
              f"psql -q -v ON_ERROR_STOP=1 {url} {' '.join(psql_vars(scale))} -f {FLOOR_FILES[1]}")
    log("floor: seeding in the background …")
    process = subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return Seeding(process, marker, time.monotonic())


def finish_floor(seeding: Seeding | None) -> None:
    if seeding is None:
        return
    _, err = seeding.process.communicate()
    if seeding.process.returncode:
        sys.exit(f"seeding the floor failed: {err}")
    scores = asyncio.run(_count(FLOOR_DB, "score"))
    log(f"floor: seeded {scores:,} scores in {time.monotonic() - seeding.started:.0f} s")
    vacuum(FLOOR_DB)
    mark_seeded(FLOOR_DB, {**seeding.marker, "seeded_at": dt.datetime.now(dt.UTC).isoformat()})


def vacuum(database: str) -> None:
    """Both sides are vacuumed once seeded, as autovacuum would have done to tables this old in production: the
    visibility map is set (index-only scans can skip the heap) and autovacuum has nothing left to do on the
    millions of inserted rows while wrk runs."""
    started = time.monotonic()
    run(["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{PG}/{database}", "-c", "vacuum (analyze)"])
    log(f"{database}: vacuum (analyze) in {time.monotonic() - started:.0f} s")


async def _count(database: str, table: str) -> int:
    con = await asyncpg.connect(f"{PG}/{database}")
    try:
        return await con.fetchval(f"select count(*) from {table}")
    finally:
        await con.close()


def seed_ours(scale: dict, reseed: bool) -> None:
    from api.migrate import head_revision

    marker = wanted(scale, OURS_FILES, migrations=head_revision())
    if reusable(OURS_DB, marker, reseed):
        return
    started = time.monotonic()
    asyncio.run(recreate(OURS_DB))
    url = f"{PG}/{OURS_DB}"
    run([str(ROOT / ".venv" / "bin" / "calmtrack"), "migrate"], env={**os.environ, "DATABASE_URL": url})
    log(f"calmtrack: migrated to {marker['migrations']}; seeding (progress per step) …")
    # stderr is inherited: seed.sql's progress lines appear as each step ends.
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, *psql_vars(scale),
                    "-v", f"organization={ORGANIZATION}", "-v", f"clinician={CLINICIAN}",
                    "-v", f"patient_user={PATIENT_USER}", "-f", str(OURS_FILES[0])],
                   check=True, stdout=subprocess.DEVNULL)
    # The seed rebuilds the score table's indexes and constraints: the schema must still be the migrations' own.
    from api.migrate import check
    check(url)
    asyncio.run(check_seed())
    vacuum(OURS_DB)
    log(f"calmtrack: seeded and checked in {time.monotonic() - started:.0f} s")
    mark_seeded(OURS_DB, {**marker, "seeded_at": dt.datetime.now(dt.UTC).isoformat()})


async def check_seed() -> None:
    """The seeded plan and sessions of patient 1 are exactly what the API stores for a valid PlanCreate and
    SessionCreate, and the sessions raise no warning (the server would have computed the same)."""
    from zoneinfo import ZoneInfo

    from api.plans.schemas import CONTENT_FIELDS as PLAN_FIELDS
    from api.plans.schemas import PlanCreate
    from api.sessions import service as sessions, warnings
    from api.sessions.schemas import CONTENT_FIELDS as SESSION_FIELDS
    from api.sessions.schemas import SessionCreate
    from models.organizations import Organization
    from models.plans import TreatmentPlan

    con = await asyncpg.connect(f"{PG}/{OURS_DB}")
    for codec in ("json", "jsonb"):
        await con.set_type_codec(codec, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    try:
        plan_row = dict(await con.fetchrow("select * from treatment_plan where patient_id = $1", CHARTED))
        stored = {field: plan_row[field] for field in PLAN_FIELDS}
        content = PlanCreate.model_validate(stored | {"start_date": stored["start_date"].isoformat()})
        expected = content.model_dump(mode="json") | {"start_date": content.start_date}
        if expected != stored:
            sys.exit(f"seed.sql: the plan differs from what the API stores:\n{stored}\n{expected}")
        plan = TreatmentPlan.model_validate(plan_row)
        organization = Organization.model_validate(dict(await con.fetchrow("select * from organization")))
        zone = ZoneInfo(await con.fetchval("select timezone from patient where id = $1", CHARTED))
        rows = await con.fetch("select * from dosing_session where patient_id = $1 order by started_at", CHARTED)
        for row in rows:
            stored = {field: row[field] for field in SESSION_FIELDS}
            content = SessionCreate.model_validate(stored)
            if sessions._columns(content) != stored:
                sys.exit(f"seed.sql: a session differs from what the API stores:\n{stored}\n"
                         f"{sessions._columns(content)}")
            if warnings.compute(content, plan, organization, zone) != row["warnings"]:
                sys.exit(f"seed.sql: a session's warnings differ from the server's: {row['warnings']}")
        if len(rows) != 4:
            sys.exit(f"seed.sql: expected 4 sessions for patient 1, found {len(rows)}")
    finally:
        await con.close()


# --- servers -------------------------------------------------------------------------------------------------


def floor_token(sub: uuid.UUID) -> str:
    return run([PYTHON, str(FLOOR / "mktoken.py"), str(sub)]).stdout.strip()


def ours_token(role: str, patient: uuid.UUID) -> str:
    from api.security.tokens import Caller, issue_access_token
    from api.settings import Settings
    from models.users import Role

    settings = Settings(environment="production", secret_key=SECRET_KEY, database_url=f"{PG}/{OURS_DB}")
    if role == "patient":
        caller = Caller(PATIENT_USER, ORGANIZATION, Role.patient, patient)
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


def start_floor() -> subprocess.Popen:
    """The floor, one process on FLOOR_PORT, on the seeded `floor` database."""
    return start([PYTHON, "-m", "uvicorn", "--app-dir", str(FLOOR), "floor_app:app", "--port", str(FLOOR_PORT),
                  "--no-access-log"], FLOOR_PORT, {"FLOOR_DSN": f"{PG}/{FLOOR_DB}"}, "/v1/me/scores")


def start_ours() -> subprocess.Popen:
    """Calmtrack as deployed (`calmtrack serve`, one process) on OURS_PORT, on the seeded `calmtrack_bench`."""
    return start([str(ROOT / ".venv" / "bin" / "calmtrack"), "serve", "--port", str(OURS_PORT)], OURS_PORT,
                 {"DATABASE_URL": f"{PG}/{OURS_DB}", "ENVIRONMENT": "production", "SECRET_KEY": SECRET_KEY,
                  # One token sends every request: the limit is raised so it is counted but never reached.
                  "LOG_LEVEL": "WARNING", "RATE_LIMIT": "100000000/minute"}, "/readyz")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (the peak since the process started) of one process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {name: round(int(fields[name].split()[0]) / 1024, 1) for name in ("VmRSS", "VmHWM")}


def get(url: str, token: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def timed_ms(url: str, token: str, headers: dict[str, str] | None = None, times: int = 3) -> float:
    """The best of a few sequential requests: one request's latency on an otherwise idle server."""
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        get(url, token, headers)
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


def smoke(token: str, panel: int) -> str:
    """The chart and the dashboard answer 200 with the seeded plan, sessions and scores, and the chart's ETag
    answers 304; returns the ETag."""
    base = f"http://127.0.0.1:{OURS_PORT}"
    status, headers, body = get(base + CHART, token)
    chart = json.loads(body) if status == 200 else {}
    if status != 200 or not chart.get("points") or len(chart.get("sessions", [])) != 4 or chart.get("baseline") is None:
        sys.exit(f"smoke: the chart answered {status} without its points, 4 sessions and a baseline: {body[:500]!r}")
    tag = headers.get("etag") or headers.get("ETag")
    if not tag:
        sys.exit("smoke: the chart answered no ETag")
    status, _, body = get(base + CHART, token, {"If-None-Match": tag})
    if status != 304:
        sys.exit(f"smoke: the chart with If-None-Match answered {status}, not 304: {body[:300]!r}")
    status, _, body = get(base + SCENARIOS["dashboard"].ours_path, token)
    items = json.loads(body).get("items", []) if status == 200 else []
    if status != 200 or len(items) != min(100, panel):
        sys.exit(f"smoke: the dashboard answered {status} with {len(items)} rows: {body[:500]!r}")
    log(f"smoke: chart 200 ({len(chart['points'])} weeks, {len(chart['sessions'])} sessions, ETag {tag}), "
        f"If-None-Match 304, dashboard 200 ({len(items)} rows)")
    log("one request at a time (best of 3): chart {:.1f} ms, chart 304 {:.1f} ms, dashboard {:.1f} ms".format(
        timed_ms(base + CHART, token), timed_ms(base + CHART, token, {"If-None-Match": tag}),
        timed_ms(base + SCENARIOS["dashboard"].ours_path, token)))
    return tag


# --- measuring -----------------------------------------------------------------------------------------------


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, token: str, script: Path | None, duration: int, connections: int,
        headers: dict[str, str] | None = None) -> dict:
    # wrk's default 2 s timeout would drop slow answers from the latencies: none is dropped here.
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "60s", "--latency",
           "-H", f"Authorization: Bearer {token}"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = run([*cmd, url], env={**os.environ, "TOKEN": token}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    if rps == 0:  # every answer took longer than the run: its latency is unknown, only "above the duration"
        log(f"    WARNING: no request completed in {duration} s against {url}")
        return {"rps": 0.0, "p50": f">{duration}s", "p99": f">{duration}s", "p99_ms": float(duration * 1000),
                "non_2xx": 0, "socket_errors": None, "none_completed": True}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "p99_ms": to_ms(p99), "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else None}


def fmt_ms(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def markdown_row(date: str, scale: dict, name: str, result: dict, load: tuple[float, float]) -> str:
    floor_p99, ours_p99 = result["floor_p99_ms"], result["calmtrack_p99_ms"]
    mem = result["calmtrack_memory_mb"]
    rounds = len(result["runs"]["floor"])
    ranges = "; ".join(f"{side} {min(r['rps'] for r in runs):,.0f}–{max(r['rps'] for r in runs):,.0f}/s"
                       for side, runs in result["runs"].items())
    return (f"| {date} | {scale['patients']:,} | {name} | {result['floor_rps']:,.0f} | {result['calmtrack_rps']:,.0f} "
            f"| **{result['ratio']:.2f}** | {fmt_ms(floor_p99)} | {fmt_ms(ours_p99)} | {ours_p99 / floor_p99:.1f} "
            f"| {mem['VmRSS']:.0f} ({mem['VmHWM']:.0f}) | {rounds} × {result['duration_s']} s ({ranges}); "
            f"load {load[0]:.1f} → {load[1]:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--patients", type=int, help="overrides the scale's (small 2,000, large 10,000)")
    parser.add_argument("--panel", type=int, help="overrides the scale's (500)")
    parser.add_argument("--days", type=int, help="overrides the scale's (365)")
    parser.add_argument("--reseed", action="store_true", help="seed both databases even if they hold this scale")
    parser.add_argument("--seed-only", action="store_true", help="seed (or check the seed) and stop")
    args = parser.parse_args()
    if shutil.which("wrk") is None and not args.seed_only:
        sys.exit("wrk is not installed: apt-get install wrk")
    scale = {name: getattr(args, name) or value for name, value in SCALES[args.scale].items()}
    if scale["panel"] > scale["patients"]:
        sys.exit("--panel cannot exceed --patients")
    patient = patient_id(scale["patients"])
    scenarios = [SCENARIOS[name] for name in (args.scenario or SCENARIOS)]

    load_before = os.getloadavg()
    log(f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} on {os.cpu_count()} cores")
    log(f"scale: {scale['patients']:,} patients × {scale['days']} days = {scale['patients'] * scale['days']:,} "
        f"scores, panel {scale['panel']}")
    floor_seeding = seed_floor(scale, args.reseed)  # in the background, beside Calmtrack's
    try:
        seed_ours(scale, args.reseed)
    finally:
        finish_floor(floor_seeding)
    if args.seed_only:
        return 0

    floor, ours = start_floor(), start_ours()
    report: dict[str, dict] = {}
    try:
        log(f"calmtrack after start-up: {memory_mb(ours.pid)} MB; the floor: {memory_mb(floor.pid)} MB")
        clinician = ours_token("clinician", patient)
        etag = smoke(clinician, scale["panel"])
        log(f"calmtrack after start-up and smoke: {memory_mb(ours.pid)} MB")
        for scenario in scenarios:
            f_token = floor_token(patient if scenario.role == "patient" else CLINICIAN)
            o_token = ours_token(scenario.role, patient)
            headers = {"If-None-Match": etag} if scenario.conditional else None
            runs: dict[str, list[dict]] = {"floor": [], "calmtrack": []}
            for round_ in range(args.rounds):
                runs["floor"].append(wrk(f"http://127.0.0.1:{FLOOR_PORT}{scenario.floor_path}", f_token,
                                         scenario.script, args.duration, args.connections, headers))
                runs["calmtrack"].append(wrk(f"http://127.0.0.1:{OURS_PORT}{scenario.ours_path}", o_token,
                                             scenario.script, args.duration, args.connections, headers))
                log(f"  {scenario.name} round {round_ + 1}/{args.rounds}: floor {runs['floor'][-1]['rps']:,.0f}/s, "
                    f"calmtrack {runs['calmtrack'][-1]['rps']:,.0f}/s")
            if scenario.conditional:  # every answer was a 304 only if the tag is still current
                status, _, _ = get(f"http://127.0.0.1:{OURS_PORT}{scenario.ours_path}", o_token,
                                   {"If-None-Match": etag})
                if status != 304:
                    log(f"    WARNING: after the run the conditional chart answered {status}, not 304")
            floor_rps = statistics.median(r["rps"] for r in runs["floor"])
            ours_rps = statistics.median(r["rps"] for r in runs["calmtrack"])
            floor_p99 = statistics.median(r["p99_ms"] for r in runs["floor"])
            ours_p99 = statistics.median(r["p99_ms"] for r in runs["calmtrack"])
            report[scenario.name] = {
                "floor_rps": floor_rps, "calmtrack_rps": ours_rps, "ratio": round(ours_rps / floor_rps, 3),
                "floor_p99_ms": floor_p99, "calmtrack_p99_ms": ours_p99, "p99_ratio": round(ours_p99 / floor_p99, 2),
                "calmtrack_memory_mb": memory_mb(ours.pid), "floor_memory_mb": memory_mb(floor.pid),
                "duration_s": args.duration, "runs": runs}
    finally:
        stop(floor)
        stop(ours)
    load_after = os.getloadavg()

    date = dt.date.today().isoformat()
    print(f"\n{scale['patients']:,} patients, panel {scale['panel']}, {scale['days']} days; "
          f"{args.rounds} rounds × {args.duration} s, wrk -t1 -c{args.connections}; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after\n")
    for name, result in report.items():
        mem = result["calmtrack_memory_mb"]
        verdict = [f"throughput {'ok' if result['ratio'] >= 0.5 else 'BELOW'} 0.5",
                   f"p99 {'ok' if result['p99_ratio'] <= 3 else 'ABOVE'} 3×"]
        if scale["patients"] >= SCALES["large"]["patients"]:
            verdict.append(f"RSS {'ok' if mem['VmRSS'] <= RSS_TARGET_MB else 'ABOVE'} {RSS_TARGET_MB} MB")
        print(f"{name}: floor {result['floor_rps']:,.0f}/s, calmtrack {result['calmtrack_rps']:,.0f}/s, "
              f"ratio {result['ratio']:.2f}; p99 {fmt_ms(result['floor_p99_ms'])} vs "
              f"{fmt_ms(result['calmtrack_p99_ms'])} ({result['p99_ratio']:.1f}×); calmtrack RSS {mem['VmRSS']} MB "
              f"(peak {mem['VmHWM']} MB)  [{', '.join(verdict)}]")
        for side, measurements in result["runs"].items():
            for m in measurements:
                print(f"    {side:9} {m['rps']:8.0f}/s  p50 {m['p50']:>8}  p99 {m['p99']:>8}  non-2xx {m['non_2xx']}"
                      + (f"  socket errors: {m['socket_errors']}" if m["socket_errors"] else ""))
                if m["non_2xx"]:
                    print(f"    WARNING: {side} answered errors; its rate is not comparable")
    print("\n| date | patients | scenario | floor req/s | Calmtrack req/s | ratio | floor p99 | Calmtrack p99 "
          "| p99 ratio | Calmtrack RSS MB (peak) | notes |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for name, result in report.items():
        print(markdown_row(date, scale, name, result, (load_before[0], load_after[0])))

    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    meta = {"at": stamp, "duration_s": args.duration, "connections": args.connections, "rounds": args.rounds,
            **scale, "cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after}
    (results / f"{stamp}.json").write_text(json.dumps({"meta": meta, "scenarios": report}, indent=2))
    print(f"\nwritten bench/results/{stamp}.json")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
