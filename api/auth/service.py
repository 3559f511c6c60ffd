"""Login (with a second factor for staff who enrolled one), refresh-token rotation with reuse detection, logout,
password change, and patient enrollment and re-enrollment."""

from __future__ import annotations

import datetime as dt
import math
import uuid

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.auth.schemas import EnrollRequest, Me, TokenPair
from api.errors import Conflict, InvalidAccessToken, MfaRequired, RateLimited, Unauthorized, ValidationFailed
from api.mfa import factors
from api.security import revocation
from api.security.passwords import hash_password, verify_password
from api.security.revocation import Subject
from api.security.tokens import Caller, digest, issue_access_token, new_secret
from api.settings import Settings
from models.base import utcnow
from models.organizations import Organization
from models.patients import EnrollmentCode, Patient
from models.users import LoginThrottle, RefreshToken, Role, User

INVALID_LOGIN = "Invalid email or password"
INVALID_REFRESH = "Invalid or expired refresh token"
INVALID_REFRESH_CODE = "invalid_refresh_token"  # the phone's cue to ask for the password again
ALREADY_ENROLLED = "This patient's login was created by a concurrent enrollment; send the code again to re-enroll"


def caller_of(user: User, *, mfa: bool = True) -> Caller:
    return Caller(user_id=user.id, organization_id=user.organization_id, role=Role(user.role), patient_id=user.patient_id,
                  mfa=mfa)


async def issue_token_pair(
    session: AsyncSession, settings: Settings, user: User, *, parent: RefreshToken | None = None, mfa: bool = False
) -> TokenPair:
    """Adds the refresh-token row to the session (a new family, or the child of `parent`); the caller commits. The
    access token names the family as its login session (`sid`), which can be ended on its own.

    `mfa`: the new family's login proved a second factor (a child inherits its family's). A staff token's `mfa`
    claim says whether it satisfies the organization's policy: the session proved a second factor, or the
    organization does not require one (read here, so a refresh after the setting changes follows it)."""
    family_id = parent.family_id if parent else uuid.uuid4()
    family_mfa = parent.mfa if parent else mfa
    satisfied = True
    if user.role != Role.patient and not family_mfa:
        satisfied = not (await session.exec(
            select(Organization.require_staff_mfa).where(Organization.id == user.organization_id))).scalar_one()
    access_token, expires_in = issue_access_token(settings, caller_of(user, mfa=satisfied), session_id=family_id)
    refresh_token = new_secret()
    session.add(
        RefreshToken(
            token_hash=digest(refresh_token),
            family_id=family_id,
            parent_id=parent.id if parent else None,
            user_id=user.id,
            expires_at=utcnow() + dt.timedelta(days=settings.refresh_token_days),
            mfa=family_mfa,
        )
    )
    return TokenPair(access_token=access_token, refresh_token=refresh_token, expires_in=expires_in)


# --- login and throttling ------------------------------------------------------------------------------------


def _throttle_key(email: str) -> str:
    return digest("login:" + email.strip().lower())


def _lockout_seconds(settings: Settings, failures: int) -> int:
    """The lock that follows the `failures`-th failure: doubling from the base, capped."""
    excess = failures - settings.login_max_failures
    return min(settings.login_lockout_base_seconds * 2 ** min(excess, 20), settings.login_lockout_max_seconds)


async def claim_throttled_attempt(
    session: AsyncSession, settings: Settings, key: str, now: dt.datetime
) -> tuple[int | None, dt.datetime | None]:
    """Counts the attempt as a failure BEFORE the password is checked, atomically: (failures, None) when the attempt
    may go on, (None, locked_until) when the account is locked.

    Checking first and counting after would let a burst of parallel guesses all read "not locked" and all be
    checked. Here every attempt claims one slot of the allowance in one statement on a row it locks until commit,
    and the attempt that reaches `LOGIN_MAX_FAILURES` sets the lock at once, so later claims are refused unchecked:
    at most that many passwords are ever checked per lockout window, whatever the concurrency and the number of
    processes. After a lock expires one more attempt is allowed, and its claim locks again (for twice as long)
    until it is proven right. A right password removes the row, and with it the count.
    """
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    stored = LoginThrottle.__table__.c
    stmt = insert(LoginThrottle).values(key=key, failures=1, last_failure_at=now)
    claimed = (await session.exec(
        stmt.on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={"failures": stored.failures + 1, "last_failure_at": now},
            where=or_(stored.locked_until.is_(None), stored.locked_until <= now),
        ).returning(LoginThrottle.failures)
    )).scalar_one_or_none()
    if claimed is None:
        locked_until = (await session.exec(
            select(LoginThrottle.locked_until).where(LoginThrottle.key == key))).scalar_one()
        await session.rollback()
        return None, locked_until
    if claimed >= settings.login_max_failures:
        locked_until = now + dt.timedelta(seconds=_lockout_seconds(settings, claimed))
        await session.exec(update(LoginThrottle).where(LoginThrottle.key == key).values(locked_until=locked_until))
    await session.commit()
    return claimed, None


async def login(
    session: AsyncSession, settings: Settings, email: str, password: str, otp: str | None, now: dt.datetime
) -> TokenPair:
    """Email and password; then, for a login with confirmed two-factor sign-in, `otp` (a TOTP code or an unused
    recovery code), checked within the same claimed attempt: a missing or wrong one leaves the attempt counted as a
    failure toward the lockout, so the second factor cannot be guessed faster than the password. `now` is the app's
    clock (the TOTP time step)."""
    user = (await session.exec(select(User).where(User.email == email.strip().lower()))).scalar_one_or_none()
    failures = await _check_password(session, settings, email, password, user)
    assert user is not None
    second_factor = None
    if user.role != Role.patient:
        authenticator = await factors.authenticator(session, user.id)
        if authenticator is not None and authenticator.confirmed_at is not None:
            second_factor = await _check_second_factor(session, settings, user, authenticator, otp, failures, now)
    pair = await issue_token_pair(session, settings, user, mfa=second_factor is not None)
    audit.record(session, caller_of(user), "auth.login", resource_type="user", resource_id=user.id)
    if second_factor == "recovery_code":
        audit.record(session, caller_of(user), "auth.recovery_code_used", resource_type="user", resource_id=user.id)
    await session.commit()
    return pair


async def _check_second_factor(
    session: AsyncSession, settings: Settings, user: User, authenticator, otp: str | None, failures: int,
    now: dt.datetime,
) -> str:
    """The second step of a login whose password was right: "totp" or "recovery_code", or MfaRequired (no `otp`)
    or 401 `invalid_otp`. Refusals roll back the clearing of the failure count that the right password did, so the
    attempt stays counted; a wrong code is audited like a wrong password."""
    user_id, organization_id = user.id, user.organization_id
    accepted = None
    if otp is not None:
        accepted = await factors.accept_second_factor(session, settings.secret_key, authenticator, otp, now)
    if accepted is not None:
        return accepted
    await session.rollback()
    await record_failure(session, settings, failures, "auth.mfa_required" if otp is None else "auth.otp_failed",
                         user_id=user_id, organization_id=organization_id)
    if otp is None:
        raise MfaRequired("This account signs in with two factors: send `otp`, the current code of the "
                          "authenticator app or an unused recovery code", code="mfa_required")
    raise Unauthorized("Invalid or already used two-factor code", code="invalid_otp")


async def _check_password(
    session: AsyncSession, settings: Settings, email: str, password: str, user: User | None
) -> int:
    """Checks `password` against `user` (None: no such account, refused at the same cost) under the per-account
    lockout: 429 while locked, 401 when wrong (both audited and committed). On success the failure count is cleared
    and the hash upgraded if due, uncommitted; answers the failures counted so far, this attempt included (a later
    step that fails, such as the second factor, rolls back to keep it counted)."""
    # Failed and locked attempts are anonymous acts against an account, filed under the account's organization.
    org = user.organization_id if user else None
    target = user.id if user else None
    password_hash = user.password_hash if user and user.is_active else None

    failures = await claim_attempt(session, settings, email, user_id=target, organization_id=org)
    valid, new_hash = verify_password(password, password_hash)
    if not valid:
        await record_failure(session, settings, failures, "auth.login_failed", user_id=target, organization_id=org)
        raise Unauthorized(INVALID_LOGIN, code="invalid_credentials")

    assert user is not None
    if new_hash:
        await session.exec(update(User).where(User.id == user.id).values(password_hash=new_hash))
    await clear_attempts(session, email)
    return failures


async def claim_attempt(
    session: AsyncSession, settings: Settings, email: str, *, user_id: uuid.UUID | None,
    organization_id: uuid.UUID | None,
) -> int:
    """Claims one attempt of the account's allowance (`claim_throttled_attempt`, committed) and answers the failures counted,
    this one included; 429 (audited) while the account is locked. Every check of a secret of the account (password,
    second factor) goes through here first."""
    failures, locked_until = await claim_throttled_attempt(session, settings, _throttle_key(email), utcnow())
    if failures is None:
        # Known and unknown emails are locked alike, so the lockout reveals nothing about which accounts exist.
        retry_after = max(1, math.ceil((locked_until - utcnow()).total_seconds())) if locked_until else 1
        await audit.record_denied(session, None, "auth.login_locked", resource_type="user", resource_id=user_id,
                                  organization_id=organization_id)
        raise RateLimited("Too many failed logins; try again later", retry_after=retry_after)
    return failures


async def record_failure(
    session: AsyncSession, settings: Settings, failures: int, action: str, *, user_id: uuid.UUID | None,
    organization_id: uuid.UUID | None, caller: Caller | None = None,
) -> None:
    """Audits a failed check (and the lockout it set, if it reached the limit) and commits: the claimed attempt
    stays counted."""
    audit.record(session, caller, action, resource_type="user", resource_id=user_id, organization_id=organization_id,
                 outcome=audit.DENIED)
    if failures >= settings.login_max_failures:
        audit.record(session, caller, "auth.lockout", resource_type="user", resource_id=user_id,
                     organization_id=organization_id, outcome=audit.DENIED)
    await session.commit()


async def clear_attempts(session: AsyncSession, email: str) -> None:
    """A right secret clears the account's failure count (uncommitted: with the rest of the success)."""
    await session.exec(delete(LoginThrottle).where(LoginThrottle.key == _throttle_key(email)))


# --- refresh and logout ---------------------------------------------------------------------------------------


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID, now: dt.datetime) -> None:
    await session.exec(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def refresh(session: AsyncSession, settings: Settings, refresh_token: str) -> TokenPair:
    now = utcnow()
    token = (
        await session.exec(select(RefreshToken).where(RefreshToken.token_hash == digest(refresh_token)))
    ).scalar_one_or_none()
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        raise Unauthorized(INVALID_REFRESH, code=INVALID_REFRESH_CODE)

    # Compare-and-set: of two concurrent refreshes with the same token exactly one sees rowcount 1.
    rotated = await session.exec(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.rotated_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(rotated_at=now)
    )
    if rotated.rowcount == 1:
        if token.parent_id is not None:
            await _supersede_siblings(session, token, now)
    elif not await _within_grace(session, settings, token, now):
        # A rotated-out token came back: assume it was stolen and end the whole session family.
        await _revoke_family(session, token.family_id, now)
        audit.record(session, None, "auth.refresh_reuse", resource_type="user", resource_id=token.user_id,
                     outcome=audit.DENIED, organization_id=await _org_of(session, token.user_id))
        await session.commit()
        raise Unauthorized(INVALID_REFRESH, code=INVALID_REFRESH_CODE)

    user = await session.get(User, token.user_id)
    if user is None or not user.is_active:
        await session.rollback()
        raise Unauthorized(INVALID_REFRESH, code=INVALID_REFRESH_CODE)
    if rotated.rowcount != 1:
        audit.record(session, caller_of(user), "auth.refresh_grace", resource_type="user", resource_id=user.id)
    pair = await issue_token_pair(session, settings, user, parent=token)
    await session.commit()
    return pair


async def _within_grace(session: AsyncSession, settings: Settings, token: RefreshToken, now: dt.datetime) -> bool:
    """Whether a rotated token presented again is still "just rotated": rotated less than the grace period ago, its
    family alive, and none of its children refreshed yet. Once the phone has moved on to a child, the parent coming
    back is theft however soon. Each grace answer is one more child of the same token (the raw successor cannot be
    answered again: only its hash is stored), so the grace never starts a family of its own.

    The token's row is locked first (PostgreSQL), and `_supersede_siblings` takes the same lock: a grace answer and
    the refresh of a sibling cannot interleave, so no child minted here outlives its sibling's refresh."""
    if settings.refresh_reuse_grace_seconds <= 0:
        return False
    rotated_at, revoked_at = (await session.exec(
        select(RefreshToken.rotated_at, RefreshToken.revoked_at).where(RefreshToken.id == token.id).with_for_update()
    )).one()
    if revoked_at is not None or rotated_at is None:
        return False
    if now - rotated_at > dt.timedelta(seconds=settings.refresh_reuse_grace_seconds):
        return False
    child_refreshed = (await session.exec(
        select(func.count()).select_from(RefreshToken)
        .where(RefreshToken.parent_id == token.id, RefreshToken.rotated_at.is_not(None))
    )).scalar_one()
    return child_refreshed == 0


async def _supersede_siblings(session: AsyncSession, token: RefreshToken, now: dt.datetime) -> None:
    """The first child of a token to be refreshed is the one the phone kept: the other children (answers of the
    grace period that the phone lost or overwrote) stop working, so no second line of the family lives on unseen."""
    await session.exec(select(RefreshToken.id).where(RefreshToken.id == token.parent_id).with_for_update())
    await session.exec(
        update(RefreshToken)
        .where(RefreshToken.parent_id == token.parent_id, RefreshToken.id != token.id,
               RefreshToken.rotated_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def _org_of(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    return (await session.exec(select(User.organization_id).where(User.id == user_id))).scalar_one_or_none()


async def revoke_refresh_tokens(
    session: AsyncSession, user_id: uuid.UUID, now: dt.datetime, *, keep: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Revokes every live refresh token of the user except those of the family `keep`, and answers the login
    sessions (families) whose access tokens may still be unexpired: those with a token issued within the
    revocation horizon (an access token is issued only beside a refresh token), whether revoked now or earlier (a
    logout ends the refresh tokens, not the access tokens already out)."""
    others = [RefreshToken.user_id == user_id]
    if keep is not None:
        others.append(RefreshToken.family_id != keep)
    recent = (await session.exec(
        select(RefreshToken.family_id).distinct()
        .where(*others, RefreshToken.issued_at > now - revocation.KEEP_FOR)
    )).scalars().all()
    await session.exec(update(RefreshToken).where(*others, RefreshToken.revoked_at.is_(None)).values(revoked_at=now))
    return list(recent)


async def change_password(
    session: AsyncSession, settings: Settings, caller: Caller, current_password: str, new_password: str
) -> None:
    """The current password is checked as a login attempt (under the account's lockout: 429 while locked; a wrong
    one counts as a failure and answers 422 on `current_password`, not 401, which would tell the client its token
    is bad). Every other login session of the user ends at once (refresh tokens revoked, access tokens refused
    through a session revocation each); the caller's own session (its `sid`) continues."""
    user = await session.get(User, caller.user_id)
    if user is None or not user.is_active:
        raise InvalidAccessToken("This account no longer exists or is disabled")
    try:
        await _check_password(session, settings, user.email, current_password, user)
    except Unauthorized:
        raise ValidationFailed("The current password is wrong", code="invalid_current_password",
                               errors=[{"loc": ["body", "current_password"], "msg": "is wrong"}]) from None
    now = utcnow()
    await session.exec(update(User).where(User.id == caller.user_id).values(password_hash=hash_password(new_password)))
    for family_id in await revoke_refresh_tokens(session, caller.user_id, now, keep=caller.session_id):
        revocation.revoke(session, Subject.session, family_id, "password_change", now=now)
    audit.record(session, caller, "user.password_change", resource_type="user", resource_id=caller.user_id)
    await session.commit()


async def logout(session: AsyncSession, refresh_token: str) -> None:
    """Ends the session family the token belongs to; unknown tokens are ignored (logout is idempotent)."""
    token = (
        await session.exec(select(RefreshToken).where(RefreshToken.token_hash == digest(refresh_token)))
    ).scalar_one_or_none()
    if token is not None:
        await _revoke_family(session, token.family_id, utcnow())
        await session.commit()


# --- enrollment ---------------------------------------------------------------------------------------------

# Enrollments a code allows to fail on a taken email. Each 409 tells the code's holder that an account with that email
# exists (in any organization: login is by email alone); a few are needed for honest typos, more would make a code an
# enumeration tool for 72 hours. docs/security.md records the rest of this accepted risk.
MAX_EMAIL_CONFLICTS = 3

# Crockford base32 without I, L, O, U: easy to read aloud and type on a phone.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12  # 60 bits: infeasible to guess within a 72 h lifetime

# How long after a successful enrollment the same code, email and password answer a session again: long enough for
# a phone to retry a lost 201 (or the patient to tap again), short enough that a used code soon stops meaning anything.
ENROLL_REPLAY_WINDOW = dt.timedelta(minutes=10)
INVALID_CODE = "Invalid, used or expired enrollment code"


def normalize_code(code: str) -> str:
    cleaned = code.upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))


def format_code(raw: str) -> str:
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


async def enroll(session: AsyncSession, settings: Settings, request: EnrollRequest) -> TokenPair:
    now = utcnow()
    code = (
        await session.exec(
            select(EnrollmentCode).where(EnrollmentCode.code_hash == digest(normalize_code(request.code)))
        )
    ).scalar_one_or_none()
    if code is not None and code.used_at is not None and now - code.used_at <= ENROLL_REPLAY_WINDOW:
        return await _replay_enrollment(session, settings, code, request)
    if code is None or code.used_at is not None or code.expires_at <= now:
        await audit.record_denied(session, None, "auth.enroll", resource_type="enrollment_code")
        raise ValidationFailed.at(["body", "code"], INVALID_CODE)

    claimed = await session.exec(
        update(EnrollmentCode)
        .where(EnrollmentCode.id == code.id, EnrollmentCode.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:
        await session.rollback()
        raise ValidationFailed.at(["body", "code"], INVALID_CODE)

    patient = await session.get(Patient, code.patient_id)
    assert patient is not None
    existing = (await session.exec(select(User).where(User.patient_id == patient.id))).scalar_one_or_none()
    if existing is not None:
        return await _reenroll(session, settings, code, patient, existing, request, now)

    user = User(
        organization_id=patient.organization_id,
        email=request.email,
        full_name=patient.full_name,
        role=Role.patient,
        password_hash=hash_password(request.password),
        patient_id=patient.id,
    )
    session.add(user)
    refused_for = (code.id, patient.organization_id, patient.id)  # the rollback below expires the loaded rows
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        # Two unique columns can refuse the login: the patient's (a concurrent enrollment won; the code is left
        # unused, and sending it again re-enrolls) or the email's.
        if await _has_login(session, refused_for[2]):
            raise Conflict(ALREADY_ENROLLED, code="patient_already_enrolled") from None
        await _count_email_conflict(session, *refused_for, now)
        raise Conflict("An account with this email already exists", code="email_taken") from None
    pair = await issue_token_pair(session, settings, user)
    audit.record(session, caller_of(user), "auth.enroll", resource_type="user", resource_id=user.id,
                 patient_id=patient.id)
    await session.commit()
    return pair


async def _reenroll(
    session: AsyncSession, settings: Settings, code: EnrollmentCode, patient: Patient, user: User,
    request: EnrollRequest, now: dt.datetime,
) -> TokenPair:
    """A code for a patient who already has a login (a lost phone, a forgotten password): the same login, and with
    it every record, gets the new email and password; every earlier session ends (refresh tokens revoked, and a
    principal revocation refuses every access token issued before now, on every process); the new pair is issued
    after it. Audited as `auth.reenroll`, its actor the staff member who issued the code (who vouched for the
    patient's identity) — the code row records them."""
    refused_for = (code.id, patient.organization_id, patient.id)  # a rollback expires the loaded rows
    issuer_id, user_id = code.created_by, user.id
    user.email = request.email
    user.password_hash = hash_password(request.password)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        await _count_email_conflict(session, *refused_for, now)
        raise Conflict("An account with this email already exists", code="email_taken") from None
    await revoke_refresh_tokens(session, user_id, now)
    revocation.revoke(session, Subject.principal, user_id, "reenrollment", now=now)
    pair = await issue_token_pair(session, settings, user)
    issuer_role = (await session.exec(select(User.role).where(User.id == issuer_id))).scalar_one()
    issuer = Caller(user_id=issuer_id, organization_id=patient.organization_id, role=Role(issuer_role))
    audit.record(session, issuer, "auth.reenroll", resource_type="user", resource_id=user_id, patient_id=patient.id)
    await session.commit()
    return pair


async def _has_login(session: AsyncSession, patient_id: uuid.UUID) -> bool:
    logins = await session.exec(select(func.count()).select_from(User).where(User.patient_id == patient_id))
    return logins.scalar_one() > 0


async def _replay_enrollment(
    session: AsyncSession, settings: Settings, code: EnrollmentCode, request: EnrollRequest
) -> TokenPair:
    """A code used moments ago, sent again: the same email and password answer a session for the login it created
    (the phone lost the 201); anything else is the used-code 422.

    A used code must not become a password oracle: the password is checked against the login's hash only when the
    email is the login's, and every check is a login attempt on that email, under its lockout. Every refusal is the
    same 422 (a lockout too: a 429 would tell the code's holder that the email is the login's), and an email that
    is not the login's costs the same password verification, so neither answer nor timing says which part was wrong.
    """
    user = (await session.exec(select(User).where(User.patient_id == code.patient_id))).scalar_one_or_none()
    # Kept before the check: when the account is locked it rolls back, which expires loaded rows.
    code_id, patient_id = code.id, code.patient_id
    organization_id = user.organization_id if user is not None else None
    account = user if user is not None and user.email == request.email else None
    try:
        await _check_password(session, settings, request.email, request.password, account)
    except (Unauthorized, RateLimited):
        await audit.record_denied(session, None, "auth.enroll", resource_type="enrollment_code", resource_id=code_id,
                                  organization_id=organization_id, patient_id=patient_id)
        raise ValidationFailed.at(["body", "code"], INVALID_CODE) from None
    assert account is not None
    pair = await issue_token_pair(session, settings, account)
    audit.record(session, caller_of(account), "auth.enroll_replay", resource_type="user", resource_id=account.id,
                 patient_id=account.patient_id)
    await session.commit()
    return pair


async def _count_email_conflict(
    session: AsyncSession, code_id: uuid.UUID, organization_id: uuid.UUID, patient_id: uuid.UUID, now: dt.datetime
) -> None:
    """Counts a refusal for a taken email against the (still unused) code, voiding it at the limit; audited."""
    conflicts = (await session.exec(
        update(EnrollmentCode).where(EnrollmentCode.id == code_id)
        .values(email_conflicts=EnrollmentCode.email_conflicts + 1).returning(EnrollmentCode.email_conflicts)
    )).scalar_one()
    if conflicts >= MAX_EMAIL_CONFLICTS:
        await session.exec(update(EnrollmentCode).where(EnrollmentCode.id == code_id).values(expires_at=now))
    audit.record(session, None, "auth.enroll_email_taken", resource_type="enrollment_code", resource_id=code_id,
                 organization_id=organization_id, patient_id=patient_id, outcome=audit.DENIED)
    await session.commit()


async def me(session: AsyncSession, caller: Caller) -> Me:
    user = await session.get(User, caller.user_id)
    if user is None or not user.is_active:
        raise InvalidAccessToken("This account no longer exists or is disabled")
    timezone = None
    if user.patient_id is not None:
        timezone = (await session.exec(select(Patient.timezone).where(Patient.id == user.patient_id))).scalar_one()
    return Me(id=user.id, email=user.email, full_name=user.full_name, role=user.role,
              organization_id=user.organization_id, patient_id=user.patient_id, timezone=timezone)
