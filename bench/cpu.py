"""Where a scenario's CPU goes, per request, under the benchmark's load: the server process's and PostgreSQL's
(every postgres process), for the floor and for Calmtrack, on the databases `bench/run.py` seeded (either scale).

A throughput ratio says how far off a request is; this says on which side of the connection the difference lies,
which is what decides between changing the app's Python and changing its statements. On 2 cores the two sides
share the CPUs, so a request's rate is bounded by the sum.

    .venv/bin/python bench/cpu.py [--scenario dashboard ...] [--duration 8]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import run as bench  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a backend that ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def _postgres_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()
            and Path(f"/proc/{p}/comm").exists() and Path(f"/proc/{p}/comm").read_text().strip() == "postgres"]


def _tree(pid: int) -> list[int]:
    """A server and its children (uvicorn's reloader-free serve is one process, but say so by measuring)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(q for child in children.read_text().split() for q in _tree(int(child)))]


def measure(server_pid: int, url: str, token: str, scenario: bench.Scenario, duration: int, connections: int,
            headers: dict[str, str] | None) -> dict:
    server = _tree(server_pid)
    before_app, before_pg = _cpu_seconds(server), _cpu_seconds(_postgres_pids())
    result = bench.wrk(url, token, scenario.script, duration, connections, headers)
    after_app, after_pg = _cpu_seconds(server), _cpu_seconds(_postgres_pids())
    requests = result["rps"] * duration
    return {"rps": result["rps"], "p99": result["p99"],
            "app_ms": 1000 * (after_app - before_app) / requests, "pg_ms": 1000 * (after_pg - before_pg) / requests}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=sorted(bench.SCENARIOS))
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--patients", type=int, default=bench.SCALES["small"]["patients"],
                        help="the seeded scale's (the posting patient is the last one)")
    args = parser.parse_args()
    patient = bench.patient_id(args.patients)
    floor, ours = bench.start_floor(), bench.start_ours()
    try:
        clinician = bench.ours_token("clinician", patient)
        etag = bench.smoke(clinician, bench.SCALES["small"]["panel"])
        print("scenario   side       req/s    p99       app ms/req  postgres ms/req  sum")
        for name in args.scenario or bench.SCENARIOS:
            scenario = bench.SCENARIOS[name]
            headers = {"If-None-Match": etag} if scenario.conditional else None
            sides = {"floor": (floor.pid, f"http://127.0.0.1:{bench.FLOOR_PORT}{scenario.floor_path}",
                               bench.floor_token(patient if scenario.role == "patient" else bench.CLINICIAN)),
                     "calmtrack": (ours.pid, f"http://127.0.0.1:{bench.OURS_PORT}{scenario.ours_path}",
                                   bench.ours_token(scenario.role, patient))}
            for _ in range(args.rounds):
                for side, (pid, url, token) in sides.items():
                    m = measure(pid, url, token, scenario, args.duration, args.connections, headers)
                    print(f"{name:10} {side:9} {m['rps']:7.0f}  {m['p99']:>8}  {m['app_ms']:10.2f}  "
                          f"{m['pg_ms']:15.2f}  {m['app_ms'] + m['pg_ms']:5.2f}", flush=True)
    finally:
        bench.stop(floor)
        bench.stop(ours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
