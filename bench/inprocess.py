"""One scenario's requests through Calmtrack's ASGI app in this process, without a server or a client: the cost of
the app's own work per request, for A/B comparisons on a machine whose speed varies (see bench/README.md).

Run it under callgrind for a count that does not depend on the machine's speed or load (instructions, from the
first measured request to the last; the warm-up is not counted):

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.%p \\
        .venv/bin/python bench/inprocess.py --scenario ingest --requests 200 --callgrind
    # the instructions per request: the `totals:` line of /tmp/cg.<pid>.1 divided by --requests

Without valgrind it prints the process CPU time per request (noisy). Reads the database `bench/run.py` seeded
(either scale); ingest adds scores to the ingest patient, as the benchmark does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import run as bench  # noqa: E402  (bench/run.py: the seeded ids, the token helper, the database)


def _scope(method: str, target: str, headers: list[tuple[bytes, bytes]]) -> dict:
    path, _, query = target.partition("?")
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), *headers], "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", bench.OURS_PORT)}


async def _measure(scenario: bench.Scenario, requests: int, warm_up: int, callgrind: bool) -> None:
    from api.app import create_app

    app = create_app()
    token = bench.ours_token(scenario.role, bench.patient_id(2000)).encode()
    auth = [(b"authorization", b"Bearer " + token)]
    etag: list[bytes] = []

    async def one() -> None:
        if scenario.script is not None:  # ingest: a new score each time, as the wrk script posts
            body = json.dumps({"id": str(uuid.uuid4()), "instrument": "gad7", "items": [2, 1, 2, 3, 1, 0, 2],
                               "recorded_at": "2026-11-20T08:30:00+01:00"}).encode()
            scope = _scope("POST", scenario.ours_path, [*auth, (b"content-type", b"application/json"),
                                                        (b"content-length", str(len(body)).encode())])
        else:
            body = b""
            scope = _scope("GET", scenario.ours_path, [*auth, *[(b"if-none-match", tag) for tag in etag]])
        delivered = False

        async def receive() -> dict:
            nonlocal delivered
            if delivered:
                await asyncio.Event().wait()  # the client never disconnects
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        statuses: list[int] = []

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
                if scenario.conditional and not etag:
                    etag.extend(value for key, value in message["headers"] if key == b"etag")

        await app(scope, receive, send)
        if statuses[0] >= 400:
            raise SystemExit(f"{scenario.name}: answered {statuses[0]}")

    async with app.router.lifespan_context(app):
        for _ in range(warm_up):
            await one()
        if callgrind:
            subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
        started = time.process_time()
        for _ in range(requests):
            await one()
        spent = time.process_time() - started
        if callgrind:
            subprocess.run(["callgrind_control", "-d", str(os.getpid())], check=True, capture_output=True)
    print(f"{scenario.name}: {requests} requests, {spent / requests * 1e6:.0f} µs of CPU each"
          f"{' (under callgrind: read the dump)' if callgrind else ''}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(bench.SCENARIOS), default="ingest")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warm-up", type=int, default=300)
    parser.add_argument("--callgrind", action="store_true", help="toggle callgrind's counting around the requests")
    args = parser.parse_args()
    os.environ.update(ENVIRONMENT="production", SECRET_KEY=bench.SECRET_KEY, LOG_LEVEL="WARNING",
                      DATABASE_URL=f"{bench.PG}/{bench.OURS_DB}", RATE_LIMIT="100000000/minute")
    import uvloop  # the server's event loop

    uvloop.run(_measure(bench.SCENARIOS[args.scenario], args.requests, args.warm_up, args.callgrind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
