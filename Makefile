# Everything runs from .venv, built from the hashed lock files in requirements/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run` is the zero-setup developer server: SQLite file, development mode, from the .env it writes once.

.PHONY: install run test test-sqlite test-postgres lock clean

install: $(STAMP)

$(STAMP): requirements/dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: install .env
	$(BIN)/calmtrack migrate
	$(BIN)/calmtrack serve --host $(HOST) --port $(PORT)

# Written only when missing, never overwritten: every `calmtrack` command reads it, from any shell started here.
.env:
	@printf 'ENVIRONMENT=development\nSECRET_KEY=%s\n' "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))')" > $@
	@echo "wrote $@: development mode and a generated SECRET_KEY"

# The whole suite against DATABASE_URL (default: a throw-away SQLite file per test).
test: install
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

lock:
	uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --quiet -o requirements/runtime.lock
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes --quiet -o requirements/dev.lock

clean:
	rm -rf $(VENV) .pytest_cache calmtrack.db
