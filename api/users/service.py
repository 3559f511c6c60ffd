"""Staff accounts (admins and clinicians) of an organization."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.auth.service import revoke_refresh_tokens
from api.errors import Conflict, NotFound
from api.pagination import SortKey, keyset, page_of
from api.security import revocation
from api.security.passwords import hash_password
from api.security.revocation import Subject
from api.security.tokens import Caller
from api.users.schemas import UserCreate, UserUpdate
from models.base import utcnow
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


LAST_ADMIN = ("An organization keeps at least one active admin: make another staff member admin before this one "
              "is deactivated or demoted")


async def lock_organization(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """Serializes changes to an organization's staff accounts until the transaction ends; must be the transaction's
    first statement. PostgreSQL: the organization's row, FOR UPDATE, so two admins deactivating or demoting each
    other at once run one after the other and the second sees the first. SQLite has no row locks: a write as the
    first statement takes its single write lock at once, which does the same."""
    if session.bind.dialect.name == "postgresql":
        await session.exec(select(Organization.id).where(Organization.id == organization_id).with_for_update())
    else:
        await session.exec(update(Organization).where(Organization.id == organization_id)
                           .values(name=Organization.name))


async def update_user(session: AsyncSession, caller: Caller, user_id: uuid.UUID, request: UserUpdate) -> User:
    """Renames, re-roles, deactivates or reactivates a staff member of the caller's organization.

    Deactivation ends the account's access at once: a principal revocation refuses every access token issued before
    it on every process (api/security/revocation.py), every refresh token is revoked, and login answers the wrong
    password's 401. A role change revokes the access tokens too (they carry the old role); a refresh or login then
    issues the new one. The last active admin can be neither deactivated nor demoted (409 `last_active_admin`).
    Each change is its own audit event; nothing is deleted."""
    await lock_organization(session, caller.organization_id)
    user = await get_staff_member(session, caller.organization_id, user_id)
    if user is None:
        raise NotFound("User not found")
    changes = {name: value for name, value in request.model_dump(exclude_unset=True).items()
               if value != getattr(user, name)}
    was_active_admin = user.role == Role.admin and user.is_active
    for name, value in changes.items():
        setattr(user, name, Role(value) if name == "role" else value)
    if was_active_admin and not (user.role == Role.admin and user.is_active):
        others = (await session.exec(
            select(func.count()).select_from(User)
            .where(User.organization_id == caller.organization_id, User.role == Role.admin,
                   User.is_active.is_(True), User.id != user_id)
        )).scalar_one()
        if others == 0:
            await session.rollback()
            raise Conflict(LAST_ADMIN, code="last_active_admin")
    session.add(user)
    now = utcnow()
    if "is_active" in changes and not user.is_active:
        await revoke_refresh_tokens(session, user_id, now)
        revocation.revoke(session, Subject.principal, user_id, "deactivated", now=now)
    elif "role" in changes and user.is_active:
        revocation.revoke(session, Subject.principal, user_id, "role_change", now=now)
    for action in _actions(changes):
        audit.record(session, caller, action, resource_type="user", resource_id=user_id)
    await session.commit()
    return user


def _actions(changes: dict) -> list[str]:
    """One audit event per kind of change, named after it (the audit log has no free-text details)."""
    actions = []
    if "full_name" in changes:
        actions.append("user.rename")
    if "role" in changes:
        actions.append(f"user.role_to_{changes['role']}")
    if "is_active" in changes:
        actions.append("user.reactivate" if changes["is_active"] else "user.deactivate")
    return actions


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
