"""Peak memory of the server while a client pulls the bulk score export (issue 10: constant memory).

For each size asked for, seeds a fresh database with that many scores of one organization in a single
`generate_series` INSERT (1,000 patients, the scores spread over them), starts a real server (`calmtrack serve`, one
process, production mode, PostgreSQL), pulls `GET /v1/exports/scores?format=…` as the admin while sampling the
server's resident memory, and prints rows, bytes, time and the server's RSS before and at its peak (VmHWM, the
kernel's high-water mark, so no sample can miss it). Constant memory shows as the same peak for every size.

    .venv/bin/python bench/export.py [--scores 100000 1000000] [--format ndjson]

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, as run.py) and psql; no wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg
import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from run import PG, ROOT, recreate, run, start, stop  # noqa: E402 (the harness's helpers)

PORT = 8903
DATABASE = "calmtrack_export_bench"
SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"
ADMIN, PASSWORD = "admin@export.example", "bench password of some length"
PATIENTS = 1000

PATIENTS_SQL = """
INSERT INTO patient (id, organization_id, full_name, date_of_birth, timezone, external_id, created_at, updated_at)
SELECT gen_random_uuid(), $1, 'Patient ' || n, DATE '1980-01-01' + n, 'America/New_York', 'MRN-' || n, now(), now()
FROM generate_series(1, $2::int) AS n
"""
# One GAD-7 every third of a second, oldest 400 days ago (all settled: older than the export's watermark); every
# hundredth retracted, so tombstones are in the pull too.
SCORES_SQL = """
WITH patients AS (SELECT array_agg(id ORDER BY id) AS ids FROM patient WHERE organization_id = $1)
INSERT INTO score (id, patient_id, instrument, items, total, severity, recorded_at, recorded_offset_minutes,
                   received_at, source, entered_by, entered_by_client, note, updated_at, deleted_at)
SELECT gen_random_uuid(), ids[1 + n % array_length(ids, 1)], 'gad7', '[2, 1, 2, 3, 1, 0, 2]'::json, 11, 'moderate',
       t, -300, t, 'patient', $2, NULL, NULL, t, CASE WHEN n % 100 = 0 THEN t END
FROM patients, generate_series(1, $3::int) AS n,
     LATERAL (SELECT now() - interval '400 days' + n * interval '1 second' / 3) AS at(t)
"""


def memory(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of the process, in KiB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def seed(url: str, scores: int) -> None:
    connection = await asyncpg.connect(url)
    try:
        organization, admin = await connection.fetchrow(
            "SELECT organization_id, id FROM app_user WHERE email = $1", ADMIN)
        began = time.perf_counter()
        async with connection.transaction():
            await connection.execute(PATIENTS_SQL, organization, PATIENTS)
            await connection.execute(SCORES_SQL, organization, admin, scores)
        await connection.execute("ANALYZE patient; ANALYZE score")  # as autovacuum would have by now
        print(f"seeded {scores:,} scores in {time.perf_counter() - began:.1f} s")
    finally:
        await connection.close()


async def pull(pid: int, format: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=None) as client:
        login = await client.post("/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        # A first small request warms the process (imports, pools) so that the baseline is the steady state.
        (await client.get("/v1/exports/scores", params={"format": format, "updated_since": "2100-01-01T00:00:00Z"},
                          headers=headers)).raise_for_status()
        before, _ = memory(pid)
        rows = size = 0
        began = time.perf_counter()
        async with client.stream("GET", "/v1/exports/scores", params={"format": format}, headers=headers) as answer:
            answer.raise_for_status()
            async for chunk in answer.aiter_bytes():
                size += len(chunk)
                rows += chunk.count(b"\n")
        elapsed = time.perf_counter() - began
        status = Path(f"/proc/{pid}/status").read_text()
        if "VmRSS" not in status:
            raise RuntimeError("the server exited during the pull: " + " / ".join(status.splitlines()[:3]))
        after, peak = memory(pid)
        return {"rows": rows - (format == "csv"), "bytes": size, "seconds": elapsed, "rss_before": before,
                "rss_after": after, "rss_peak": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scores", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--format", choices=["csv", "ndjson"], default="ndjson")
    args = parser.parse_args()
    url = f"{PG}/{DATABASE}"
    env = {**os.environ, "DATABASE_URL": url, "ENVIRONMENT": "production", "SECRET_KEY": SECRET_KEY,
           "LOG_LEVEL": "WARNING", "RATE_LIMIT": "100000000/minute"}
    calmtrack = str(ROOT / ".venv" / "bin" / "calmtrack")
    results = []
    for scores in args.scores:
        asyncio.run(recreate(DATABASE))
        run([calmtrack, "migrate"], env=env)
        run([calmtrack, "create-admin", "--organization", "Export Bench Clinic", "--email", ADMIN, "--password",
             PASSWORD], env=env)
        asyncio.run(seed(url, scores))
        server = start([calmtrack, "serve", "--port", str(PORT)], PORT, env, "/readyz")
        time.sleep(1)
        if server.poll() is not None:  # e.g. the port is taken: the pull would measure someone else's server
            raise RuntimeError(f"the server exited: {server.stderr.read().decode()[-500:] if server.stderr else ''}")
        try:
            result = asyncio.run(pull(server.pid, args.format))  # one worker: uvicorn serves in this process
        finally:
            stop(server)
        results.append((scores, result))
        print(f"{scores:>10,} scores: {result['rows']:,} rows, {result['bytes'] / 2**20:.0f} MiB in "
              f"{result['seconds']:.1f} s ({result['rows'] / result['seconds']:,.0f} rows/s); server RSS "
              f"{result['rss_before'] / 1024:.0f} MiB before, peak {result['rss_peak'] / 1024:.0f} MiB, "
              f"{result['rss_after'] / 1024:.0f} MiB after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
