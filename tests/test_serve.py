"""`calmtrack serve --workers N` as a real process: N processes share the port, and SIGTERM lets in-flight requests
finish before the process exits 0 (issue 12)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api import migrate

CALMTRACK = str(Path(sys.executable).with_name("calmtrack"))
PASSWORD = "a long enough secret"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                if connection.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not start")


def _worker_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


@pytest.fixture
def server_env(tmp_path) -> dict[str, str]:
    database_url = f"sqlite:///{tmp_path / 'serve.db'}"
    migrate.upgrade(database_url)
    env = {**os.environ, "ENVIRONMENT": "development", "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    subprocess.run([CALMTRACK, "create-admin", "--organization", "Serve Clinic", "--email", "admin@serve.example",
                    "--password", PASSWORD], env=env, cwd=tmp_path, check=True, capture_output=True)
    return env


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_an_in_flight_request_finish_and_exits_0(server_env, tmp_path, workers):
    port = _free_port()
    process = subprocess.Popen([CALMTRACK, "serve", "--port", str(port), "--workers", str(workers)], env=server_env,
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_until_serving(port, process)
        if workers > 1:
            assert len(_worker_pids(process.pid)) >= workers

        # A slow client: the request (a login) reaches the app with its headers, and its body arrives only after
        # the server was told to stop. Graceful shutdown must wait for it and answer it.
        body = json.dumps({"email": "admin@serve.example", "password": PASSWORD}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                               b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            time.sleep(1.5)
            assert process.poll() is None  # still finishing the request
            connection.sendall(body[10:])
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert b"access_token" in answer
        assert process.wait(timeout=30) == 0, process.stderr.read().decode() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_workers_must_be_positive(capsys):
    from api.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--workers", "0"])
    assert exit_.value.code == 2
    assert "--workers" in capsys.readouterr().err
