"""Every statement on the session tables. Callers have authorised the session's patient (api.authz) first."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from api.authz import SUPERVISING_TEAM_ROLES
from api.pagination import SortKey, keyset, page_of
from models.dosing_sessions import DosingSession, SessionAddendum, SessionStatus
from models.patients import CareTeamMember, Patient
from models.plans import PlanStatus, TreatmentPlan
from models.users import Role, User

NEWEST_STARTED_FIRST: list[SortKey] = [(DosingSession.started_at, "desc"), (DosingSession.id, "desc")]
OLDEST_CHANGE: list[SortKey] = [(DosingSession.updated_at, "asc"), (DosingSession.id, "asc")]


async def get(session: AsyncSession, session_id: uuid.UUID) -> DosingSession | None:
    return await session.get(DosingSession, session_id)


async def advance(
    session: AsyncSession, session_id: uuid.UUID, expected_revision: int, values: Mapping[str, Any]
) -> DosingSession | None:
    """Applies `values` and the next revision number if the session is still the draft at `expected_revision`;
    None if not. The check is part of the UPDATE, so of two writers holding one revision exactly one matches
    (on PostgreSQL the second waits for the row lock, then re-reads the row; SQLite serialises writes)."""
    stmt = (
        update(DosingSession)
        .where(DosingSession.id == session_id, DosingSession.revision == expected_revision,
               DosingSession.status == SessionStatus.draft)
        .values(**values, revision=DosingSession.revision + 1)
        .returning(DosingSession)
        .execution_options(populate_existing=True)
    )
    return (await session.exec(stmt)).scalar_one_or_none()


async def page(
    session: AsyncSession, patient_id: uuid.UUID, *, statuses: Collection[SessionStatus],
    updated_since: dt.datetime | None, limit: int, cursor: str | None, carry: str | None = None,
) -> tuple[list[DosingSession], str | None]:
    """Newest started first; in delta sync (updated_since given) every session changed since then, oldest change
    first."""
    stmt = select(DosingSession).where(DosingSession.patient_id == patient_id, DosingSession.status.in_(statuses))
    keys = NEWEST_STARTED_FIRST
    if updated_since is not None:
        stmt, keys = stmt.where(DosingSession.updated_at >= updated_since), OLDEST_CHANGE
    rows = (await session.exec(keyset(stmt, keys, limit=limit, cursor=cursor))).scalars().all()
    return page_of(rows, keys, limit=limit, carry=carry)


async def touch(session: AsyncSession, session_id: uuid.UUID, now: dt.datetime) -> None:
    """Stamps a session's change time, and nothing else (an addendum changed what its lists show). Allowed on a
    signed session by its trigger (migration 0012) because only `updated_at` moves, and only forward."""
    await session.exec(update(DosingSession).where(DosingSession.id == session_id, DosingSession.updated_at < now)
                       .values(updated_at=now))


async def addenda(session: AsyncSession, session_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[SessionAddendum]]:
    """The addenda of several sessions in one query, oldest first per session."""
    found: dict[uuid.UUID, list[SessionAddendum]] = defaultdict(list)
    if session_ids:
        stmt = (select(SessionAddendum).where(SessionAddendum.session_id.in_(session_ids))
                .order_by(SessionAddendum.created_at, SessionAddendum.id))
        for addendum in (await session.exec(stmt)).scalars().all():
            found[addendum.session_id].append(addendum)
    return found


async def active_plan(session: AsyncSession, patient_id: uuid.UUID) -> TreatmentPlan | None:
    """The patient's one active plan (a partial unique index guarantees there is at most one)."""
    stmt = select(TreatmentPlan).where(TreatmentPlan.patient_id == patient_id,
                                       TreatmentPlan.status == PlanStatus.active)
    return (await session.exec(stmt)).scalar_one_or_none()


async def plan(session: AsyncSession, plan_id: uuid.UUID) -> TreatmentPlan | None:
    return await session.get(TreatmentPlan, plan_id)


async def is_care_team_clinician(session: AsyncSession, patient: Patient, user_id: uuid.UUID) -> bool:
    """Whether the user is an active clinician of the patient's organization on the patient's care team in a role
    that may supervise a dosing session (prescriber or monitor)."""
    stmt = (
        select(User.id)
        .join(CareTeamMember, CareTeamMember.user_id == User.id)
        .where(User.id == user_id, User.organization_id == patient.organization_id, User.role == Role.clinician,
               User.is_active.is_(True), CareTeamMember.patient_id == patient.id,
               CareTeamMember.role.in_(SUPERVISING_TEAM_ROLES))
    )
    return (await session.exec(stmt)).first() is not None
