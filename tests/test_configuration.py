"""Set-up from any shell: every `calmtrack` command reads `.env` in the working directory, and a configuration error
is one line on stderr naming the setting, exit status 2, no traceback (issue 12)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from api import migrate
from api.cli import main
from api.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """A second shell: nothing exported, the working directory elsewhere, its `.env` read as the app reads it (the
    rest of the suite ignores `.env`: tests/conftest.py)."""
    for name in ("DATABASE_URL", "ENVIRONMENT", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(Settings.model_config, "env_file", ".env")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _migrated_revision(path: Path) -> str | None:
    import sqlite3

    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_migrate_reads_the_database_from_dot_env(shell, capsys):
    target = shell / "from-dotenv.db"
    (shell / ".env").write_text(f"DATABASE_URL=sqlite:///{target}\n")
    assert main(["migrate"]) == 0
    assert _migrated_revision(target) == migrate.head_revision()
    assert not (shell / "calmtrack.db").exists()


def test_settings_read_dot_env(shell):
    (shell / ".env").write_text("ENVIRONMENT=development\nSECRET_KEY=" + "k" * 40 + "\nDB_POOL_SIZE=7\n")
    settings = get_settings()
    assert (settings.environment, settings.secret_key, settings.db_pool_size) == ("development", "k" * 40, 7)


COMMANDS = {
    "serve": ["serve", "--port", "1"],
    "migrate": ["migrate"],
    "create-admin": ["create-admin", "--organization", "C", "--email", "a@example.com", "--password", "p" * 16],
    "worker": ["worker", "--once"],
}


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("url", ["mysql://u@h/d", "no url at all", "postgresql://u:secret@h:notaport/d"])
def test_a_bad_database_url_is_one_line_and_status_2(shell, capsys, command, url):
    (shell / ".env").write_text(f"ENVIRONMENT=development\nDATABASE_URL={url}\n")
    assert main(COMMANDS[command]) == 2
    line = _one_line_error(capsys)
    assert "DATABASE_URL" in line
    assert "secret" not in line  # a password in the URL is never echoed


@pytest.mark.parametrize("command", ["serve", "create-admin", "worker"])
@pytest.mark.parametrize("key", ["", "short", "calmtrack-development-key-do-not-use-in-production"])
def test_a_weak_signing_key_outside_development_is_one_line_and_status_2(shell, capsys, monkeypatch, command, key):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{shell / 'x.db'}")
    if key:
        monkeypatch.setenv("SECRET_KEY", key)
    assert main(COMMANDS[command]) == 2
    assert "SECRET_KEY" in _one_line_error(capsys)


def test_an_invalid_value_names_its_setting(shell, capsys):
    (shell / ".env").write_text("ENVIRONMENT=development\nDB_POOL_SIZE=lots\n")
    assert main(COMMANDS["worker"]) == 2
    assert "DB_POOL_SIZE" in _one_line_error(capsys)


def test_make_writes_a_development_dot_env_once_and_never_overwrites_it(tmp_path):
    run = ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path), ".env"]
    subprocess.run(run, check=True, capture_output=True)
    values = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines())
    assert values["ENVIRONMENT"] == "development"
    assert len(values["SECRET_KEY"]) >= 48
    (tmp_path / ".env").write_text("ENVIRONMENT=production\n")
    subprocess.run(run, check=True, capture_output=True)
    assert (tmp_path / ".env").read_text() == "ENVIRONMENT=production\n"


def test_dot_env_is_not_committed():
    assert subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", ".env"]).returncode == 0
