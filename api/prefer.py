"""`Prefer: return=minimal` (RFC 7240) on creating POSTs: ids and statuses only, not the whole record.

A phone creating records it already holds has no use for the echo: with the preference, a creating POST answers
the record's id (and its status where it has one), the same status code and headers (`ETag`, `Location`), and
`Preference-Applied: return=minimal`. Without it, or with `return=representation`, the full record as before.
A preference is a hint: routes whose answer is its content (an enrollment code, a token pair) ignore it and say
nothing. Replays (`Idempotency-Key`, or a score's id sent again) follow the preference of the replaying request:
the stored answer is the full record, shaped when it is sent.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Header, Response
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

MINIMAL = "return=minimal"
PREFERENCE_APPLIED = "Preference-Applied"


class CreatedMinimal(BaseModel):
    """A creating POST's answer under `Prefer: return=minimal` for records without a status of their own."""

    id: uuid.UUID = Field(description="The created (or replayed) record's id")


def prefers_minimal(prefer: str | None) -> bool:
    """Whether a Prefer header value asks for `return=minimal`. Preferences are comma-separated `name[=value]` with
    optional `;` parameters; names are case-insensitive; only the first `return` counts (RFC 7240 section 2);
    anything unknown or malformed is ignored, as a preference may be."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.partition(";")[0].partition("=")
        if name.strip().lower() == "return":
            return value.strip().strip('"').lower() == "minimal"
    return False


MAX_PREFER_LENGTH = 1024


def _minimal_preferred(value: str) -> bool:
    if len(value) > MAX_PREFER_LENGTH:
        raise PydanticCustomError("string_too_long", "String should have at most {max_length} characters",
                                  {"max_length": MAX_PREFER_LENGTH})
    return prefers_minimal(value)


# The header parsed into a bool by its own validator: a route parameter (`minimal: MinimalPreferred = None`, None
# without the header) rather than a dependency, because every dependency costs FastAPI about as much work per
# request as a header (bench/README.md, 2026-11-30), and this one is on the phone's score post. Documented as what
# it is, a string.
_PREFER = ("RFC 7240. `return=minimal`: answer the record's id (and status) only, with Preference-Applied: "
           "return=minimal")
MinimalPreferred = Annotated[bool | None, BeforeValidator(_minimal_preferred), WithJsonSchema(
    {"anyOf": [{"type": "string", "maxLength": MAX_PREFER_LENGTH}, {"type": "null"}], "description": _PREFER}),
    Header(alias="Prefer", description=_PREFER)]


def applied(response: Response) -> None:
    response.headers[PREFERENCE_APPLIED] = MINIMAL
