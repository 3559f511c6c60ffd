"""Staff accounts (admins and clinicians) of an organization."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.errors import Conflict
from api.pagination import SortKey, keyset, page_of
from api.security.passwords import hash_password
from api.security.tokens import Caller
from api.users.schemas import UserCreate
from models.organizations import Organization
from models.users import Role, User

STAFF_ORDER: list[SortKey] = [(User.full_name, "asc"), (User.id, "asc")]


async def create_user(
    session: AsyncSession, organization_id: uuid.UUID, request: UserCreate, *, caller: Caller | None
) -> User:
    user = User(
        organization_id=organization_id,
        email=request.email,
        full_name=request.full_name,
        role=Role(request.role),
        password_hash=hash_password(request.password),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Conflict("An account with this email already exists", code="email_taken") from None
    audit.record(session, caller, "user.create", resource_type="user", resource_id=user.id,
                 organization_id=organization_id)
    await session.commit()
    return user


async def list_staff(
    session: AsyncSession, caller: Caller, *, role: Role | None, limit: int, cursor: str | None
) -> tuple[list[User], str | None]:
    stmt = select(User).where(User.organization_id == caller.organization_id, User.role != Role.patient)
    if role is not None:
        stmt = stmt.where(User.role == role)
    rows = (await session.exec(keyset(stmt, STAFF_ORDER, limit=limit, cursor=cursor))).scalars().all()
    return page_of(rows, STAFF_ORDER, limit=limit)


async def get_staff_member(session: AsyncSession, organization_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
    return (
        await session.exec(
            select(User).where(User.id == user_id, User.organization_id == organization_id, User.role != Role.patient)
        )
    ).scalar_one_or_none()


async def bootstrap_admin(session: AsyncSession, organization_name: str, request: UserCreate) -> User:
    """Console bootstrap: the organization (created if new) and its admin."""
    organization = (
        await session.exec(select(Organization).where(Organization.name == organization_name))
    ).scalars().first()
    if organization is None:
        organization = Organization(name=organization_name)
        session.add(organization)
        await session.flush()
    return await create_user(session, organization.id, request, caller=None)
