"""Enrolling, confirming and removing a staff member's TOTP authenticator (docs/accounts.md).

Enrolment is pending until confirmed with a code of the new authenticator; confirmation answers ten recovery codes
(stored as SHA-256, shown once) and marks the caller's own login session as having proved two factors. Removal
needs a current code or a recovery code, checked under the login lockout (a stolen access token must not be able to
guess its way to switching two-factor off)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, update
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.auth import service as auth
from api.errors import Conflict, InvalidAccessToken, ValidationFailed
from api.mfa import factors
from api.mfa.schemas import RecoveryCodes, TotpEnrollment
from api.security import revocation
from api.security.revocation import Subject
from api.security.secretbox import seal
from api.security.tokens import Caller
from api.settings import Settings
from models.organizations import Organization
from models.users import RecoveryCode, RefreshToken, User, UserTotp

INVALID_CODE = "Invalid or already used code"


def _invalid_code() -> ValidationFailed:
    return ValidationFailed(INVALID_CODE, code="invalid_otp", errors=[{"loc": ["body", "code"], "msg": INVALID_CODE}])


async def _user(session: AsyncSession, caller: Caller) -> User:
    user = await session.get(User, caller.user_id)
    if user is None or not user.is_active:
        raise InvalidAccessToken("This account no longer exists or is disabled")
    return user


async def start(session: AsyncSession, settings: Settings, caller: Caller, now: dt.datetime) -> TotpEnrollment:
    user = await _user(session, caller)
    row = await factors.authenticator(session, caller.user_id)
    if row is not None and row.confirmed_at is not None:
        raise Conflict("Two-factor sign-in is already enabled; remove it first to enrol another authenticator",
                       code="mfa_already_enabled")
    secret = factors.new_secret()
    if row is None:
        row = UserTotp(user_id=caller.user_id, secret_encrypted="")
    # A new start replaces a pending secret (a QR code scanned on the wrong phone).
    row.secret_encrypted, row.created_at, row.last_step = seal(settings.secret_key, secret), now, None
    session.add(row)
    audit.record(session, caller, "mfa.totp_start", resource_type="user", resource_id=caller.user_id)
    await session.commit()
    uri = factors.totp_of(secret).provisioning_uri(name=user.email, issuer_name=factors.ISSUER)
    return TotpEnrollment(secret=secret, otpauth_uri=uri)


async def confirm(session: AsyncSession, settings: Settings, caller: Caller, code: str, now: dt.datetime) -> RecoveryCodes:
    row = await factors.authenticator(session, caller.user_id)
    if row is None or row.confirmed_at is not None:
        raise Conflict("No two-factor enrolment is pending: start one with POST /v1/me/mfa/totp",
                       code="mfa_not_pending")
    if not await factors.accept_totp(session, settings.secret_key, row, code.strip(), now):
        raise _invalid_code()
    await session.exec(update(UserTotp).where(UserTotp.user_id == caller.user_id).values(confirmed_at=now))
    codes = factors.new_recovery_codes()
    await session.exec(delete(RecoveryCode).where(RecoveryCode.user_id == caller.user_id))
    session.add_all([RecoveryCode(user_id=caller.user_id, code_hash=factors.recovery_code_hash(c), created_at=now)
                     for c in codes])
    if caller.session_id is not None:
        # This session has now shown both factors (the password at login, a code here): its next refresh carries
        # `mfa`, so an organization requiring two-factor lets it through without signing in again.
        await session.exec(update(RefreshToken)
                           .where(RefreshToken.family_id == caller.session_id, RefreshToken.user_id == caller.user_id)
                           .values(mfa=True))
    audit.record(session, caller, "mfa.totp_confirm", resource_type="user", resource_id=caller.user_id)
    await session.commit()
    return RecoveryCodes(recovery_codes=codes)


async def remove(session: AsyncSession, settings: Settings, caller: Caller, code: str, now: dt.datetime) -> None:
    user = await _user(session, caller)
    row = await factors.authenticator(session, caller.user_id)
    if row is None or row.confirmed_at is None:
        raise Conflict("Two-factor sign-in is not enabled", code="mfa_not_enabled")
    email, organization_id = user.email, user.organization_id
    failures = await auth.claim_attempt(session, settings, email, user_id=caller.user_id,
                                        organization_id=organization_id)
    row = await factors.authenticator(session, caller.user_id)  # the claim committed: read it again
    assert row is not None
    if await factors.accept_second_factor(session, settings.secret_key, row, code, now) is None:
        await session.rollback()
        await auth.record_failure(session, settings, failures, "mfa.totp_remove_failed", user_id=caller.user_id,
                                  organization_id=organization_id, caller=caller)
        raise _invalid_code()
    await auth.clear_attempts(session, email)
    await session.exec(delete(RecoveryCode).where(RecoveryCode.user_id == caller.user_id))
    await session.exec(delete(UserTotp).where(UserTotp.user_id == caller.user_id))
    await session.exec(update(RefreshToken).where(RefreshToken.user_id == caller.user_id).values(mfa=False))
    required = (await session.get(Organization, organization_id)).require_staff_mfa
    if required:
        # Tokens out there say `mfa: true`: end them, so the next refresh answers the gated token it now deserves.
        revocation.revoke(session, Subject.principal, caller.user_id, "mfa_removed")
    audit.record(session, caller, "mfa.totp_remove", resource_type="user", resource_id=caller.user_id)
    await session.commit()
