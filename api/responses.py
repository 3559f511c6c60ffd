"""Answers serialised from the values a route computed, for a large answer on a hot path (the dashboard's page).

FastAPI validates a route's return value against its declared model and serialises it with pydantic: for the
dashboard's hundred rows that is two passes costing more than the rest of the page's Python (bench/README.md,
2026-11-30). The rows are built by our own code from typed database values, so the page is written directly with
orjson instead, in the same bytes pydantic writes for the declared model (UTC instants with `Z`, dates in ISO
8601, enumerations by value, fields in the model's order). The route still declares its model, so the OpenAPI
document is unchanged; tests check that the bytes are exactly pydantic's serialisation of that model
(tests/test_dashboard.py) and the fuzzing checks every answer against the schema (tests/test_fuzz.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import Response


def _other(value: object) -> str:
    """asyncpg answers UUIDs of its own class, which orjson does not take for uuid.UUID; anything else unexpected
    fails loudly rather than being written as text."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not serialisable here")


def dumps(body: Any) -> bytes:
    return orjson.dumps(body, default=_other, option=orjson.OPT_UTC_Z)


def json_answer(body: Any) -> Response:
    return Response(dumps(body), media_type="application/json")
