"""Writing domain events to the outbox, inside the caller's transaction (see models/outbox.py)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from models.base import utcnow, uuid7
from models.outbox import OutboxEvent

EVENT_TYPES = frozenset({"score.created", "alert.raised", "session.signed", "plan.updated"})


def event_values(organization_id: uuid.UUID, type: str, data: Mapping[str, object]) -> dict[str, Any]:
    """Every column of one event; `data` holds ids only (converted to strings)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    return {
        "id": uuid7(),
        "organization_id": organization_id,
        "type": type,
        "data": {key: str(value) if isinstance(value, uuid.UUID) else value for key, value in data.items()},
        "created_at": utcnow(),
        "dispatched_at": None,
    }


def enqueue(session: AsyncSession, organization_id: uuid.UUID, type: str, data: Mapping[str, object]) -> None:
    """Adds an event to the current transaction."""
    session.add(OutboxEvent(**event_values(organization_id, type, data)))
